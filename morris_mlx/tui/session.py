"""The one model the TUI's screens share.

It is loaded lazily, on the first generation (or an explicit "load model"), inside a worker thread, and
an adapter change is applied with `set_adapter` instead of a reload: the base weights of a 7B model take
far longer to load than an adapter takes to swap. One lock serialises every use, so the write screen and
the compare view on the models screen never drive the same generator at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from morris_mlx.backends.base import Backend, Generator
from morris_mlx.config import Config
from morris_mlx.errors import MorrisError, explain, one_line

BackendFactory = Callable[[str], Backend]
StateReporter = Callable[[str, str], None]  # (phase, detail); phase: unloaded | loading | ready | error

LOCK_POLL_S = 0.1


class Cancelled(Exception):
    """The worker waiting for the model was cancelled before it got it."""


class ModelLoadError(MorrisError):
    """Loading the model or applying an adapter failed; the message says which, and what to try."""


def describe_error(exc: BaseException, doing: str) -> str:
    """One line for a notification: what failed while `doing`, and what to try."""
    text = one_line(str(exc).strip())
    hint = explain(exc, doing, tui=True)
    if hint is not None:
        return hint
    if isinstance(exc, MorrisError):
        return text
    if isinstance(exc, FileNotFoundError):
        return f"{doing} failed: {text or 'a file is missing'}"
    return (
        f"{doing} failed: {type(exc).__name__}: {text}" if text else f"{doing} failed: {type(exc).__name__}"
    )


class ModelSession:
    """Which base model and adapter the user picked, and the generator loaded for them."""

    def __init__(
        self,
        backend_factory: BackendFactory,
        config: Config,
        model_dir: Path | None = None,
        adapter_path: Path | None = None,
        report: StateReporter | None = None,
    ) -> None:
        self.backend_factory = backend_factory
        self.config = config
        self.model_dir = Path(model_dir) if model_dir else None
        self.adapter_path = Path(adapter_path) if adapter_path else None
        self.report: StateReporter = report or (lambda phase, detail: None)
        self.generator: Generator | None = None
        self._backend: Backend | None = None
        self._loaded_model: Path | None = None
        self._loaded_adapter: Path | None = None
        self._adapter_dirty = False
        self._lock = threading.Lock()

    # -- choices, made on the UI thread; they take effect on the next use --------------------------

    def choose_model(self, model_dir: Path | None) -> None:
        self.model_dir = Path(model_dir) if model_dir else None

    def choose_adapter(self, adapter_path: Path | None) -> None:
        self.adapter_path = Path(adapter_path) if adapter_path else None

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def describe(self) -> str:
        model = self.model_dir.name if self.model_dir else "default model"
        adapter = self.adapter_path.name if self.adapter_path else "no adapter"
        return f"{model} + {adapter}"

    # -- use, from worker threads -------------------------------------------------------------------

    def backend(self) -> Backend:
        """The backend object, made once (importing mlx or torch is slow, so not at startup)."""
        if self._backend is None:
            self._backend = self.backend_factory(self.config.model.backend)
        return self._backend

    def resolve_model_dir(self) -> Path:
        if self.model_dir is not None:
            from morris_mlx.models.resolve import check_model_dir

            return check_model_dir(self.model_dir)
        from morris_mlx.models.resolve import resolve_model

        return resolve_model(self.config.model)

    @contextlib.contextmanager
    def use(
        self, cancelled: Callable[[], bool], adapter: Path | None | str = "chosen"
    ) -> Iterator[Generator]:
        """Hold the model for one job: wait for it (cancellably), load or swap lazily, yield it.

        `adapter` overrides the chosen adapter for this job only (the compare view), "chosen" keeps it.
        """
        while not self._lock.acquire(timeout=LOCK_POLL_S):
            if cancelled():
                raise Cancelled
        try:
            if cancelled():
                raise Cancelled
            want = self.adapter_path if adapter == "chosen" else adapter
            yield self._ready(want)
        finally:
            self._lock.release()

    def load_now(self, cancelled: Callable[[], bool]) -> None:
        with self.use(cancelled):
            pass

    def _ready(self, adapter: Path | None) -> Generator:
        try:
            model_dir = self.resolve_model_dir()
        except MorrisError as exc:
            self.report("error", str(exc))
            raise
        fuse = self.config.generate.fuse
        if self.generator is None or self._loaded_model != model_dir:
            self.generator = None
            label = model_dir.name + (f" + {adapter.name}" if adapter else "")
            self.report("loading", f"loading {label}")
            try:
                self.generator = self.backend().load(model_dir, adapter, fuse)
            except Exception as exc:
                message = describe_error(exc, f"loading {label}")
                if adapter is not None and "out of memory" not in message:
                    message += " (if the adapter is the problem, pick another in Models, F2)"
                self.report("error", message)
                raise ModelLoadError(message) from exc
            self._loaded_model, self._loaded_adapter, self._adapter_dirty = model_dir, adapter, False
        elif adapter != self._loaded_adapter or self._adapter_dirty:
            label = adapter.name if adapter else "no adapter"
            self.report("loading", f"switching to {label}")
            try:
                self.generator.set_adapter(adapter, fuse)
            except Exception as exc:
                # The generator may hold half an adapter now: re-apply the last good one next time, and
                # fall back to it as the choice so the next generation works instead of failing again.
                self._adapter_dirty = True
                if adapter == self.adapter_path:
                    self.adapter_path = self._loaded_adapter
                message = describe_error(exc, f"applying adapter {label}")
                kept = self.adapter_path.name if self.adapter_path else "no adapter"
                self.report("error", message)
                raise ModelLoadError(f"{message} (kept {kept})") from exc
            self._loaded_adapter, self._adapter_dirty = adapter, False
        self.report("ready", self.loaded_label())
        return self.generator

    @property
    def loaded_model(self) -> Path | None:
        return self._loaded_model

    @property
    def loaded_adapter(self) -> Path | None:
        return self._loaded_adapter

    @property
    def backend_label(self) -> str:
        return getattr(self.generator, "backend", "") or self.config.model.backend

    def loaded_label(self) -> str:
        if self._loaded_model is None:
            return "not loaded"
        adapter = self._loaded_adapter.name if self._loaded_adapter else "no adapter"
        return f"{self._loaded_model.name} + {adapter} ({self.backend_label})"
