"""mlx-lm's server engine (ModelProvider + ResponseGenerator with continuous batching) over one base
model and the adapters this server offers.

Switching adapters: mlx-lm's own provider reloads the whole model from disk whenever the (model,
adapter) pair changes. Here one base stays loaded and `MLXGenerator.set_adapter` swaps the adapter in
place: the base linears are kept by reference, so a switch costs re-fusing the rank-r update (or nothing
with fuse off), never a reload of the base. We chose that over a cache of whole models keyed by adapter
because each cached model would be a full copy of the base (14 GB for a 7B in bf16) while the swap keeps
one. mlx-lm's loop only loads a model when no batch is in flight (it drains the batch first), so the
in-place swap never changes weights under a running generation, and its prompt (KV) cache is keyed by
`model_key`, which names the adapter, so one adapter never reuses another's cache.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty as QueueEmpty
from typing import Any

from mlx_lm.models.cache import make_prompt_cache
from mlx_lm.server import ModelProvider, ResponseGenerator

from morris_mlx.backends.mlx_generate import MLXGenerator
from morris_mlx.errors import MorrisError
from morris_mlx.serve.adapters import ServedAdapter

log = logging.getLogger("morris")

# Names that always mean the base model, whatever its id ("default_model" is mlx-lm's own).
BASE_ALIASES = ("base", "default_model")


class RequestProblem(ValueError):
    """A request the server refuses, with its HTTP status and an OpenAI-style error code."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def base_model_id(model_dir: Path) -> str:
    """The id clients see for the base: the folder name, or the repo id of a Hugging Face cache snapshot."""
    model_dir = Path(model_dir)
    if model_dir.parent.name == "snapshots" and model_dir.parent.parent.name.startswith("models--"):
        return model_dir.parent.parent.name.removeprefix("models--").replace("--", "/")
    return model_dir.resolve().name


@dataclass
class Sampling:
    """Server-wide defaults a request may override (mlx-lm's --temp, --top-p, ... plus ours)."""

    max_tokens: int = 400
    temp: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.1
    chat_template_args: dict[str, Any] = field(default_factory=dict)


def mlx_server_args(
    model_dir: Path,
    sampling: Sampling,
    allowed_origins: tuple[str, ...],
    decode_concurrency: int,
    prompt_concurrency: int,
    trust_remote_code: bool,
) -> argparse.Namespace:
    """The namespace mlx-lm's server classes read their settings from (what its own argparse builds)."""
    from mlx_lm.generate import DEFAULT_QUANTIZED_KV_START

    return argparse.Namespace(
        model=str(model_dir),
        adapter_path=None,
        draft_model=None,
        num_draft_tokens=3,
        trust_remote_code=trust_remote_code,
        chat_template="",
        use_default_chat_template=False,
        chat_template_args=dict(sampling.chat_template_args),
        temp=sampling.temp,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        min_p=sampling.min_p,
        max_tokens=sampling.max_tokens,
        allowed_origins=list(allowed_origins),
        decode_concurrency=decode_concurrency,
        prompt_concurrency=prompt_concurrency,
        prefill_step_size=2048,
        prompt_cache_size=10,
        prompt_cache_bytes=None,
        kv_bits=None,
        kv_group_size=64,
        quantized_kv_start=DEFAULT_QUANTIZED_KV_START,
        pipeline=False,
    )


class MorrisModelProvider(ModelProvider):
    """One loaded base; `load(name)` puts the named adapter (or none) on it. Names are the served ones
    (see `resolve`), never paths, so no request can make the server read a file of its choosing."""

    def __init__(
        self,
        cli_args: argparse.Namespace,
        generator: MLXGenerator,
        adapters: dict[str, ServedAdapter],
        fuse: bool = True,
    ) -> None:
        super().__init__(cli_args)
        self.generator = generator
        self.adapters = adapters
        self.fuse = fuse
        self.base_id = base_model_id(generator.model_dir)
        self._aliases = {
            self.base_id: self.base_id,
            str(generator.model_dir): self.base_id,
            str(generator.model_dir.resolve()): self.base_id,
            **{alias: self.base_id for alias in BASE_ALIASES},
            **{name: name for name in adapters},
        }
        self._install(None)

    def _install(self, adapter: str | None) -> None:
        self.model = self.generator.model
        self.tokenizer = self.generator.tokenizer
        self.processor = None  # text-only: image parts are refused before they get here
        self.draft_model = None
        self.is_batchable = all(hasattr(c, "merge") for c in make_prompt_cache(self.model))
        self.model_key = (self.base_id, adapter, None)

    @property
    def served_names(self) -> list[str]:
        return [self.base_id, *self.adapters]

    def resolve(self, requested: str) -> str | None:
        """The served name a request's "model" means, or None when this server has no such model."""
        return self._aliases.get(requested)

    def resolve_request(self, model: Any, adapter: Any, draft: Any) -> str:
        """The served name for a request's model / adapters / draft_model fields; RequestProblem if bad."""
        if draft not in (None, "default_model"):
            raise RequestProblem(
                400, "draft models are not supported by this server", "unsupported", "draft_model"
            )
        name = self.resolve(model) if isinstance(model, str) else None
        if name is None:
            raise RequestProblem(
                404,
                f"The model {model!r} does not exist on this server; GET /v1/models lists: "
                + ", ".join(self.served_names),
                "model_not_found",
                "model",
            )
        if adapter is None:
            return name
        if not isinstance(adapter, str) or adapter not in self.adapters:
            raise RequestProblem(
                400,
                '"adapters" must name an adapter this server offers ('
                + (", ".join(self.adapters) or "none")
                + "); paths are not accepted",
                "invalid_adapter",
                "adapters",
            )
        if name not in (self.base_id, adapter):
            raise RequestProblem(
                400,
                f'"model" is {model!r} but "adapters" asks for {adapter!r}; pick one',
                "invalid_adapter",
                "adapters",
            )
        return adapter

    def load_default(self) -> None:
        self.load(self.base_id)

    def load(self, model_path: str, adapter_path: str | None = None, draft_model_path: str | None = None):
        """Called on mlx-lm's generation thread with the served name the handler put in the request."""
        adapter = None if model_path == self.base_id else model_path
        if adapter is not None and adapter not in self.adapters:
            raise ValueError(f"the model {model_path!r} is not served here")
        if self.model_key != (self.base_id, adapter, None):
            try:
                self.generator.set_adapter(
                    self.adapters[adapter].mlx_path if adapter else None, fuse=self.fuse
                )
            except MorrisError:
                self._install(None)  # set_adapter left the bare base in place
                raise
            self._install(adapter)
            log.debug("now serving %s", adapter or self.base_id)
        return self.model, self.tokenizer


def _fold_system(messages: list[Any]) -> list[Any] | None:
    """The system turn folded into the first user turn, as `backends.chat_template` does for templates
    that refuse a system role (Mistral-Instruct's): training and `morris generate` saw the same prompt."""
    if len(messages) < 2 or not isinstance(messages[0], dict) or messages[0].get("role") != "system":
        return None
    first, second = messages[0], messages[1]
    merged = {**second, "content": f"{first.get('content') or ''}\n\n{second.get('content') or ''}"}
    return [merged, *messages[2:]]


def wait_for_thread_exit(thread: threading.Thread, timeout: float = 5.0) -> None:
    """Wait until the OS thread behind an already joined `thread` is gone.

    `Thread.join()` returns before the OS thread runs its C++ thread-local destructors. MLX keeps a
    compile cache per thread whose destructor calls back into Python; if the interpreter has begun
    finalizing by then the process aborts ("terminate called without an active exception", exit 134).
    Seen with mlx 0.32 on Linux in 11 of 12 runs of mlx-lm's own server classes stopped just before exit.
    """
    tasks = Path("/proc/self/task")
    if thread.native_id is None:
        return
    if not tasks.is_dir():
        time.sleep(0.2)  # no /proc (macOS): a grace period for the destructors
        return
    deadline = time.monotonic() + timeout
    while (tasks / str(thread.native_id)).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class MorrisResponseGenerator(ResponseGenerator):
    """mlx-lm's continuous-batching generator with three changes: requests are taken grouped by model,
    the chat template falls back like ours, and stopping waits until the thread is truly gone.

    Grouping: mlx-lm batches only requests for the model in the batch and drains the batch for any other,
    so traffic alternating between adapters ran one request at a time (measured on the tiny test model,
    32 requests x 32 tokens, 8 clients: 80 req/s for one model, 6-28 req/s alternating three; 40-55 with
    this change). Here a waiting request for the loaded model goes first; one that has waited `max_wait`
    seconds goes next whatever it asks for, so no adapter starves.
    """

    def __init__(self, model_provider: MorrisModelProvider, prompt_cache: Any, max_wait: float = 2.0) -> None:
        self._pending: deque[tuple[float, Any]] = deque()  # (time taken off the queue, request)
        self._max_wait = max_wait
        super().__init__(model_provider, prompt_cache)  # starts the generation thread: set ours first

    def _next_request(self, timeout: float | None = None) -> Any:
        if not self._pending:
            first = super()._next_request(timeout)
            if first is None:
                return None
            self._pending.append((time.monotonic(), first))
        while True:
            try:
                self._pending.append((time.monotonic(), self.requests.get_nowait()))
            except QueueEmpty:
                break
        provider = self.model_provider
        loaded = provider.model_key[1] if provider.model_key else None
        loaded = loaded or provider.base_id
        if time.monotonic() - self._pending[0][0] < self._max_wait:
            for i, (_, item) in enumerate(self._pending):
                if item[2].model.model == loaded:
                    del self._pending[i]
                    return item
        return self._pending.popleft()[1]

    def stop_and_join(self) -> None:
        super().stop_and_join()
        wait_for_thread_exit(self._generation_thread)

    def _tokenize(self, tokenizer, request, args):
        from jinja2 import TemplateError

        try:
            return super()._tokenize(tokenizer, request, args)
        except TemplateError:
            folded = _fold_system(request.messages) if request.request_type == "chat" else None
            if folded is None:
                raise
            request.messages = folded
            return super()._tokenize(tokenizer, request, args)
