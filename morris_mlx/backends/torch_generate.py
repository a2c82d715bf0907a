"""Streaming generation with transformers + peft: the torch side of the Generator protocol.

`generate()` runs in a worker thread and hands text to the caller through a TextIteratorStreamer.
Sampling follows mlx-lm's semantics rather than transformers' warpers, so a setting means the same
on both backends: the repetition penalty looks at the last 20 tokens, and top-p, min-p and top-k
filter the log-probabilities before the temperature divides them.

Adapters are loaded with PEFT and merged into the weights for speed (`fuse`); swapping one unmerges
first, so the base weights are loaded once per Generator.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import TextIteratorStreamer

from morris_mlx.backends.base import Chunk
from morris_mlx.backends.torch_backend import (
    PEFT_WEIGHTS,
    peak_memory_gb,
    peft_dir,
    quiet_peft,
    warn_if_other_base,
)
from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

REPETITION_CONTEXT = 20  # mlx-lm's default repetition_context_size


class MlxSampling(LogitsProcessor):
    """Repetition penalty, then top-p, min-p, top-k and temperature exactly as mlx-lm orders them."""

    def __init__(self, settings: GenerateConfig) -> None:
        self.temp = settings.temp
        self.top_p = settings.top_p
        self.min_p = settings.min_p
        self.top_k = settings.top_k
        self.penalty = settings.repetition_penalty

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float()
        if self.penalty not in (0.0, 1.0) and input_ids.shape[1] > 0:
            context = input_ids[:, -REPETITION_CONTEXT:]
            picked = scores.gather(1, context)
            picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
            scores = scores.scatter(1, context, picked)
        if self.temp == 0:
            return scores  # greedy: generate() takes the argmax
        logprobs = torch.log_softmax(scores, dim=-1)
        if 0 < self.top_p < 1.0:
            ascending, _ = torch.sort(logprobs, dim=-1)
            probs = ascending.exp()
            mass_above = probs.flip(-1).cumsum(-1).flip(-1) - probs
            total = probs.sum(-1, keepdim=True)
            dropped = (mass_above >= self.top_p * total).sum(-1, keepdim=True)
            threshold = ascending.gather(-1, dropped.clamp(max=ascending.shape[-1] - 1))
            logprobs = logprobs.masked_fill(logprobs < threshold, -math.inf)
        if self.min_p > 0:
            floor = logprobs.max(-1, keepdim=True).values + math.log(self.min_p)
            logprobs = logprobs.masked_fill(logprobs < floor, -math.inf)
        if 0 < self.top_k < logprobs.shape[-1]:
            kth = logprobs.topk(self.top_k, dim=-1).values[..., -1:]
            logprobs = logprobs.masked_fill(logprobs < kth, -math.inf)
        return logprobs / self.temp


class StopFlag(StoppingCriteria):
    """Stops generation when the time limit passes or the caller walks away."""

    def __init__(self, time_limit: float | None) -> None:
        self.deadline = None if time_limit is None else time.perf_counter() + time_limit
        self.cancelled = threading.Event()
        self.timed_out = False

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            self.timed_out = True
        done = self.timed_out or self.cancelled.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class CountingStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer whose queue items also carry the token count and the last token."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.count = 0
        self.last_token: int | None = None
        self.first_token_time: float | None = None

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:
            ids = value.reshape(-1).tolist()
            if self.first_token_time is None:
                self.first_token_time = time.perf_counter()
            self.count += len(ids)
            self.last_token = ids[-1] if ids else self.last_token
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put((text, self.count, self.last_token), timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)


class TorchGenerator:
    """A base model loaded once, with at most one PEFT adapter active (merged when fused)."""

    backend = "torch"

    def __init__(self, model: Any, tokenizer: Any, model_dir: Path, device: str) -> None:
        self.base = model
        self.model = model
        self.tokenizer = tokenizer
        self.model_dir = Path(model_dir)
        self.device = device
        self.adapter_path: Path | None = None
        self._peft: Any = None
        self._active: str | None = None
        self._merged = False
        self._snapshot: dict[str, torch.Tensor] = {}
        self._loaded = 0
        self._lock = threading.RLock()
        self.eos_token_ids = self._eos_ids()

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        configured = getattr(self.base.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(int(i) for i in configured)
        return sorted(ids)

    # adapters -------------------------------------------------------------------------------------

    def _lora_layers(self) -> list[tuple[str, Any]]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        return [(n, m) for n, m in self._peft.named_modules() if isinstance(m, BaseTunerLayer)]

    def _fuse(self) -> None:
        """Merge the active adapter into the weights; in half precision keep the exact base weights,
        since unmerging there (W + d - d rounded twice) would drift a little with every swap."""
        if self._peft is None or self._merged:
            return
        if self.base.dtype != torch.float32:
            self._snapshot = {
                name: layer.get_base_layer().weight.detach().to("cpu", copy=True)
                for name, layer in self._lora_layers()
            }
        self._peft.merge_adapter()
        self._merged = True

    def _unfuse(self) -> None:
        if not self._merged:
            return
        self._peft.unmerge_adapter()
        if self._snapshot:
            with torch.no_grad():
                for name, layer in self._lora_layers():
                    layer.get_base_layer().weight.copy_(self._snapshot[name])
            self._snapshot = {}
        self._merged = False

    def _check_fits(self, source: Path) -> None:
        """Compare the adapter's shapes with the model's, so a mismatch is one clear error and never
        a half-injected model."""
        from safetensors import safe_open

        modules = dict(self.base.named_modules())
        with safe_open(str(source / PEFT_WEIGHTS), framework="pt") as fh:
            for key in fh.keys():
                if ".lora_A." not in key and ".lora_B." not in key:
                    continue
                path = key.split(".lora_")[0].removeprefix("base_model.model.")
                module = modules.get(path)
                shape = fh.get_slice(key).get_shape()
                if module is not None and hasattr(module, "base_layer"):
                    module = module.base_layer
                if module is None or not hasattr(module, "in_features"):
                    raise MorrisError(
                        f"the adapter's layer {path} does not exist in {self.model_dir}; "
                        "the adapter was trained for another base model (pass that model with --model)"
                    )
                expected = module.in_features if ".lora_A." in key else module.out_features
                actual = shape[1] if ".lora_A." in key else shape[0]
                if actual != expected:
                    raise MorrisError(
                        f"the adapter's {path} has {actual} features where {self.model_dir} has {expected}; "
                        "it was trained for another base model (pass that model with --model)"
                    )

    def set_adapter(self, adapter_path: Path | None, fuse: bool = True) -> None:
        from peft import PeftModel

        with self._lock:
            if adapter_path is None:
                self._unfuse()
                if self._peft is not None:
                    self.model = self._peft.unload()
                    self._peft, self._active = None, None
                self.adapter_path = None
                return
            adapter_path = Path(adapter_path)
            with peft_dir(adapter_path, self.model_dir) as source:
                self._check_fits(source)
                warn_if_other_base(adapter_path, self.model_dir)
                was_fused = self._merged
                self._unfuse()
                name = f"adapter{self._loaded}"
                self._loaded += 1
                try:
                    with quiet_peft():
                        if self._peft is None:
                            self._peft = PeftModel.from_pretrained(self.base, str(source), adapter_name=name)
                        else:
                            self._peft.load_adapter(str(source), adapter_name=name, is_trainable=False)
                except (RuntimeError, ValueError, KeyError) as exc:
                    if was_fused:
                        self._fuse()  # the previous adapter stays as it was
                    raise MorrisError(f"PEFT cannot load the adapter in {adapter_path}: {exc}") from None
            previous, self._active = self._active, name
            self._peft.set_adapter(name)
            if previous is not None:
                self._peft.delete_adapter(previous)
            self._peft.eval()
            self.model = self._peft
            self.adapter_path = adapter_path
            if fuse:
                self._fuse()

    # inference ------------------------------------------------------------------------------------

    def encode_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        # Shared with the MLX backend so both fold a system turn the same way for templates refusing one.
        from morris_mlx.backends.chat_template import apply_chat_template

        return [int(i) for i in apply_chat_template(self.tokenizer, messages, add_generation_prompt)]

    def logits(self, token_ids: list[int]) -> np.ndarray:
        with self._lock, torch.inference_mode():
            ids = torch.tensor([token_ids], dtype=torch.long, device=self.device)
            return self.model(input_ids=ids).logits[0].float().cpu().numpy()

    def _generate_kwargs(self, settings: GenerateConfig, stop: StopFlag, streamer: Any) -> dict[str, Any]:
        pad = self.tokenizer.pad_token_id
        kwargs: dict[str, Any] = dict(
            max_new_tokens=settings.max_tokens,
            do_sample=settings.temp > 0,
            repetition_penalty=1.0,
            logits_processor=LogitsProcessorList([MlxSampling(settings)]),
            stopping_criteria=StoppingCriteriaList([stop]),
            streamer=streamer,
            eos_token_id=self.eos_token_ids or None,
            pad_token_id=pad if pad is not None else (self.eos_token_ids or [None])[0],
        )
        if settings.temp > 0:
            # transformers' own warpers are switched off (top_k would default to 50): MlxSampling does it all.
            kwargs.update(temperature=1.0, top_p=1.0, top_k=0, min_p=None)
        if self.device == "cuda":
            # A static KV cache lets generate() compile the decode step (torch.compile); on an H100
            # that took fused 7B decoding from ~40 to ~120 tok/s (DESIGN.md).
            kwargs["cache_implementation"] = "static"
        return kwargs

    def stream(self, messages: list[dict[str, str]], settings: GenerateConfig) -> Iterator[Chunk]:
        prompt = self.encode_chat(messages, add_generation_prompt=True)
        streamer = CountingStreamer(self.tokenizer)
        stop = StopFlag(settings.time_limit)
        failure: list[BaseException] = []
        started = time.perf_counter()

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed)
                    ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
                    self.model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        **self._generate_kwargs(settings, stop, streamer),
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, name="morris-generate", daemon=True)
        thread.start()
        chunk = Chunk(text="", prompt_tokens=len(prompt))
        try:
            for text, count, token in streamer:
                chunk = self._chunk(text, count, token, len(prompt), streamer, started)
                if text:
                    yield chunk
            thread.join()
            if failure:
                raise failure[0]
            if stop.timed_out:
                reason = "time"
            elif chunk.token in self.eos_token_ids:
                reason = "stop"
            else:
                reason = "length"
            yield dataclasses.replace(chunk, text="", finish_reason=reason)
        finally:
            stop.cancelled.set()  # the caller may stop iterating early; let the worker finish
            thread.join()

    def _chunk(
        self, text: str, count: int, token: int | None, prompt_tokens: int, streamer: Any, started: float
    ) -> Chunk:
        now = time.perf_counter()
        first = streamer.first_token_time or now
        prompt_time = max(first - started, 1e-9)
        return Chunk(
            text=text,
            token=token,
            prompt_tokens=prompt_tokens,
            generation_tokens=count,
            prompt_tps=prompt_tokens / prompt_time,
            generation_tps=count / (now - first) if now > first else 0.0,
            peak_memory_gb=peak_memory_gb(self.device),
        )
