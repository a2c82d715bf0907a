"""Measurement records: machine, versions, settings, figures; repeats reduced to min and median."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

PACKAGES = (
    "mlx",
    "mlx-metal",
    "mlx-cpu",
    "mlx-cuda-13",
    "mlx-lm",
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "morris_mlx",
)


def machine() -> dict[str, Any]:
    from morris_mlx.bench.bandwidth import accelerator_name

    info: dict[str, Any] = {
        "system": platform.system(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    gpu = accelerator_name()
    if gpu:
        info["gpu"] = gpu
    return info


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def repeat(fn: Callable[[], dict[str, float]], repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Run `fn` (returning figures) warmup + repeats times; figures as {name: {min, median, runs}}."""
    for _ in range(warmup):
        fn()
    runs = [fn() for _ in range(repeats)]
    figures: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        figures[key] = {
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
            "runs": values,
        }
    return figures


def record(
    name: str,
    backend: str,
    settings: dict[str, Any],
    figures: dict[str, Any],
    device: str | None = None,
    skipped: str | None = None,
) -> dict[str, Any]:
    """One measurement; `skipped` (with empty figures) says why a requested one could not run here."""
    rec = {
        "measurement": name,
        "backend": backend,
        "device": device,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "figures": figures,
    }
    if skipped:
        rec["skipped"] = skipped
    return rec


def median(rec: dict[str, Any], figure: str) -> float | None:
    value = rec.get("figures", {}).get(figure)
    return value["median"] if isinstance(value, dict) else value
