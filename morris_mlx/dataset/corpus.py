"""The bundled corpus: Markdown files with a small front matter block.

    ---
    title: The headline
    standfirst: One sentence under it.
    topic: open RAN
    kind: telecom            (or general)
    published: 2024-05-01
    ---
    First paragraph.

    Second paragraph.

Values are plain text; surrounding quotes are removed. Errors name the file and line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from morris_mlx.dataset.article import KINDS, Article
from morris_mlx.errors import MorrisError
from morris_mlx.paths import DEFAULT_VOICE, voice_dir

CORPUS_DIR = voice_dir(DEFAULT_VOICE)
REQUIRED = ("title", "standfirst", "topic", "kind", "published")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return inner.replace('\\"', '"') if value[0] == '"' else inner.replace("''", "'")
    return value


def parse_corpus_file(path: Path) -> Article:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MorrisError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    if not text.strip():
        raise MorrisError(f"{path}: the file is empty; write front matter and a body, or delete it")
    lines = text.lstrip("\ufeff").splitlines()
    if lines[0].strip() != "---":
        raise MorrisError(f"{path} line 1: expected '---' opening the front matter (title, standfirst, ...)")
    meta: dict[str, str] = {}
    end = None
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            end = number
            break
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise MorrisError(
                f"{path} line {number}: expected 'key: value' in the front matter or a '---' line closing it, got {line!r}"
            )
        meta[key.strip().lower()] = _unquote(value.strip())
    if end is None:
        raise MorrisError(f"{path}: the front matter is not closed; add a '---' line before the body")
    for key in REQUIRED:
        if not meta.get(key):
            raise MorrisError(f"{path} line {end}: front matter is missing {key!r}; add '{key}: ...'")
    if meta["kind"] not in KINDS:
        raise MorrisError(f"{path}: kind must be one of {', '.join(KINDS)}, got {meta['kind']!r}")
    try:
        dt.date.fromisoformat(meta["published"])
    except ValueError:
        raise MorrisError(
            f"{path}: published must be a date like 2024-05-01, got {meta['published']!r}"
        ) from None
    body = "\n".join(lines[end:])
    if not body.strip():
        raise MorrisError(f"{path}: the article has no body after the front matter")
    return Article(
        id=path.stem,
        title=meta["title"],
        standfirst=meta["standfirst"],
        topic=meta["topic"],
        kind=meta["kind"],
        published=meta["published"],
        text=body,
        origin=str(path),
        author=meta.get("author", ""),
    )


def read_corpus(directory: str | Path | None = None) -> list[Article]:
    """Every `*.md` article in `directory` (the bundled corpus by default), in file-name order."""
    directory = Path(directory) if directory else CORPUS_DIR
    if not directory.is_dir():
        raise MorrisError(f"corpus folder {directory} does not exist; pass --raw FILE or --corpus DIR")
    files = sorted(p for p in directory.glob("*.md") if p.name.lower() != "readme.md")
    if not files:
        raise MorrisError(
            f"corpus folder {directory} holds no *.md articles; pass --raw FILE or --corpus DIR"
        )
    return [parse_corpus_file(p) for p in files]
