"""Where things live.

- Bundled, read-only resources (the demo corpora, prompts, site profiles) ship inside the package
  (`morris_mlx/bundled/`) and are found through importlib.resources, so an installed wheel has them.
- What a user makes (prepared data, adapters, runs, exports) goes under the working directory, or under
  the folders that MORRIS_HOME and MORRIS_ADAPTERS name; never into the installed package.
- Models, logs and history live in MORRIS_HOME.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# A wheel installs as plain files, so the resource root is a real folder that Path code can read.
BUNDLED_DIR = Path(str(resources.files("morris_mlx") / "bundled"))
PROMPTS_DIR = BUNDLED_DIR / "prompts"
PROFILES_DIR = BUNDLED_DIR / "profiles"
VOICES_DIR = BUNDLED_DIR / "voices"
CONTRAST_DIR = BUNDLED_DIR / "contrast"
DEFAULT_VOICE = "morris"


def voice_dir(voice: str = DEFAULT_VOICE) -> Path:
    """The bundled corpus of one writer voice: its articles (*.md) and its system prompt (system.txt)."""
    return VOICES_DIR / voice


def bundled_voices() -> list[str]:
    return sorted(p.name for p in VOICES_DIR.iterdir() if p.is_dir() and any(p.glob("*.md")))


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
    """Trained adapters: MORRIS_ADAPTERS, else adapters/ under the working directory."""
    env = os.environ.get("MORRIS_ADAPTERS")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "adapters"


def overlaps(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether one folder is, holds or sits inside the other: replacing one as a whole would reach the other."""
    a, b = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    return a == b or a in b.parents or b in a.parents
