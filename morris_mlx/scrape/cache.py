"""Fetched pages on disk, so a re-run or a resumed run never downloads an article twice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from morris_mlx.atomic import write_bytes, write_json


@dataclass(frozen=True)
class Page:
    """A successfully fetched page: `url` as asked for, `final_url` after redirects."""

    url: str
    final_url: str
    content: bytes
    content_type: str
    encoding: str | None
    fetched_at: str
    from_cache: bool = False


class PageCache:
    """One body file and one metadata file per URL; the metadata is written last and names the body's
    hash, so an entry half-written by a crash is never read back as complete."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        folder = self.root / key[:2]
        return folder / f"{key}.body", folder / f"{key}.json"

    def get(self, url: str) -> Page | None:
        body_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            content = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if meta.get("url") != url or hashlib.sha256(content).hexdigest() != meta.get("sha256"):
            return None
        return Page(
            url=url,
            final_url=meta["final_url"],
            content=content,
            content_type=meta.get("content_type", ""),
            encoding=meta.get("encoding"),
            fetched_at=meta["fetched_at"],
            from_cache=True,
        )

    def put(self, page: Page) -> None:
        body_path, meta_path = self._paths(page.url)
        write_bytes(body_path, page.content)
        meta = {k: v for k, v in asdict(page).items() if k not in ("content", "from_cache")}
        write_json(meta_path, {**meta, "sha256": hashlib.sha256(page.content).hexdigest()})
