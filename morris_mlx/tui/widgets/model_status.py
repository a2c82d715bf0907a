"""A one-line bar saying what the shared model is doing, with a moving bar while it loads."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

ICONS = {"unloaded": "○", "loading": "◌", "ready": "●", "error": "✗"}


class ModelStatus(Horizontal):
    """Follows the app's `model_state` (phase, detail); shows elapsed seconds while loading."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, classes="model-status")
        self._since = time.monotonic()
        self._phase = "unloaded"
        self._detail = ""

    def compose(self) -> ComposeResult:
        yield Label("", classes="model-status-text")
        yield ProgressBar(total=None, show_percentage=False, show_eta=False, classes="model-status-bar")

    def on_mount(self) -> None:
        self.watch(self.app, "model_state", self._changed, init=True)
        self.set_interval(0.5, self._tick)

    def _changed(self, state: tuple[str, str]) -> None:
        phase, detail = state
        if phase != self._phase:
            self._since = time.monotonic()
        self._phase, self._detail = phase, detail
        self.set_class(phase == "loading", "-loading")
        self.set_class(phase == "error", "-error")
        self._render_text()

    def _tick(self) -> None:
        if self._phase == "loading":
            self._render_text()

    def _render_text(self) -> None:
        text = f"{ICONS.get(self._phase, '?')} model: {self._detail}"
        if self._phase == "loading":
            text += f"… {time.monotonic() - self._since:.0f}s"
        self.query_one(".model-status-text", Label).update(Text(text))
