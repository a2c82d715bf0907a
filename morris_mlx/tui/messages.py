"""Messages between the TUI's workers, screens and app, as dataclasses (the Posting/Elia way).

Worker threads post these (post_message is thread-safe); they bubble from a screen up to the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from morris_mlx.review.flag import Flag
from morris_mlx.tui.article import Article


@dataclass
class GenerationDone(Message):
    """A generation ended: finished, hit its limit, or stopped by the user (the partial article)."""

    article: Article


@dataclass
class GenerationFailed(Message):
    error: str


@dataclass
class ReviewDone(Message):
    """The review of an article finished: `text` is what was reviewed, `flags` what to check in it."""

    text: str
    flags: list[Flag]


@dataclass
class ReviewFailed(Message):
    error: str


@dataclass
class CompareDone(Message):
    """One side of a side-by-side comparison finished (or was stopped)."""

    side: str  # "a" | "b"
    article: Article


@dataclass
class CompareFailed(Message):
    side: str
    error: str


@dataclass
class TrainRecord(Message):
    """One metrics record of the run being watched (a TrainEvent or a metrics.jsonl line)."""

    record: dict[str, Any]
    reset: bool = False  # the log was rewritten (a resume truncated it): start the picture over


@dataclass
class TrainEnded(Message):
    """The watched run ended, or the screen detached from it; `error` is set when it failed."""

    adapter_dir: Path
    started_here: bool
    summary: str
    error: str | None = None


@dataclass
class PairsProgress(Message):
    """Building preference pairs: `done` of `total` rejected replies written so far."""

    done: int
    total: int


@dataclass
class PairsEnded(Message):
    """Building pairs ended: `out_dir` holds them, or it is None (stopped, or failed with `error`)."""

    out_dir: Path | None
    summary: str
    error: str | None = None


@dataclass
class ModelChosen(Message):
    """The user picked a base model directory (None: the configured or embedded default)."""

    model_dir: Path | None


@dataclass
class AdapterChosen(Message):
    """The user picked an adapter (None: the base model alone)."""

    adapter_path: Path | None
