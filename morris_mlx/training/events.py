"""What a training run reports as it goes (the metrics JSONL and the callback) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class TrainEvent:
    """One record of the metrics JSONL: kind is "plan", "estimate", "train", "val", "checkpoint" or "done"."""

    kind: str
    step: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, **self.data}


class TrainCallback(Protocol):
    def __call__(self, event: TrainEvent) -> bool | None:
        """Receive an event; return True to ask training to stop cleanly after this step."""
        ...


@dataclass
class TrainResult:
    adapter_path: Path
    steps: int
    best_val_loss: float | None
    final_train_loss: float | None
    stopped_early: bool = False
