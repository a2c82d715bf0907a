"""Resumable checkpoints: one folder per step under the adapter's `checkpoints/`, each written whole or
not at all (atomic_dir), with a manifest that is checked before it is trusted.

A checkpoint holds what the backend saves of itself (adapter, optimizer state, RNG state) and the
loop's own state (state.json); resuming from it continues the run as if it had never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from morris_mlx.atomic import atomic_dir, verify_manifest, write_json
from morris_mlx.files import CHECKPOINT_STATE, CHECKPOINTS_DIRNAME
from morris_mlx.training.trainer import StepTrainer

log = logging.getLogger("morris")


def checkpoint_dir(adapter_dir: Path, step: int) -> Path:
    return Path(adapter_dir) / CHECKPOINTS_DIRNAME / f"step_{step:07d}"


def checkpoints(adapter_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a `.partial` one is never listed)."""
    root = Path(adapter_dir) / CHECKPOINTS_DIRNAME
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and "." not in p.name
    )


def prune_checkpoints(adapter_dir: Path, keep: int = 2) -> None:
    """Delete all but the newest `keep` checkpoints, and what killed runs left behind.

    Each goes to a `.deleting` name before it is removed: a process killed halfway through rmtree must not
    leave a half-empty folder that still looks like a checkpoint.
    """
    for old in checkpoints(adapter_dir)[:-keep]:
        doomed = old.with_name(old.name + ".deleting")
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    root = Path(adapter_dir) / CHECKPOINTS_DIRNAME
    # Called after a save completed, so no .partial here is being written now.
    for stale in root.glob("step_*.*"):
        if stale.is_dir() and stale.suffix in (".deleting", ".partial", ".old"):
            shutil.rmtree(stale, ignore_errors=True)


class CheckpointStore:
    """Saves, finds and restores the checkpoints of one adapter folder for one backend."""

    def __init__(self, adapter_dir: Path, trainer: StepTrainer, keep: int = 2) -> None:
        self.adapter_dir, self.trainer, self.keep = Path(adapter_dir), trainer, keep

    def save(self, step: int, state: dict[str, Any]) -> Path:
        target = checkpoint_dir(self.adapter_dir, step)
        with atomic_dir(target, overwrite=True, manifest=True) as tmp:
            self.trainer.save_state(tmp)
            write_json(tmp / CHECKPOINT_STATE, {"step": step, **state})
        prune_checkpoints(self.adapter_dir, self.keep)
        return target

    def latest(self) -> Path | None:
        """The newest checkpoint that reads back; an unreadable one is reported and skipped."""
        for path in reversed(checkpoints(self.adapter_dir)):
            try:
                verify_manifest(path, f"checkpoint {path.name}", "it is skipped")
                json.loads((path / CHECKPOINT_STATE).read_text(encoding="utf-8"))
                self.trainer.check_state(path)
                return path
            except Exception as exc:  # noqa: BLE001 - any unreadable file disqualifies the checkpoint
                log.warning("checkpoint %s is unreadable (%s); trying the previous one", path.name, exc)
        return None

    def restore(self, path: Path) -> dict[str, Any]:
        """Load the backend's state from `path`; returns the loop's state (step, best loss, ...)."""
        self.trainer.load_state(path)
        return json.loads((path / CHECKPOINT_STATE).read_text(encoding="utf-8"))
