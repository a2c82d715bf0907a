"""Site profiles: where a writer's articles are listed and how a site marks them up, as data.

A profile is a TOML file in bundled/profiles/ (or anywhere, by path). Another site or writer is a new
profile, not new code; `--author-url` on any site uses the `generic` profile locked to that URL's host.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from morris_mlx.errors import MorrisError
from morris_mlx.paths import PROFILES_DIR
from morris_mlx.scrape.urls import (
    author_from_url,
    host_of,
    looks_like_article_url,
    non_article_reason,
    normalize_url,
)

GENERIC = "generic"


@dataclass(frozen=True)
class Selectors:
    """CSS selectors for one site's article pages; each may list alternatives separated by commas."""

    title: str | None = None
    standfirst: str | None = None
    byline: str | None = None
    published: str | None = None
    body: str | None = None
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    source: str | None = None
    author: str | None = None
    hosts: tuple[str, ...] = ()
    require_byline: bool = True
    min_words: int = 80
    listings: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    discover_feeds: bool = False
    discover_sitemaps: bool = False
    article_patterns: tuple[re.Pattern, ...] = ()
    exclude_patterns: tuple[re.Pattern, ...] = ()
    listing_scope: str | None = None
    next_page: str | None = None
    page_param: str | None = None
    selectors: Selectors = field(default_factory=Selectors)
    drop_paragraphs: tuple[re.Pattern, ...] = ()
    path: Path | None = None

    def allows_host(self, url: str) -> bool:
        return host_of(url) in self.hosts

    def is_article_url(self, url: str, from_feed: bool = False) -> bool:
        """Whether a link on an allowed host is an article by this profile's URL patterns.

        Without patterns, a link from a listing page or sitemap must look like an article URL; a feed
        entry is an article by definition, so `from_feed` skips that guess.
        """
        if not self.allows_host(url) or any(p.search(url) for p in self.exclude_patterns):
            return False
        if self.article_patterns:
            return any(p.search(url) for p in self.article_patterns)
        return from_feed or (looks_like_article_url(url) and url not in self.listings)

    def may_be_article(self, url: str) -> bool:
        """Whether a page a sitemap lists, or an article names as its canonical URL, can be an article.

        Sitemaps list every page of a site with nothing but the URL, so without patterns only what the
        URL rules out (tag, author, login, search pages, the home page, the listings) is left out: opaque
        ids such as /p/x7f2 are kept, and each article's byline decides.
        """
        if self.article_patterns:
            return self.is_article_url(url)
        if not self.allows_host(url) or any(p.search(url) for p in self.exclude_patterns):
            return False
        return non_article_reason(url) is None and url not in self.listings


_TOP_KEYS = {"name", "description", "source", "author", "hosts", "require_byline", "min_words"}
_DISCOVERY_KEYS = {
    "listings", "feeds", "sitemaps", "discover_feeds", "discover_sitemaps", "article_patterns", "exclude_patterns",
    "listing_scope", "next_page", "page_param",
}
_SELECTOR_KEYS = {"title", "standfirst", "byline", "published", "body", "remove", "drop_paragraphs"}


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def _profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml" or "/" in name_or_path:
        if not candidate.is_file():
            raise MorrisError(f"profile file {candidate} does not exist; pass a TOML file or a profile name")
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise MorrisError(
            f"unknown profile {name_or_path!r}; choose one of: {', '.join(available_profiles())} "
            "(or pass a path to a .toml profile, or --author-url for any site)"
        )
    return path


def _check(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise MorrisError(f"{where}: key {key!r} must be {names}, got {value!r}")
    return value


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    _check(where, key, value, list)
    return tuple(_check(where, f"{key}[]", v, str) for v in value)


def _patterns(where: str, key: str, value: Any) -> tuple[re.Pattern, ...]:
    compiled = []
    for text in _strings(where, key, value):
        try:
            compiled.append(re.compile(text))
        except re.error as exc:
            raise MorrisError(f"{where}: {key} pattern {text!r} is not a valid regex: {exc}") from None
    return tuple(compiled)


def _selector(where: str, key: str, value: Any) -> str:
    _check(where, key, value, str)
    try:
        BeautifulSoup("", "html.parser").select(value)
    except Exception as exc:  # soupsieve (bs4's CSS engine) raises its own SelectorSyntaxError and friends
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # soupsieve adds a caret
        raise MorrisError(f"{where}: {key} selector {value!r} is not valid CSS: {first_line}") from None
    return value


def _urls(where: str, key: str, value: Any) -> tuple[str, ...]:
    urls = []
    for text in _strings(where, key, value):
        url = normalize_url(text)
        if url is None:
            raise MorrisError(f"{where}: {key} entry {text!r} is not an http(s) URL")
        urls.append(url)
    return tuple(urls)


def parse_profile(data: dict[str, Any], where: str, path: Path | None = None) -> Profile:
    """Build a Profile from parsed TOML; every error names `where` and the bad key."""
    unknown = set(data) - _TOP_KEYS - {"discovery", "selectors"}
    if unknown:
        raise MorrisError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    discovery = _check(where, "discovery", data.get("discovery", {}), dict)
    selectors = _check(where, "selectors", data.get("selectors", {}), dict)
    for table, allowed, label in ((discovery, _DISCOVERY_KEYS, "discovery"), (selectors, _SELECTOR_KEYS,
                                                                            "selectors")):
        extra = set(table) - allowed
        if extra:
            raise MorrisError(f"{where}: unknown key(s) in [{label}]: {', '.join(sorted(extra))}")

    kw: dict[str, Any] = {"name": _check(where, "name", data.get("name", path.stem if path else ""), str)}
    for key in ("description", "source", "author"):
        if key in data:
            kw[key] = _check(where, key, data[key], str)
    if "hosts" in data:
        kw["hosts"] = tuple(h.lower() for h in _strings(where, "hosts", data["hosts"]))
    if "require_byline" in data:
        kw["require_byline"] = _check(where, "require_byline", data["require_byline"], bool)
    if "min_words" in data:
        kw["min_words"] = _check(where, "min_words", data["min_words"], int)
    for key in ("listings", "feeds", "sitemaps"):
        if key in discovery:
            kw[key] = _urls(where, key, discovery[key])
    for key in ("article_patterns", "exclude_patterns"):
        if key in discovery:
            kw[key] = _patterns(where, key, discovery[key])
    for key in ("discover_feeds", "discover_sitemaps"):
        if key in discovery:
            kw[key] = _check(where, key, discovery[key], bool)
    for key in ("listing_scope", "next_page"):
        if key in discovery:
            kw[key] = _selector(where, key, discovery[key])
    if "page_param" in discovery:
        kw["page_param"] = _check(where, "page_param", discovery["page_param"], str) or None
    sel = {k: _selector(where, k, selectors[k]) for k in ("title", "standfirst", "byline", "published", "body")
           if k in selectors}
    if "remove" in selectors:
        sel["remove"] = tuple(_selector(where, "remove[]", s) for s in _strings(where, "remove",
                                                                                selectors["remove"]))
    kw["selectors"] = Selectors(**sel)
    if "drop_paragraphs" in selectors:
        kw["drop_paragraphs"] = _patterns(where, "drop_paragraphs", selectors["drop_paragraphs"])
    profile = Profile(path=path, **kw)
    for url in (*profile.listings, *profile.feeds, *profile.sitemaps):
        if not profile.allows_host(url):
            raise MorrisError(f"{where}: {url} is not on one of the profile's hosts {list(profile.hosts)}")
    return profile


def load_profile(name_or_path: str) -> Profile:
    """A profile by name (bundled/profiles/NAME.toml) or by path to a TOML file."""
    path = _profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MorrisError(f"profile {path} is not valid TOML: {exc}") from None
    return parse_profile(data, f"profile {path}", path)


def resolve_profile(name_or_path: str, author_url: str | None, author: str | None) -> Profile:
    """The profile to crawl with, its author settled.

    With `author_url`, the crawl starts there and is locked to its host: the named profile is kept when
    it covers that host (its selectors still help), otherwise the generic profile is used. The writer is
    `author` if given, else read from an /author/jane-doe style URL, else the profile's own.
    """
    profile = load_profile(name_or_path)
    if author_url is None:
        return dataclasses.replace(profile, author=author or profile.author)
    url = normalize_url(author_url)
    if url is None:
        raise MorrisError(f"--author-url {author_url!r} is not an http(s) URL; pass e.g. https://site/author/x")
    host = host_of(url)
    if host not in profile.hosts:
        profile = load_profile(GENERIC)
    writer = author or author_from_url(url) or (profile.author if profile.name != GENERIC else None)
    return dataclasses.replace(
        profile,
        hosts=(host,),
        listings=(url,),
        feeds=tuple(f for f in profile.feeds if host_of(f) == host),
        sitemaps=tuple(s for s in profile.sitemaps if host_of(s) == host),
        author=writer,
        source=profile.source if profile.name != GENERIC else None,
    )
