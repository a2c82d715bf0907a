"""A generated article as a Markdown document: the text, then a line saying it is AI-generated and in
whose style, so a saved or copied article never passes for the writer's own; a saved one also carries
the review checklist (what a person must check before publishing it, and what they have ticked)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from morris_mlx.atomic import write_text
from morris_mlx.errors import MorrisError
from morris_mlx.paths import PROFILES_DIR, morris_home

DEFAULT_WRITER = "Iain Morris"  # the default profile's writer; a profile may name another


@dataclass
class Article:
    topic: str
    text: str
    model: str
    adapter: str | None
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None  # stop | length | time | stopped (by the user)
    tokens: int = 0
    tokens_per_second: float = 0.0
    created: str = field(default_factory=lambda: datetime.now().astimezone().isoformat(timespec="seconds"))


def writer_name(profile: str = "lightreading") -> str:
    """The writer the voice imitates: the site profile's `author` (or `writer`) if it names one."""
    path = Path(profile) if profile.endswith(".toml") else PROFILES_DIR / f"{profile}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT_WRITER
    for key in ("author", "writer", "author_name"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return DEFAULT_WRITER


def attribution(article: Article, writer: str) -> str:
    day = article.created[:10]
    via = article.model + (f" with adapter {article.adapter}" if article.adapter else "")
    cut = " (stopped before the end)" if article.finish_reason == "stopped" else ""
    return f"*AI-generated in the style of {writer} by morris_mlx ({via}) on {day}{cut}. Not written by {writer}.*"


def to_markdown(article: Article, writer: str, checklist: str | None = None) -> str:
    """The article, its attribution line and, when given, the review checklist after it."""
    body = article.text.strip()
    document = f"{body}\n\n---\n\n{attribution(article, writer)}\n"
    return document + (f"\n{checklist.rstrip()}\n" if checklist else "")


def slug(text: str, limit: int = 60) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "article"


def default_save_path(article: Article) -> Path:
    """MORRIS_HOME/articles/DATE-TOPIC.md, numbered so it never overwrites an earlier save."""
    folder = morris_home() / "articles"
    stem = f"{article.created[:10]}-{slug(article.topic)}"
    path = folder / f"{stem}.md"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.md"
        n += 1
    return path


def save_markdown(article: Article, writer: str, path: Path, checklist: str | None = None) -> Path:
    """Write the article atomically (no half-written file on a crash); returns the path written."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MorrisError(f"{path} is a folder; give a file name such as {path / 'article.md'}")
    write_text(path, to_markdown(article, writer, checklist))
    return path
