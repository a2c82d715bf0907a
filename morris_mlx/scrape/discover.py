"""Listing pages (an author's archive, a column's index): article links, the next page, feeds. Pure.

Which links are articles is decided in `links`; this module finds the page's next page and feeds and
hands back the decisions too, so `morris scrape --explain` can show why each link was taken or left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Tag

from morris_mlx.scrape import jsonld
from morris_mlx.scrape.extract import make_soup
from morris_mlx.scrape.links import LinkDecision, feed_urls, judge_links, taken_urls
from morris_mlx.scrape.profile import Profile
from morris_mlx.scrape.urls import normalize_url

_NEXT_TEXT = re.compile(r"^(next( page)?|older( posts| entries| articles| stories)?|more articles|[>»›→]+)$", re.I)
_NEXT_CLASS = re.compile(r"(^|[-_ ])next([-_ ]|$)|NextButton|next-?page|nextpage", re.I)
_FEED_TYPES = re.compile(r"(rss|atom)\+xml", re.I)


@dataclass(frozen=True)
class Listing:
    """Article links in page order, the next page of the listing (if any) and feeds it advertises;
    `decisions` holds every link on the page with the reason it was taken or left."""

    links: list[str]
    next_url: str | None
    feeds: list[str]
    decisions: list[LinkDecision] = field(default_factory=list)


def _base_url(soup: BeautifulSoup, page_url: str) -> str:
    base = soup.find("base", href=True)
    return normalize_url(str(base["href"]), base=page_url) or page_url if base else page_url


def _href(tag: Tag | None, base: str) -> str | None:
    if tag is None:
        return None
    if tag.name != "a" or not tag.get("href"):
        tag = tag.find("a", href=True) if tag.name != "a" else None
        if tag is None:
            return None
    return normalize_url(str(tag["href"]), base=base)


def _next_url(soup: BeautifulSoup, base: str, page_url: str, profile: Profile) -> str | None:
    candidates: list[Tag] = []
    if profile.next_page:
        candidates.extend(soup.select(profile.next_page))
    candidates.extend(soup.find_all(["link", "a"], rel="next"))
    for anchor in soup.find_all("a", href=True):
        label = " ".join([anchor.get_text(" ", strip=True), str(anchor.get("aria-label") or "")]).strip()
        classes = " ".join(anchor.get("class") or [])
        if _NEXT_TEXT.match(label) or (label.lower().startswith("next") and len(label) < 20) or \
                _NEXT_CLASS.search(classes):
            candidates.append(anchor)
    for tag in candidates:
        href = str(tag["href"]) if tag.name == "link" and tag.get("href") else None
        url = normalize_url(href, base=base) if href else _href(tag, base)
        if url and url != page_url and profile.allows_host(url):
            return url
    return None


def parse_listing(content: bytes | str, page_url: str, profile: Profile, encoding: str | None = None) -> Listing:
    """Links to articles on a listing page, in order and without repeats, plus pagination and feeds."""
    soup = make_soup(content, encoding)
    base = _base_url(soup, page_url)
    feeds = []
    for link in soup.find_all("link", href=True, type=_FEED_TYPES):
        url = normalize_url(str(link["href"]), base=base)
        if url and profile.allows_host(url) and url not in feeds:
            feeds.append(url)
    next_url = _next_url(soup, base, page_url, profile)
    listed = jsonld.listed_urls(jsonld.jsonld_objects(soup))
    decisions = judge_links(soup, page_url, base, profile, next_url=next_url, listed=listed)
    feeds += [url for url in feed_urls(decisions) if url not in feeds]
    return Listing(links=taken_urls(decisions), next_url=next_url, feeds=feeds, decisions=decisions)
