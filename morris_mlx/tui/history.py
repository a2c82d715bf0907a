"""Past generations, kept on disk in MORRIS_HOME/history.jsonl and searchable.

One JSON object a line, appended as a whole line and fsynced, so a crash mid-write loses at most the
line being written and never garbles earlier ones; unreadable lines are skipped on reading.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.paths import morris_home
from morris_mlx.tui.article import Article

HISTORY_FILENAME = "history.jsonl"


def history_path() -> Path:
    return morris_home() / HISTORY_FILENAME


@dataclass
class HistoryEntry:
    id: str
    article: Article

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **dataclasses.asdict(self.article)}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> HistoryEntry | None:
        """None for a record that is not a usable entry (hand-edited, or from a future version)."""
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return None
        known = {f.name for f in dataclasses.fields(Article)}
        values = {k: v for k, v in record.items() if k in known}
        try:
            article = Article(**values)
        except TypeError:
            return None
        return cls(id=str(record.get("id") or uuid.uuid4().hex[:12]), article=article)

    def haystack(self) -> str:
        a = self.article
        return " ".join([a.topic, a.text, a.adapter or "", a.model, a.created]).lower()


class History:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else history_path()

    def add(self, article: Article) -> HistoryEntry:
        entry = HistoryEntry(id=uuid.uuid4().hex[:12], article=article)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry.to_json(), ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self) -> list[HistoryEntry]:
        """Every readable entry, newest first."""
        if not self.path.is_file():
            return []
        found = []
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    entry = HistoryEntry.from_json(json.loads(line))
                except ValueError:
                    continue
                if entry is not None:
                    found.append(entry)
        found.reverse()
        return found

    def search(self, query: str, limit: int = 200) -> list[HistoryEntry]:
        """Entries containing every word of `query` (any case) in topic, text, adapter, model or date."""
        return matching(self.entries(), query, limit)


def matching(entries: list[HistoryEntry], query: str, limit: int = 200) -> list[HistoryEntry]:
    words = query.lower().split()
    return [e for e in entries if all(w in e.haystack() for w in words)][:limit]
