"""What both backends share around training: the plan (iterations from epochs), the metrics JSONL,
the provenance file stored beside every adapter, and the checkpoint layout."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morris_mlx.atomic import file_digests, write_json
from morris_mlx.backends.base import (
    CHECKPOINTS_DIRNAME,
    METRICS_FILENAME,
    PROVENANCE_FILENAME,
    TrainEvent,
)
from morris_mlx.config import Config, TrainConfig, to_dict
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

MIN_TRAIN_EXAMPLES = 2
ADAPTER_WEIGHTS = {"mlx": "adapters.safetensors", "peft": "adapter_model.safetensors"}


@dataclass
class TrainPlan:
    examples: int
    tokens: int
    iters: int  # micro-batches
    updates: int  # optimizer updates
    grad_accumulation: int
    steps_per_eval: int
    save_every: int
    epochs: float

    def describe(self) -> str:
        return (
            f"plan: {self.examples} examples, {self.tokens:,} tokens, {self.iters} iterations "
            f"= {self.updates} optimizer updates (accumulation {self.grad_accumulation}, "
            f"{self.epochs:.2f} epochs); validation every {self.steps_per_eval}, "
            f"checkpoint every {self.save_every} iterations"
        )


LARGE_CORPUS_BATCHES = 400  # from here on, accumulation 8 smooths updates without starving them
VALIDATIONS_PER_RUN = 8


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(value / multiple)) * multiple)


def make_plan(cfg: TrainConfig, examples: int, tokens: int) -> TrainPlan:
    """Iterations from epochs (or --iters), with a floor on optimizer updates for small corpora.

    Accumulation only pays when there are many batches; on tens of articles it leaves a handful of
    updates that teach nothing (issue 13 measured 6 updates: -3% perplexity; 75 updates: -15%).
    Iterations, validations and checkpoints land on whole updates so a resume never has to restore
    half-accumulated gradients.
    """
    if examples < max(MIN_TRAIN_EXAMPLES, cfg.batch_size):
        raise MorrisError(
            f"the training split has {examples} examples; need at least "
            f"{max(MIN_TRAIN_EXAMPLES, cfg.batch_size)} (add articles, or lower --batch-size)"
        )
    batches = examples / cfg.batch_size
    accumulation = cfg.grad_accumulation or (1 if batches < LARGE_CORPUS_BATCHES else 8)
    if cfg.iters:
        iters = cfg.iters
    else:
        iters = max(math.ceil(cfg.epochs * batches), cfg.min_updates * accumulation)
    iters = _round_up(iters, accumulation)
    updates = iters // accumulation
    eval_every = cfg.steps_per_eval or max(1, round(updates / VALIDATIONS_PER_RUN)) * accumulation
    return TrainPlan(
        examples=examples,
        tokens=tokens,
        iters=iters,
        updates=updates,
        grad_accumulation=accumulation,
        steps_per_eval=_round_up(eval_every, accumulation),
        save_every=_round_up(cfg.save_every or eval_every, accumulation),
        epochs=iters * cfg.batch_size / examples,
    )


def warmup_updates(cfg: TrainConfig, total_updates: int) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else round(0.1 * total_updates)


def learning_rate_at(cfg: TrainConfig, update: int, total_updates: int) -> float:
    """Learning rate for optimizer update `update` (0-based): warm-up, then constant or cosine."""
    peak = cfg.learning_rate
    warmup = warmup_updates(cfg, total_updates)
    if warmup and update < warmup:
        return peak * (update + 1) / warmup
    if cfg.lr_schedule == "cosine":
        span = max(1, total_updates - warmup)
        progress = min(1.0, (update - warmup) / span)
        floor = 0.1 * peak
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak


class EarlyStopping:
    """Counts validations without improvement; `patience` of 0 never stops."""

    def __init__(self, patience: int, best: float = math.inf, since_best: int = 0) -> None:
        self.patience, self.best, self.since_best = patience, best, since_best

    def update(self, val_loss: float) -> tuple[bool, bool]:
        """Returns (improved, should_stop)."""
        improved = val_loss < self.best
        if improved:
            self.best, self.since_best = val_loss, 0
        else:
            self.since_best += 1
        return improved, bool(self.patience) and self.since_best >= self.patience


# Rough training throughput x parameters, from measured anchors (DESIGN.md): tok/s ~ K / params.
THROUGHPUT_K = {
    ("torch", "cpu"): 290 * 135e6,
    ("mlx", "cpu"): 125 * 135e6,
    ("mlx", "gpu"): 12_900 * 7.24e9,
    ("torch", "cuda"): 10_800 * 7.24e9,
    ("torch", "mps"): 1_500 * 7.24e9,
}


def estimate_seconds(plan: TrainPlan, backend: str, device: str, parameters: int) -> float | None:
    """A rough wall-clock estimate for the plan; None where we have no anchor."""
    k = THROUGHPUT_K.get((backend, device))
    if not k or not parameters or not plan.examples:
        return None
    tokens = plan.tokens / plan.examples * plan.iters * 1.0
    return tokens / (k / parameters)


def corpus_warning(plan: TrainPlan) -> str | None:
    if plan.examples < 10 or plan.tokens < 5_000:
        return (
            f"only {plan.examples} training examples ({plan.tokens:,} tokens): too little to learn a voice "
            "from; aim for 20+ articles"
        )
    return None


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
        from morris_mlx.atomic import write_text

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


def fingerprint_model(model_dir: Path) -> str:
    """A cheap identity for a base model: config.json, every safetensors header (names, shapes, dtypes,
    offsets) and the first and last MiB of each file's tensor data. The headers alone cannot tell a
    fine-tune from its base (Zephyr from Mistral: same shapes), the sampled bytes can, since fine-tuning
    moves every weight. Hashing 14 GB on every run would cost more than training a step."""
    digest = hashlib.sha256()
    model_dir = Path(model_dir)
    digest.update((model_dir / "config.json").read_bytes())
    for path in sorted(model_dir.glob("*.safetensors")):
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            digest.update(path.name.encode())
            digest.update(fh.read(min(header_len, 100_000_000)))
            digest.update(fh.read(SAMPLE_BYTES))
            size = path.stat().st_size
            fh.seek(max(fh.tell(), size - SAMPLE_BYTES))
            digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()


SAMPLE_BYTES = 1 << 20


def warn_if_other_base(adapter_path: Path, model_dir: Path) -> None:
    """Same-shaped bases load each other's adapters without error, so say so when provenance differs."""
    provenance = read_provenance(adapter_path) or {}
    expected = (provenance.get("base_model") or {}).get("fingerprint")
    if expected and expected != fingerprint_model(model_dir):
        log.warning(
            "adapter %s was trained on %s, not on %s; its output may be meaningless",
            adapter_path,
            provenance["base_model"].get("path"),
            model_dir,
        )


def hash_data(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for split in ("train.jsonl", "valid.jsonl"):
        path = Path(data_dir) / split
        if path.exists():
            digest.update(split.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
            "config": to_dict(cfg),
            "plan": asdict(plan) if plan else None,
            "metrics": result,
            # Written last, so it vouches for the finished weights; loaders check it (verify_adapter). The
            # JSON config is left out: it is checked by parsing, and people edit it by hand.
            "files": file_digests(adapter_dir, [ADAPTER_WEIGHTS[adapter_format]]),
        },
    )
    return path


def read_provenance(adapter_dir: Path) -> dict[str, Any] | None:
    path = Path(adapter_dir) / PROVENANCE_FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


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


class Timer:
    """Tokens/s and ETA over a run."""

    def __init__(self, total_steps: int, start_step: int = 0) -> None:
        self.start = time.perf_counter()
        self.total = total_steps
        self.start_step = start_step

    def eta(self, step: int) -> float:
        done = step - self.start_step
        if done <= 0:
            return float("nan")
        return (time.perf_counter() - self.start) / done * (self.total - step)
