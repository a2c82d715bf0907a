"""Where things live: MORRIS_HOME (models, logs, history) and the repository's own folders."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = REPO_DIR / "data"


def morris_home() -> Path:
    """MORRIS_HOME, else $XDG_CACHE_HOME/morris_mlx, else ~/.cache/morris_mlx."""
    env = os.environ.get("MORRIS_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "morris_mlx"


def models_dir() -> Path:
    return morris_home() / "models"


def adapters_dir() -> Path:
    """Trained adapters: MORRIS_ADAPTERS, else the repository's adapters/ folder when writable."""
    env = os.environ.get("MORRIS_ADAPTERS")
    if env:
        return Path(env).expanduser()
    return REPO_DIR / "adapters"
