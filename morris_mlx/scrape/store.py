"""The output JSONL and the resume state beside it.

The JSONL is the record of what has been collected: lines are appended whole and fsynced, so a kill
loses at most the article being written and never leaves half a line (a torn last line from a power cut
is cut off on the next open). The state file (`<out>.state.json`, replaced atomically) remembers what
the output cannot: which URLs were skipped and why, which redirected or were aliases of an article,
and which listings have been crawled to the end, so a re-run fetches only what is new.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morris_mlx.atomic import write_json
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris.scrape")

@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold `<out>.lock` for the run so two scrapes never append to one file at once."""
    lock_path = out.with_name(out.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: run unguarded
            yield
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise MorrisError(f"another `morris scrape` is writing {out}; wait for it or pass another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


LINE_START = b'{"url": '  # how every line `append` writes begins
FIELDS = ("url", "title", "standfirst", "author", "published", "body", "source", "fetched_at", "sha256")
STATE_VERSION = 1


def title_key(title: str | None, published: str | None) -> str | None:
    """One article re-published under a second URL keeps its headline and date even if boilerplate
    differs, so (headline, day) is a second de-duplication key beside the body hash."""
    if not title or not published:
        return None
    words = re.findall(r"\w+", title.casefold())
    return " ".join(words) + "|" + published[:10] if words else None


class ArticleStore:
    """Append-only article JSONL with the keys needed to spot duplicates of what it already holds."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.urls: set[str] = set()
        self._by_sha: dict[str, str] = {}
        self._by_title: dict[str, str] = {}
        self.count = 0
        self._load()

    def _load(self) -> None:
        if self.path.is_dir():
            raise MorrisError(f"--out {self.path} is a folder; pass a file such as {self.path}/articles.jsonl")
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        # Every whole line is checked before the trailing partial one is cut, so a file that is not ours
        # is refused untouched.
        keep = len(data) if data.endswith(b"\n") else data.rfind(b"\n") + 1
        records = []
        for number, line in enumerate(data[:keep].decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or not {"url", "sha256"} <= record.keys():
                raise MorrisError(
                    f"--out {self.path} line {number} is not a scraped article; choose another --out file"
                )
            records.append(record)
        tail = data[keep:]
        if tail:
            # An interrupted append leaves the start of one of our lines (they open with the url), however
            # short; a power cut can leave zero bytes instead.
            ours = tail.startswith(LINE_START) or LINE_START.startswith(tail) or not tail.strip(b"\0")
            if not ours:
                raise MorrisError(
                    f"--out {self.path} ends in a line that is not a scraped article; choose another --out "
                    "file (or, if the file is ours, delete its unfinished last line)"
                )
            log.warning("%s ended in a partial line (an interrupted write); removing it", self.path)
            with open(self.path, "rb+") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())
        for record in records:
            self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        self.urls.add(record["url"])
        self._by_sha.setdefault(record["sha256"], record["url"])
        key = title_key(record.get("title"), record.get("published"))
        if key:
            self._by_title.setdefault(key, record["url"])
        self.count += 1

    def duplicate_of(self, record: dict[str, Any]) -> str | None:
        """The URL of an article already stored that `record` repeats, if any."""
        if record["url"] in self.urls:
            return record["url"]
        key = title_key(record.get("title"), record.get("published"))
        return self._by_sha.get(record["sha256"]) or (self._by_title.get(key) if key else None)

    def append(self, record: dict[str, Any]) -> None:
        """Write one article as one whole line and make it durable before returning."""
        line = (json.dumps({k: record[k] for k in FIELDS}, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._remember(record)


@dataclass
class CrawlState:
    """What earlier runs learnt about URLs and listings; scoped to one writer."""

    path: Path
    author: str | None
    urls: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, author: str | None) -> CrawlState:
        state = cls(Path(path), author)
        try:
            data = json.loads(state.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError):
            log.warning("state file %s is unreadable; starting afresh (cached pages are still used)", path)
            return state
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return state
        if data.get("author") != author:
            # "skipped: other author" is only true for the writer it was decided for.
            log.info("state file %s was for author %r; starting afresh", path, data.get("author"))
            return state
        state.urls = {k: v for k, v in (data.get("urls") or {}).items() if isinstance(v, dict)}
        state.sources = {k: v for k, v in (data.get("sources") or {}).items() if isinstance(v, dict)}
        return state

    def save(self) -> None:
        write_json(self.path, {"version": STATE_VERSION, "author": self.author, "urls": self.urls,
                               "sources": self.sources})

    def note(self, url: str, outcome: str, reason: str = "", article_url: str = "") -> None:
        entry = {"outcome": outcome}
        if reason:
            entry["reason"] = reason
        if article_url:
            entry["article_url"] = article_url
        self.urls[url] = entry

    def knows(self, url: str) -> bool:
        return url in self.urls

    def source_complete(self, url: str) -> bool:
        return bool(self.sources.get(url, {}).get("complete"))

    def mark_source(self, url: str, complete: bool) -> None:
        self.sources.setdefault(url, {})["complete"] = complete or self.source_complete(url)
