"""Streaming generation on MLX through mlx-lm's `stream_generate`, batched generation through its
`BatchGenerator`, with adapters fused or kept apart and swapped without reloading the base weights."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.backends.base import BatchResult, Chunk
from morris_mlx.backends.chat_template import apply_chat_template
from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_CONFIG, MLX_WEIGHTS, PEFT_WEIGHTS

log = logging.getLogger("morris")


def seeded_sampler(settings: GenerateConfig, seed: int) -> Callable[[Any], Any]:
    """mlx-lm's sampling chain (top-p, min-p, top-k, then temperature) drawing from a key of its own.

    A batch shares one global RNG, so without this an article's sample would depend on its neighbours.
    Splitting the key each step is exactly what `mx.random.seed(seed)` does for the global RNG, so an
    article matches `morris generate TOPIC --seed N` whatever it is batched with (tested on the CPU)."""
    import mlx.core as mx
    from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p

    key = mx.random.key(seed)

    def sample(logprobs: Any) -> Any:
        nonlocal key
        if 0 < settings.top_p < 1.0:
            logprobs = apply_top_p(logprobs, settings.top_p)
        if settings.min_p != 0.0:
            logprobs = apply_min_p(logprobs, settings.min_p, 1)
        if settings.top_k > 0:
            logprobs = apply_top_k(logprobs, settings.top_k)
        key, sub = mx.random.split(key)
        return mx.random.categorical(logprobs * (1.0 / settings.temp), key=sub)

    return sample


def batch_sampling(settings: Sequence[GenerateConfig]) -> tuple[list[Any], list[list[Any]]]:
    """Per-sequence samplers and logits processors for `BatchGenerator.insert`.

    Unseeded sequences with equal settings share one sampler object, so mlx-lm samples them in one
    batched call; seeded ones get their own key (`seeded_sampler`)."""
    from mlx_lm.sample_utils import make_logits_processors, make_sampler

    shared: dict[tuple[float, float, float, int], Any] = {}
    samplers = []
    for s in settings:
        if s.temp > 0 and s.seed is not None:
            samplers.append(seeded_sampler(s, s.seed))
            continue
        knobs = (s.temp, s.top_p if s.top_p < 1.0 else 0.0, s.min_p, s.top_k)
        if knobs not in shared:
            shared[knobs] = make_sampler(temp=knobs[0], top_p=knobs[1], min_p=knobs[2], top_k=knobs[3])
        samplers.append(shared[knobs])
    processors = [
        make_logits_processors(repetition_penalty=s.repetition_penalty) if s.repetition_penalty != 1.0 else []
        for s in settings
    ]
    return samplers, processors


def load_mlx_adapter(adapter_path: Path, model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(adapter_config, weights) of an MLX adapter dir; a PEFT dir is imported on the fly first."""
    import mlx.core as mx

    adapter_path = Path(adapter_path)
    if not adapter_path.is_dir():
        raise MorrisError(f"adapter directory {adapter_path} does not exist; train one or pass another path")
    if (adapter_path / PEFT_WEIGHTS).is_file():
        import tempfile

        from morris_mlx.adapter_format.convert import peft_to_mlx
        from morris_mlx.adapter_format.provenance import verify_adapter

        verify_adapter(adapter_path)
        with tempfile.TemporaryDirectory() as tmp:
            return load_mlx_adapter(peft_to_mlx(adapter_path, Path(tmp) / "mlx", model_dir), model_dir)
    if not (adapter_path / MLX_WEIGHTS).is_file():
        raise MorrisError(
            f"{adapter_path} holds no adapter (adapters.safetensors or adapter_model.safetensors); "
            "pass the folder `morris train` wrote"
        )
    from morris_mlx.adapter_format.provenance import verify_adapter

    verify_adapter(adapter_path)  # sizes and sha256 recorded when the adapter was finished
    try:
        config = json.loads((adapter_path / ADAPTER_CONFIG).read_text())
        weights = mx.load(str(adapter_path / MLX_WEIGHTS))
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
        from morris_mlx.backends.mlx_model import load_model

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
            load_mlx_adapter(adapter_path, self.model_dir) if adapter_path is not None else (None, None)
        )
        self._restore_base()
        if config is None:
            return
        from morris_mlx.adapter_format.provenance import warn_if_other_base

        warn_if_other_base(Path(adapter_path), self.model_dir)
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

    def encode_text(self, text: str) -> list[int]:
        """Plain text, no chat template: what a page of the writer's prose is to the model."""
        return [int(i) for i in self.tokenizer.encode(text)]

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

    def generate_batch(
        self,
        conversations: Sequence[list[dict[str, str]]],
        settings: Sequence[GenerateConfig],
        batch_size: int,
    ) -> Iterator[tuple[int, BatchResult]]:
        """Continuous batching with mlx-lm's `BatchGenerator`: up to `batch_size` sequences decode
        together and a finished one's slot goes to the next prompt at once, so results arrive out of
        input order. Each sequence stops at its own EOS, max_tokens or time limit (counted from its
        first token)."""
        import mlx.core as mx
        from mlx_lm.generate import BatchGenerator

        prompts = [self.encode_chat(messages, add_generation_prompt=True) for messages in conversations]
        samplers, processors = batch_sampling(settings)
        generator = BatchGenerator(
            self.model,
            stop_tokens=[[t] for t in self.tokenizer.eos_token_ids],
            completion_batch_size=batch_size,
            prefill_batch_size=batch_size,
        )
        try:
            uids = generator.insert(
                prompts,
                [s.max_tokens for s in settings],
                samplers=samplers,
                logits_processors=processors,
            )
            index = {uid: i for i, uid in enumerate(uids)}
            live: dict[int, _Sequence] = {}
            while responses := generator.next_generated():
                for response in responses:
                    i = index[response.uid]
                    if response.uid not in live:
                        live[response.uid] = _Sequence(self.tokenizer.detokenizer, len(prompts[i]))
                    seq = live[response.uid]
                    seq.add(response.token, response.finish_reason)
                    if response.finish_reason is not None:
                        yield i, live.pop(response.uid).result(response.finish_reason)
                expired = [uid for uid, seq in live.items() if seq.expired(settings[index[uid]].time_limit)]
                if expired:
                    generator.remove(expired)
                    for uid in expired:
                        yield index[uid], live.pop(uid).result("time")
        finally:
            generator.close()
            mx.clear_cache()


class _Sequence:
    """The detokenized text of one sequence of a batch, as `stream_generate` would build it."""

    def __init__(self, detokenizer: Any, prompt_tokens: int) -> None:
        self.detokenizer = detokenizer
        self.prompt_tokens = prompt_tokens
        self.count = 0
        self.started = time.perf_counter()

    def add(self, token: int, finish_reason: str | None) -> None:
        self.count += 1  # the EOS counts, as in stream_generate; its text does not
        if finish_reason != "stop":
            self.detokenizer.add_token(token)

    def expired(self, time_limit: float | None) -> bool:
        return time_limit is not None and time.perf_counter() - self.started > time_limit

    def result(self, finish_reason: str) -> BatchResult:
        self.detokenizer.finalize()
        return BatchResult(self.detokenizer.text, finish_reason, self.prompt_tokens, self.count)
