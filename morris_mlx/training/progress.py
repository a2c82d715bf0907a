"""How far a run is and how long it will take, measured as it goes: the estimate comes from the steps,
validations and checkpoints already timed in this run, not from figures about other machines."""

from __future__ import annotations

import math
import time
from typing import Any

from morris_mlx.training.plan import TrainPlan

# The first step compiles and warms caches (on MLX many times slower than the rest): it is left out.
WARMUP_STEPS = 1
ESTIMATE_AFTER = 3  # timed steps before the first estimate is printed


class Stopwatch:
    """Mean durations of steps, validations and checkpoint saves, and the time left from them."""

    def __init__(self, plan: TrainPlan, start_step: int) -> None:
        self.plan, self.start_step = plan, start_step
        self.started = time.perf_counter()
        self._sums = {"step": 0.0, "val": 0.0, "save": 0.0}
        self._counts = {"step": 0, "val": 0, "save": 0}
        self._seen_steps = 0

    def add(self, kind: str, seconds: float) -> None:
        if kind == "step":
            self._seen_steps += 1
            if self._seen_steps <= WARMUP_STEPS:
                return
        self._sums[kind] += seconds
        self._counts[kind] += 1

    def mean(self, kind: str) -> float | None:
        return self._sums[kind] / self._counts[kind] if self._counts[kind] else None

    @property
    def ready(self) -> bool:
        return self._counts["step"] >= ESTIMATE_AFTER

    def remaining(self, step: int) -> float:
        """Seconds left after `step` iterations are done; NaN until a step has been timed."""
        per_step = self.mean("step")
        if per_step is None:
            return math.nan
        plan = self.plan
        # Validations and checkpoints still to come: at the plan's steps from `step` on, and once at the end.
        vals = _multiples(step, plan.iters, plan.steps_per_eval) + 1
        saves = _multiples(step, plan.iters, plan.save_every) + 1
        left = per_step * (plan.iters - step)
        left += (self.mean("val") or 0.0) * vals + (self.mean("save") or 0.0) * saves
        return left

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _multiples(first: int, end: int, every: int) -> int:
    """How many multiples of `every` lie in [first, end)."""
    return max(0, (end - 1) // every - (first - 1) // every) if first > 0 else (end - 1) // every + 1


def format_duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressBar:
    """One rich bar: iterations, loss, validation loss, tokens/s, peak memory, and the measured ETA."""

    def __init__(self, label: str, total: int, start: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            disable=quiet,
        )
        self.task = self.bar.add_task("train", total=total, completed=start, stats="")
        self.train, self.val, self.eta = "loss -", "val -", "eta ?"

    def __enter__(self) -> ProgressBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def advance(self, eta_seconds: float) -> None:
        self.eta = f"eta {format_duration(eta_seconds)}"
        self.bar.advance(self.task)
        self._show()

    def show(
        self, loss: float | None = None, tps: float = 0.0, peak_gb: float = 0.0, val: float | None = None
    ) -> None:
        if loss is not None:
            self.train = f"loss {loss:.3f} | {tps:,.0f} tok/s | peak {peak_gb:.2f} GB"
        if val is not None:
            self.val = f"val {val:.3f}"
        self._show()

    def _show(self) -> None:
        self.bar.update(self.task, stats=f"{self.train} | {self.val} | {self.eta}")
