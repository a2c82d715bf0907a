"""Streaming generation on MLX through mlx-lm's `stream_generate`, with adapters fused or kept apart
and swapped without reloading the base weights."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.backends.base import Chunk
from morris_mlx.backends.chat_template import apply_chat_template
from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")


def read_mlx_adapter(adapter_path: Path, model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(adapter_config, weights) of an MLX adapter dir; a PEFT dir is imported on the fly first."""
    import mlx.core as mx

    adapter_path = Path(adapter_path)
    if not adapter_path.is_dir():
        raise MorrisError(f"adapter directory {adapter_path} does not exist; train one or pass another path")
    if (adapter_path / "adapter_model.safetensors").is_file():
        import tempfile

        from morris_mlx.export.actions import import_peft

        with tempfile.TemporaryDirectory() as tmp:
            converted = import_peft(adapter_path, Path(tmp) / "mlx", model=str(model_dir))
            return read_mlx_adapter(converted, model_dir)
    if not (adapter_path / "adapters.safetensors").is_file():
        raise MorrisError(
            f"{adapter_path} holds no adapter (adapters.safetensors or adapter_model.safetensors); "
            "pass the folder `morris train` wrote"
        )
    try:
        config = json.loads((adapter_path / "adapter_config.json").read_text())
        weights = mx.load(str(adapter_path / "adapters.safetensors"))
    except (OSError, ValueError, RuntimeError) as exc:
        raise MorrisError(
            f"adapter in {adapter_path} is unreadable ({exc}); re-train or re-export it"
        ) from None
    if config.get("fine_tune_type", "lora") != "lora":
        raise MorrisError(f"{adapter_path} is a {config['fine_tune_type']} adapter; only LoRA is supported")
    return config, weights


class MLXGenerator:
    """A loaded MLX model; the adapter (if any) is fused for speed or kept apart, and swappable."""

    backend = "mlx"

    def __init__(
        self,
        model_dir: Path,
        adapter_path: Path | None = None,
        fuse: bool = True,
        trust_remote_code: bool = False,
    ) -> None:
        from morris_mlx.backends.mlx_train import load_model

        self.model_dir = Path(model_dir)
        self.model, self.tokenizer = load_model(self.model_dir, trust_remote_code)
        self.adapter_path: Path | None = None
        self.fused = False
        self._base_linears: dict[str, Any] = {}
        if adapter_path is not None:
            self.set_adapter(Path(adapter_path), fuse=fuse)

    # Adapters ---------------------------------------------------------------------------------------------

    def _restore_base(self) -> None:
        from mlx.utils import tree_unflatten

        if self._base_linears:
            self.model.update_modules(tree_unflatten(list(self._base_linears.items())))
        self._base_linears = {}
        self.adapter_path, self.fused = None, False

    def set_adapter(self, adapter_path: Path | None, fuse: bool = True) -> None:
        """Swap adapters in place: the base linears are kept by reference, never reloaded."""
        import mlx.core as mx
        from mlx.utils import tree_flatten, tree_unflatten
        from mlx_lm.tuner.lora import LoRALinear
        from mlx_lm.tuner.utils import linear_to_lora_layers

        config, weights = (
            read_mlx_adapter(adapter_path, self.model_dir) if adapter_path is not None else (None, None)
        )
        self._restore_base()
        if config is None:
            return
        num_layers = config.get("num_layers", len(self.model.layers))
        if num_layers > len(self.model.layers):
            raise MorrisError(
                f"adapter {adapter_path} adapts {num_layers} layers but the model has "
                f"{len(self.model.layers)}; it was trained for another base model"
            )
        linear_to_lora_layers(self.model, num_layers, config["lora_parameters"])
        lora_modules = {n: m for n, m in self.model.named_modules() if isinstance(m, LoRALinear)}
        self._base_linears = {n: m.linear for n, m in lora_modules.items()}
        expected = {
            k: v.shape
            for k, v in tree_flatten(self.model.parameters())
            if k.rsplit(".", 1)[-1] in ("lora_a", "lora_b")
        }
        problems = [k for k in weights if k not in expected] + [
            f"{k} {tuple(weights[k].shape)} != {tuple(expected[k])}"
            for k in weights
            if k in expected and weights[k].shape != expected[k]
        ]
        missing = [k for k in expected if k not in weights]
        if problems or missing:
            self._restore_base()
            detail = (problems or missing)[0]
            raise MorrisError(
                f"adapter {adapter_path} does not fit {self.model_dir.name} ({detail}); "
                "it was trained for another base model"
            )
        self.model.load_weights(list(weights.items()), strict=False)
        if fuse:
            self.model.update_modules(tree_unflatten([(n, m.fuse()) for n, m in lora_modules.items()]))
        mx.eval(self.model.parameters())
        self.model.eval()
        self.adapter_path, self.fused = Path(adapter_path), fuse

    # Tokens -----------------------------------------------------------------------------------------------

    def encode_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        return apply_chat_template(self.tokenizer, messages, add_generation_prompt)

    def logits(self, token_ids: list[int]) -> np.ndarray:
        import mlx.core as mx

        out = self.model(mx.array([token_ids]))[0].astype(mx.float32)
        return np.array(out)

    def stream(self, messages: list[dict[str, str]], settings: GenerateConfig) -> Iterator[Chunk]:
        import mlx.core as mx
        from mlx_lm.generate import stream_generate
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        prompt = self.encode_chat(messages, add_generation_prompt=True)
        if settings.seed is not None:
            mx.random.seed(settings.seed)
        sampler = make_sampler(
            temp=settings.temp,
            top_p=settings.top_p if settings.top_p < 1.0 else 0.0,
            min_p=settings.min_p,
            top_k=settings.top_k,
        )
        processors = (
            make_logits_processors(repetition_penalty=settings.repetition_penalty)
            if settings.repetition_penalty != 1.0
            else None
        )
        started = time.perf_counter()
        for response in stream_generate(
            self.model,
            self.tokenizer,
            prompt,
            max_tokens=settings.max_tokens,
            sampler=sampler,
            logits_processors=processors,
        ):
            timed_out = (
                settings.time_limit is not None and time.perf_counter() - started > settings.time_limit
            )
            finish = response.finish_reason or ("time" if timed_out else None)
            yield Chunk(
                text=response.text,
                token=response.token,
                prompt_tokens=response.prompt_tokens,
                generation_tokens=response.generation_tokens,
                prompt_tps=response.prompt_tps,
                generation_tps=response.generation_tps,
                peak_memory_gb=response.peak_memory,
                finish_reason=finish,
            )
            if finish:
                return
