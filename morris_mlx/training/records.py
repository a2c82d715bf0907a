"""What a run leaves beside its adapter: the metrics JSONL, written as it goes, and the provenance file,
written last so that it vouches for finished weights."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morris_mlx.atomic import file_digests, write_json, write_text
from morris_mlx.config import Config, to_dict
from morris_mlx.files import ADAPTER_WEIGHTS, METRICS_FILENAME, PROVENANCE_FILENAME
from morris_mlx.models.fingerprint import fingerprint_model
from morris_mlx.training.events import TrainEvent
from morris_mlx.training.plan import TrainPlan


class MetricsLog:
    """Appends whole JSON lines (flushed and fsynced) so a reader never sees a partial record."""

    def __init__(self, adapter_dir: Path, truncate_after_step: int | None = None) -> None:
        self.path = Path(adapter_dir) / METRICS_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after_step is not None and self.path.exists():
            self._truncate(truncate_after_step)
        elif truncate_after_step is None and self.path.exists():
            self.path.unlink()

    def _truncate(self, step: int) -> None:
        """On resume, drop records past the checkpoint so the log reads like one uninterrupted run."""
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if record.get("kind") in ("plan", "resume") or record.get("step", 0) <= step:
                keep.append(line + "\n")
        write_text(self.path, "".join(keep))

    def write(self, event: TrainEvent) -> None:
        record = {"time": time.time(), **event.to_json()}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_metrics(adapter_dir: Path) -> list[dict[str, Any]]:
    path = Path(adapter_dir) / METRICS_FILENAME
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def hash_data(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for split in ("train.jsonl", "valid.jsonl"):
        path = Path(data_dir) / split
        if path.exists():
            digest.update(split.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def training_system_prompt(data_dir: Path) -> str | None:
    """The system turn of the first training example: the voice the adapter is taught to answer."""
    path = Path(data_dir) / "train.jsonl"
    try:
        with open(path, encoding="utf-8") as fh:
            first_row = json.loads(fh.readline())
            messages = first_row.get("messages") or first_row.get("prompt") or []  # chat or preference pairs
    except (OSError, ValueError, AttributeError):
        return None
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    return first.get("content") if first.get("role") == "system" else None


def write_provenance(
    adapter_dir: Path,
    cfg: Config,
    model_dir: Path,
    data_dir: Path,
    backend: str,
    adapter_format: str,
    plan: TrainPlan | None,
    result: dict[str, Any],
) -> Path:
    path = Path(adapter_dir) / PROVENANCE_FILENAME
    write_json(
        path,
        {
            "name": Path(adapter_dir).name,
            "format": adapter_format,
            "backend": backend,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_model": {
                "path": str(Path(model_dir).resolve()),
                "name": Path(model_dir).name,
                "fingerprint": fingerprint_model(model_dir),
            },
            "data": {"path": str(Path(data_dir).resolve()), "sha256": hash_data(data_dir)},
            "system_prompt": training_system_prompt(data_dir),
            "config": to_dict(cfg),
            "plan": asdict(plan) if plan else None,
            "metrics": result,
            # Written last, so it vouches for the finished weights; loaders check it (verify_adapter). The
            # JSON config is left out: it is checked by parsing, and people edit it by hand.
            "files": file_digests(adapter_dir, [ADAPTER_WEIGHTS[adapter_format]]),
        },
    )
    return path
