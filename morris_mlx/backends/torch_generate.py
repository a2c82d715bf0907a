"""Streaming generation with transformers + peft: the torch side of the Generator protocol.

`generate()` runs in a worker thread and hands text to the caller through a TextIteratorStreamer.
Sampling follows mlx-lm's semantics rather than transformers' warpers, so a setting means the same
on both backends: the repetition penalty looks at the last 20 tokens, and top-p, min-p and top-k
filter the log-probabilities before the temperature divides them.

Adapters are loaded with PEFT and merged into the weights for speed (`fuse`); swapping one unmerges
first, so the base weights are loaded once per Generator.

Batches (`generate_batch`) go through the same `generate()` on a left-padded batch with an attention
mask; `RowSampling` and `RowStop` give each row its own settings, seed, max_tokens and finish reason.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import TextIteratorStreamer

from morris_mlx.adapter_format.provenance import warn_if_other_base
from morris_mlx.backends.base import BatchResult, Chunk
from morris_mlx.backends.torch_backend import (
    PEFT_WEIGHTS,
    peak_memory_gb,
    peft_dir,
    quiet_peft,
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


class RowSampling(LogitsProcessor):
    """MlxSampling for a left-padded batch, with each sampled row drawn from its own generator.

    Each row's token is drawn here and every other token masked to -inf, so generate() runs greedy
    and takes it. That way a row's sample depends only on its own seed, never on its neighbours, and
    with the same seed it matches a lone `stream()`, which draws from the global RNG seeded alike.
    Rows sharing their settings are filtered in one call: the vocabulary sort behind top-p costs far
    more per row when done row by row (3x on the 2-core CPU)."""

    def __init__(self, settings: Sequence[GenerateConfig], pads: Sequence[int], device: str) -> None:
        groups: dict[tuple[float, ...], list[int]] = {}
        for row, s in enumerate(settings):
            knobs = (s.temp, s.top_p, s.min_p, s.top_k, s.repetition_penalty)
            groups.setdefault(knobs, []).append(row)
        self.groups = [(MlxSampling(settings[rows[0]]), rows) for rows in groups.values()]
        self.pads = torch.tensor(list(pads), device=device)
        self.generators = [self._generator(s.seed, device) if s.temp > 0 else None for s in settings]
        self.sampled = [row for row, g in enumerate(self.generators) if g is not None]

    @staticmethod
    def _generator(seed: int | None, device: str) -> torch.Generator:
        # Unseeded rows still derive from the global RNG, so torch.manual_seed outside governs them.
        seed = int(torch.randint(2**62, (1,)).item()) if seed is None else seed
        return torch.Generator(device=device).manual_seed(seed)

    def _context(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        """The tokens the repetition penalty reads, with any left padding among them replaced by the
        row's last token: padding is no part of the text, and a token penalised twice is penalised once."""
        tail = input_ids[:, -REPETITION_CONTEXT:]
        first = input_ids.shape[1] - tail.shape[1]
        positions = torch.arange(first, input_ids.shape[1], device=input_ids.device)
        return torch.where(positions[None, :] < self.pads[:, None], tail[:, -1:], tail)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        context = self._context(input_ids)
        out = torch.empty_like(scores, dtype=torch.float32)
        for sampling, rows in self.groups:
            out[rows] = sampling(context[rows], scores[rows])
        if self.sampled:
            out[self.sampled] = self._draw(torch.softmax(out[self.sampled], dim=-1))
        return out

    def _draw(self, probs: torch.Tensor) -> torch.Tensor:
        """One token per row as torch.multinomial draws one sample (argmax of p / Exp(1) noise), with
        each row's noise from its own generator: the same token a lone stream() draws, and 3x faster
        than calling multinomial row by row."""
        noise = torch.stack(
            [
                torch.empty(probs.shape[-1], device=probs.device).exponential_(
                    1, generator=self.generators[row]
                )
                for row in self.sampled
            ]
        )
        tokens = (probs / noise).argmax(dim=-1, keepdim=True)
        return torch.full_like(probs, -math.inf).scatter_(-1, tokens, 0.0)


class RowStop(StoppingCriteria):
    """Stops each row of a batch at its own EOS, max_tokens or the time limit, and remembers which
    and when, since generate() pads finished rows and the padding says neither."""

    def __init__(
        self, width: int, max_tokens: Sequence[int], eos_ids: Sequence[int], time_limit: float | None
    ) -> None:
        self.width = width
        self.max_tokens = list(max_tokens)
        self.eos_ids = set(eos_ids)
        self.deadline = None if time_limit is None else time.perf_counter() + time_limit
        self.reasons: list[str | None] = [None] * len(self.max_tokens)
        self.lengths = [0] * len(self.max_tokens)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.width
        last = input_ids[:, -1].tolist()
        timed_out = self.deadline is not None and time.perf_counter() >= self.deadline
        for row, token in enumerate(last):
            if self.reasons[row] is not None:
                continue
            if token in self.eos_ids:
                self.reasons[row] = "stop"
            elif generated >= self.max_tokens[row]:
                self.reasons[row] = "length"
            elif timed_out:
                self.reasons[row] = "time"
            self.lengths[row] = generated
        done = [reason is not None for reason in self.reasons]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


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

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int] = ()) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.eos_ids = set(eos_ids)
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
            # An EOS counts but is never text, as in mlx-lm, even where it is no special token that
            # skip_special_tokens would drop (a generation_config may name an ordinary one).
            value = torch.tensor([i for i in ids if i not in self.eos_ids], dtype=torch.long)
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

    def encode_text(self, text: str) -> list[int]:
        """Plain text, no chat template: what a page of the writer's prose is to the model."""
        return [int(i) for i in self.tokenizer.encode(text)]

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
            # A static KV cache lets generate() compile the decode step (torch.compile); on an H100 that
            # took fused 7B decoding from about 40 to 120 tok/s (docs/backend-choice.md).
            kwargs["cache_implementation"] = "static"
        return kwargs

    def stream(self, messages: list[dict[str, str]], settings: GenerateConfig) -> Iterator[Chunk]:
        prompt = self.encode_chat(messages, add_generation_prompt=True)
        streamer = CountingStreamer(self.tokenizer, self.eos_token_ids)
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

    def generate_batch(
        self,
        conversations: Sequence[list[dict[str, str]]],
        settings: Sequence[GenerateConfig],
        batch_size: int,
    ) -> Iterator[tuple[int, BatchResult]]:
        """Consecutive batches of `batch_size` through one left-padded generate() call each; results come
        in input order. Each row stops at its own EOS or max_tokens; the time limit holds per batch."""
        prompts = [self.encode_chat(messages, add_generation_prompt=True) for messages in conversations]
        for start in range(0, len(prompts), batch_size):
            rows = range(start, min(start + batch_size, len(prompts)))
            results = self._generate_rows([prompts[i] for i in rows], [settings[i] for i in rows])
            yield from zip(rows, results, strict=True)

    def _pad_id(self) -> int:
        # Any id will do: padding is masked out on the left, and what generate() appends to a finished
        # row is cut off at RowStop's length. The tokenizer's own pad token keeps logs and dumps readable.
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else (self.eos_token_ids or [0])[0]

    def _generate_rows(self, prompts: list[list[int]], settings: list[GenerateConfig]) -> list[BatchResult]:
        # Padding by hand rather than with tokenizer.pad(): the token ids are already built by the chat
        # template, and the shared tokenizer's pad token and padding side stay as they were.
        width = max(len(p) for p in prompts)
        pads = [width - len(p) for p in prompts]
        pad = self._pad_id()
        rows = list(zip(pads, prompts, strict=True))
        ids = torch.tensor([[pad] * n + p for n, p in rows], dtype=torch.long, device=self.device)
        mask = torch.tensor([[0] * n + [1] * len(p) for n, p in rows], device=self.device)
        max_tokens = [s.max_tokens for s in settings]
        stop = RowStop(width, max_tokens, self.eos_token_ids, settings[0].time_limit)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max(max_tokens),
            do_sample=False,  # RowSampling has already drawn each sampled row's token
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=1.0,
            logits_processor=LogitsProcessorList([RowSampling(settings, pads, self.device)]),
            stopping_criteria=StoppingCriteriaList([stop]),
            eos_token_id=self.eos_token_ids or None,
            pad_token_id=pad,
        )
        if self.device == "cuda":
            kwargs["cache_implementation"] = "static"  # as in stream(): lets generate() compile the step
        with self._lock, torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return [self._row_result(out[row, width:], stop, row, len(p)) for row, p in enumerate(prompts)]

    def _row_result(
        self, generated: torch.Tensor, stop: RowStop, row: int, prompt_tokens: int
    ) -> BatchResult:
        reason = stop.reasons[row] or "length"
        length = stop.lengths[row] if stop.reasons[row] else generated.shape[0]
        tokens = generated[:length].tolist()
        if reason == "stop":
            tokens = tokens[:-1]  # the EOS counts as generated but is no text
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return BatchResult(text, reason, prompt_tokens, length)

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
