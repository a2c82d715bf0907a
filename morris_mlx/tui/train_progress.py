"""A training run's progress, folded from metrics records.

The same records arrive two ways: as TrainEvents from a run the TUI started, and as lines of an adapter
directory's metrics.jsonl for a run it attached to. Both go through `apply`, read defensively: a field
missing, or NaN (an ETA before the first step), leaves what was known.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError
from morris_mlx.files import METRICS_FILENAME
from morris_mlx.paths import adapters_dir


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


@dataclass
class TrainProgress:
    total_steps: int | None = None
    step: int = 0
    loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    tokens_per_second: float | None = None
    eta_s: float | None = None
    peak_memory_gb: float | None = None
    learning_rate: float | None = None
    resumed: bool = False
    train_points: list[tuple[int, float]] = field(default_factory=list)
    val_points: list[tuple[int, float]] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    done: dict[str, Any] | None = None

    def apply(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        step = record.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            self.step = max(self.step, step) if kind != "plan" else step
        else:
            step = self.step
        if kind == "plan":
            total = record.get("iters") or record.get("total_steps")
            if isinstance(total, int) and total > 0:
                self.total_steps = total
            self.resumed = bool(record.get("resumed"))
            # A resumed log keeps the records before the checkpoint: drop points past it.
            self.train_points = [p for p in self.train_points if p[0] <= step]
            self.val_points = [p for p in self.val_points if p[0] <= step]
            self.done = None
        elif kind == "train":
            loss = _number(record.get("loss"))
            if loss is not None:
                self.loss = loss
                self.train_points.append((step, loss))
            for name in ("tokens_per_second", "eta_s", "peak_memory_gb", "learning_rate"):
                value = _number(record.get(name))
                if value is not None:
                    setattr(self, name, value)
        elif kind == "val":
            val = _number(record.get("val_loss", record.get("loss")))
            if val is not None:
                self.val_loss = val
                self.val_points.append((step, val))
                self.best_val_loss = val if self.best_val_loss is None else min(self.best_val_loss, val)
        elif kind == "checkpoint":
            self.checkpoints.append((step, str(record.get("path", ""))))
        elif kind == "done":
            self.done = dict(record)
            self.eta_s = 0.0
            best = _number(record.get("best_val_loss"))
            if best is not None:
                self.best_val_loss = best

    @property
    def fraction(self) -> float | None:
        if not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def adapter_dir_for(text: str) -> Path:
    """A training output named in the train screen: a plain name lands in the adapters folder, anything
    that looks like a path is taken as one."""
    text = text.strip()
    if not text:
        raise MorrisError("the adapter name is empty; give a name such as morris-r16")
    if os.sep in text or text.startswith((".", "~")):
        return Path(text).expanduser()
    from morris_mlx.registry import check_name

    return adapters_dir() / check_name(text)


def metrics_path(adapter_dir: Path) -> Path:
    return Path(adapter_dir) / METRICS_FILENAME
