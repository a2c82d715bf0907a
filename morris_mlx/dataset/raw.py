"""The scraper's output: JSONL, one article a line (url, title, standfirst, author, published, body,
source, fetched_at, sha256). Errors name the file and the line."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.dataset.article import KINDS, Article
from morris_mlx.dataset.jsonl import read_json_lines
from morris_mlx.errors import MorrisError

REQUIRED = ("url", "title", "body")
OPTIONAL_TEXT = ("standfirst", "author", "published", "source", "fetched_at", "sha256", "topic", "kind")


def _article(record: object, where: str) -> Article:
    if not isinstance(record, dict):
        raise MorrisError(
            f"{where}: expected a JSON object (one article a line), got {type(record).__name__}"
        )
    for key in REQUIRED:
        if key not in record:
            raise MorrisError(f"{where}: missing field {key!r}; each line needs {', '.join(REQUIRED)}")
        if not isinstance(record[key], str):
            raise MorrisError(f"{where}: field {key!r} must be a string, got {type(record[key]).__name__}")
    for key in OPTIONAL_TEXT:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise MorrisError(f"{where}: field {key!r} must be a string, got {type(record[key]).__name__}")
    kind = record.get("kind") or "telecom"
    if kind not in KINDS:
        raise MorrisError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    title = record["title"]
    return Article(
        id=record["url"] or record.get("sha256") or title,
        title=title,
        standfirst=record.get("standfirst") or "",
        # The scraper does not label topics; the original used the headline as the topic.
        topic=record.get("topic") or title,
        kind=kind,
        published=record.get("published") or "",
        text=record["body"],
        origin=where,
        author=record.get("author") or "",
    )


def read_raw_file(path: str | Path) -> list[Article]:
    path = Path(path)
    if not path.is_file():
        raise MorrisError(f"raw file {path} does not exist; pass a JSONL file written by `morris scrape`")
    articles = [_article(record, where) for record, where in read_json_lines(path, "re-save it as UTF-8")]
    if not articles:
        raise MorrisError(f"raw file {path} is empty; run `morris scrape` first or pass another file")
    return articles


def read_raw(paths: list[str] | list[Path]) -> list[Article]:
    """Articles from every file, in the order given (earlier copies win when de-duplicating)."""
    return [article for path in paths for article in read_raw_file(path)]
