"""The base model's half of `morris eval`, kept between runs.

Every adapter evaluated on the same data with the same prompts and settings meets the same base model: its
replies, the replies that teach the classifier its voice and its perplexities come out the same each time,
and they are most of an evaluation's work. They are kept under MORRIS_HOME/eval-cache, one JSON file per
key. The key hashes everything that could change them: the inputs and settings the caller passes, the
model's files (name, size, modification time), the backend, its device and precision, every installed
package's version, and the source of this package itself, so an upgrade or an edit of the code recomputes
rather than reuse a stale answer. A damaged entry is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from morris_mlx import atomic
from morris_mlx.backends.base import Generator
from morris_mlx.paths import morris_home

log = logging.getLogger("morris")

FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return morris_home() / "eval-cache"


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _model_files(model_dir: Path) -> list[tuple[str, int, int]]:
    # Size and modification time, not a hash: hashing a 14 GB model on every evaluation would cost more
    # than the cache saves. Converting or downloading again rewrites the files, which moves their mtime.
    files = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        files.append((path.relative_to(model_dir).as_posix(), stat.st_size, stat.st_mtime_ns))
    return files


def _installed() -> str:
    # All of them rather than a list: the tokenizer, the chat template's renderer and the kernels behind
    # the backend each change the replies, and naming them would miss the next one.
    # A set: run from a source checkout (`python -m`), the checkout's own egg-info is found a second time.
    names = sorted({f"{d.metadata['Name']}=={d.version}".lower().replace("_", "-") for d in metadata.distributions()})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _runtime(generator: Generator) -> dict[str, Any]:
    device = str(getattr(generator, "device", ""))
    torch = sys.modules.get("torch")
    mlx = sys.modules.get("mlx.core")
    return {
        "backend": getattr(generator, "backend", type(generator).__name__),
        "device": device,
        # Which GPU decides the half-precision type and the kernels; the weights' dtype follows from it.
        "gpu": torch.cuda.get_device_name() if torch is not None and device.startswith("cuda") else None,
        "dtype": str(getattr(getattr(generator, "base", None), "dtype", "")),
        "mlx_device": str(mlx.default_device()) if mlx is not None else None,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "packages": _installed(),
    }


def cache_key(generator: Generator, model_dir: Path, inputs: dict[str, Any]) -> str:
    """A hash of `inputs` (JSON-serialisable) and of everything else the base model's answers depend on."""
    whole = {
        "format": FORMAT,
        "source": _source_digest(),
        "runtime": _runtime(generator),
        "model": [str(Path(model_dir).resolve()), _model_files(Path(model_dir))],
        "inputs": inputs,
    }
    return hashlib.sha256(json.dumps(whole, sort_keys=True, default=str).encode()).hexdigest()


def load(key: str) -> dict[str, Any] | None:
    path = cache_dir() / f"{key}.json"
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("the cached base-model results in %s are unreadable; computing them again", path)
        return None
    return entry if isinstance(entry, dict) and entry.get("key") == key else None


def save(key: str, payload: dict[str, Any]) -> None:
    """Keep `payload` under `key`; a cache that cannot be written costs only the next run's time."""
    path = cache_dir() / f"{key}.json"
    try:
        atomic.write_text(path, json.dumps({**payload, "key": key}))
    except (OSError, TypeError, ValueError) as exc:
        log.warning("could not keep the base model's results in %s (%s); the next eval recomputes them", path, exc)
