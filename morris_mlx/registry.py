"""The adapter registry: every trained or imported adapter under the adapter roots, by name.

An adapter is a directory holding `adapters.safetensors` (MLX, as mlx-lm writes it) or
`adapter_model.safetensors` (PEFT). Its name is its directory name; the CLI (`morris adapters`) and the
TUI both go through this module, so names are checked in one place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morris_mlx.adapter_format.provenance import read_provenance
from morris_mlx.atomic import write_json
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_CONFIG, MLX_WEIGHTS, PEFT_WEIGHTS, PROVENANCE_FILENAME
from morris_mlx.paths import adapters_dir, morris_home
from morris_mlx.pickled import PEFT_PICKLE, pickled_adapter_refused
from morris_mlx.training import read_metrics

MAX_NAME_LENGTH = 128
# atomic_dir builds under NAME.partial and swaps via NAME.old; delete renames aside to .NAME.deleting.
RESERVED_SUFFIXES = (".partial", ".old", ".deleting")


@dataclass
class AdapterInfo:
    name: str
    path: Path
    format: str  # "mlx" or "peft"
    base_model: str | None
    backend: str | None
    created: str | None
    config: dict[str, Any] = field(default_factory=dict)  # adapter_config.json as stored
    metrics: dict[str, Any] = field(default_factory=dict)  # best_val_loss, final_train_loss, steps, ...
    provenance: dict[str, Any] = field(default_factory=dict)  # the raw morris_adapter.json, {} if none


def adapter_roots() -> list[Path]:
    """Folders searched for adapters: the adapters folder first, then MORRIS_HOME/adapters."""
    roots: list[Path] = []
    for root in (adapters_dir(), morris_home() / "adapters"):
        root = root.expanduser()
        if not any(_same(root, seen) for seen in roots):
            roots.append(root)
    return roots


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def adapter_format(path: Path) -> str | None:
    """ "mlx", "peft" or None when `path` holds no adapter weights."""
    if (path / MLX_WEIGHTS).is_file():
        return "mlx"
    if (path / PEFT_WEIGHTS).is_file():
        return "peft"
    return None


def check_name(name: str) -> str:
    """Return `name` if it is usable as an adapter directory name; MorrisError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise MorrisError("adapter name is empty; give a name such as morris-r16")
    if name != name.strip():
        raise MorrisError(f"adapter name {name!r} has leading or trailing spaces; remove them")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise MorrisError(f"adapter name {name!r} contains a path separator; use a plain name (morris-r16)")
    if name in (".", "..") or name.startswith("."):
        raise MorrisError(f"adapter name {name!r} is hidden or a path step; use one not starting with '.'")
    if name.endswith(RESERVED_SUFFIXES):
        raise MorrisError(f"adapter name {name!r} ends in a reserved suffix; pick another name")
    if any(ord(ch) < 32 for ch in name) or "\0" in name:
        raise MorrisError(f"adapter name {name!r} contains control characters; use letters, digits, - and _")
    if len(name) > MAX_NAME_LENGTH:
        raise MorrisError(f"adapter name is {len(name)} characters long; keep it under {MAX_NAME_LENGTH}")
    return name


def _metrics(path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """Metrics from the provenance file, filled in from metrics.jsonl for a run that never finished."""
    metrics = dict(provenance.get("metrics") or {})
    records = read_metrics(path)
    train = [r for r in records if r.get("kind") == "train" and isinstance(r.get("loss"), (int, float))]
    val = [r for r in records if r.get("kind") == "val" and isinstance(r.get("val_loss"), (int, float))]
    steps = [r["step"] for r in records if isinstance(r.get("step"), int)]
    if "final_train_loss" not in metrics and train:
        metrics["final_train_loss"] = train[-1]["loss"]
    if "best_val_loss" not in metrics and val:
        metrics["best_val_loss"] = min(r["val_loss"] for r in val)
    if "steps" not in metrics and steps:
        metrics["steps"] = max(steps)
    return metrics


def _created(path: Path, provenance: dict[str, Any]) -> str | None:
    if provenance.get("created"):
        return str(provenance["created"])
    fmt = adapter_format(path)
    weights = path / (MLX_WEIGHTS if fmt == "mlx" else PEFT_WEIGHTS)
    try:
        return datetime.fromtimestamp(weights.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def _base_model(config: dict[str, Any], provenance: dict[str, Any]) -> str | None:
    base = provenance.get("base_model")
    if isinstance(base, dict):
        return base.get("path") or base.get("name")
    if isinstance(base, str):
        return base
    # A PEFT adapter names its base in its own config; an MLX one written by mlx-lm names it as "model".
    return config.get("base_model_name_or_path") or config.get("model")


def read_adapter(path: Path, name: str | None = None) -> AdapterInfo:
    """Describe the adapter directory `path` (MorrisError if it holds no adapter weights)."""
    path = Path(path)
    fmt = adapter_format(path)
    if fmt is None and (path / PEFT_PICKLE).is_file():
        raise pickled_adapter_refused(path)
    if fmt is None:
        raise MorrisError(
            f"{path} holds no adapter ({MLX_WEIGHTS} or {PEFT_WEIGHTS}); pass an adapter directory"
        )
    config: dict[str, Any] = {}
    config_path = path / ADAPTER_CONFIG
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError:
            config = {}
    provenance = read_provenance(path) or {}
    return AdapterInfo(
        name=name or path.name,
        path=path,
        format=fmt,
        base_model=_base_model(config, provenance),
        backend=provenance.get("backend"),
        created=_created(path, provenance),
        config=config,
        metrics=_metrics(path, provenance),
        provenance=provenance,
    )


def _candidates() -> list[Path]:
    found: list[Path] = []
    names: set[str] = set()
    for root in adapter_roots():
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if child.name.startswith(".") or child.name.endswith(RESERVED_SUFFIXES):
                continue
            if child.is_dir() and child.name not in names and adapter_format(child):
                # The first root wins when two hold the same name, as in get_adapter.
                names.add(child.name)
                found.append(child)
    return found


def list_adapters() -> list[AdapterInfo]:
    """Every adapter under the roots, newest first."""
    infos = [read_adapter(path) for path in _candidates()]
    infos.sort(key=lambda info: (info.created or "", info.name), reverse=True)
    return infos


def _find(name: str) -> Path | None:
    for root in adapter_roots():
        candidate = root / name
        if candidate.is_dir() and adapter_format(candidate):
            return candidate
    return None


def get_adapter(name_or_path: str) -> AdapterInfo:
    """An adapter by registry name, or by a path to an adapter directory."""
    if not name_or_path:
        raise MorrisError("no adapter given; pass a name from `morris adapters list` or a directory")
    as_path = Path(name_or_path).expanduser()
    looks_like_path = os.sep in name_or_path or name_or_path.startswith((".", "~"))
    if (looks_like_path or not _find(name_or_path)) and as_path.is_dir():
        return read_adapter(as_path)
    if looks_like_path:
        raise MorrisError(f"adapter directory {name_or_path} does not exist or holds no adapter weights")
    found = _find(check_name(name_or_path))
    if found is None:
        known = ", ".join(info.name for info in list_adapters()) or "none yet"
        raise MorrisError(f"no adapter named {name_or_path!r} (known: {known}); see `morris adapters list`")
    return read_adapter(found)


def _registered(name: str) -> Path:
    check_name(name)
    found = _find(name)
    if found is None:
        raise MorrisError(f"no adapter named {name!r}; see `morris adapters list`")
    return found


def rename_adapter(old: str, new: str) -> AdapterInfo:
    """Rename within its root; refuses when `new` exists in any root (nothing is overwritten)."""
    source = _registered(old)
    check_name(new)
    if new == old:
        raise MorrisError(f"adapter is already named {new!r}")
    for root in adapter_roots():
        if (root / new).exists() or (root / f"{new}.partial").exists():
            raise MorrisError(
                f"an adapter or folder named {new!r} already exists in {root}; "
                "delete it first or pick another name"
            )
    target = source.with_name(new)
    os.replace(source, target)
    provenance = read_provenance(target)
    if provenance is not None:
        provenance["name"] = new
        write_json(target / PROVENANCE_FILENAME, provenance)
    return read_adapter(target)


def delete_adapter(name: str) -> None:
    """Remove a registered adapter. It is renamed aside first so a crash mid-delete never leaves a
    half-deleted directory that still looks like an adapter."""
    source = _registered(name)
    doomed = source.with_name(f".{source.name}.deleting")
    if doomed.exists():
        shutil.rmtree(doomed)
    os.replace(source, doomed)
    shutil.rmtree(doomed)
