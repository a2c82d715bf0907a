"""RSS 2.0, RSS 1.0, Atom feeds and XML sitemaps (plain or gzipped). Pure functions on bytes."""

from __future__ import annotations

import gzip
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from morris_mlx.scrape.dates import normalize_date
from morris_mlx.scrape.urls import normalize_url


class FeedError(ValueError):
    """The bytes are not a feed or sitemap we can read."""


@dataclass(frozen=True)
class Entry:
    """An article link with what the feed already says about it (so some fetches can be skipped)."""

    url: str
    published: str | None = None
    author: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Feed:
    entries: list[Entry] = field(default_factory=list)
    next_url: str | None = None
    sitemaps: list[str] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _child(element: ET.Element, *names: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) in names:
            return child
    return None


def _child_text(element: ET.Element, *names: str) -> str | None:
    for name in names:  # the order of `names` is the order of preference
        child = _child(element, name)
        if child is not None:
            text = "".join(child.itertext()).strip()
            if text:
                return text
    return None


def _parse_xml(content: bytes, max_bytes: int) -> ET.Element:
    if content[:2] == b"\x1f\x8b":
        # Sitemaps are often served as .xml.gz; read no more than the byte cap so a gzip bomb stays small.
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(content)) as fh:
                content = fh.read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise FeedError(f"broken gzip data: {exc}") from None
        if len(content) > max_bytes:
            raise FeedError(f"uncompressed feed is larger than {max_bytes} bytes")
    try:
        return ET.fromstring(content.lstrip())
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from None


def _rss_item(item: ET.Element, base: str) -> Entry | None:
    link = _child_text(item, "link")
    if not link:
        guid = _child(item, "guid")
        if guid is not None and guid.get("isPermaLink", "true").lower() == "true":
            link = (guid.text or "").strip()
    url = normalize_url(link, base=base) if link else None
    if url is None:
        return None
    return Entry(
        url=url,
        published=normalize_date(_child_text(item, "pubdate", "date", "published", "issued")),
        author=_child_text(item, "creator", "author"),
        title=_child_text(item, "title"),
    )


def _atom_link(element: ET.Element, rel: str, base: str) -> str | None:
    for child in element:
        if _local(child.tag) == "link" and child.get("rel", "alternate") == rel and child.get("href"):
            return normalize_url(child.get("href", ""), base=base)
    return None


def _atom_entry(entry: ET.Element, base: str) -> Entry | None:
    url = _atom_link(entry, "alternate", base)
    if url is None:
        return None
    author = _child(entry, "author")
    return Entry(
        url=url,
        published=normalize_date(_child_text(entry, "published", "issued", "updated")),
        author=_child_text(author, "name") if author is not None else None,
        title=_child_text(entry, "title"),
    )


def parse_feed(content: bytes, base_url: str, max_bytes: int = 50_000_000) -> Feed:
    """Entries of an RSS or Atom feed, plus its next page for paged Atom feeds (RFC 5005)."""
    root = _parse_xml(content, max_bytes)
    kind = _local(root.tag)
    if kind == "feed":
        entries = [e for e in (_atom_entry(x, base_url) for x in root if _local(x.tag) == "entry") if e]
        return Feed(entries=entries, next_url=_atom_link(root, "next", base_url))
    if kind in ("rss", "rdf"):
        items = [x for x in root.iter() if _local(x.tag) == "item"]
        return Feed(entries=[e for e in (_rss_item(x, base_url) for x in items) if e])
    raise FeedError(f"root element <{kind}> is neither RSS nor Atom")


def parse_sitemap(content: bytes, base_url: str, max_bytes: int = 50_000_000) -> Feed:
    """A sitemap's page URLs (with lastmod as `published`, an upper bound) or a sitemap index's children."""
    root = _parse_xml(content, max_bytes)
    kind = _local(root.tag)
    if kind == "sitemapindex":
        children = []
        for sitemap in root:
            loc = _child_text(sitemap, "loc")
            url = normalize_url(loc, base=base_url) if loc else None
            if url:
                children.append(url)
        return Feed(sitemaps=children)
    if kind == "urlset":
        entries = []
        for node in root:
            loc = _child_text(node, "loc")
            url = normalize_url(loc, base=base_url) if loc else None
            if url:
                news = _child(node, "news")
                published = _child_text(news, "publication_date") if news is not None else None
                entries.append(Entry(url=url, published=normalize_date(published or _child_text(node, "lastmod")),
                                     title=_child_text(news, "title") if news is not None else None))
        return Feed(entries=entries)
    raise FeedError(f"root element <{kind}> is not a sitemap")
