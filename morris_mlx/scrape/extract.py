"""One article page in, its title, standfirst, byline, date and body text out. Pure: no network.

Extraction has to survive layout changes, so each field has a chain of sources: the profile's CSS
selectors first, then the page's JSON-LD (NewsArticle and friends), then <meta> tags and common
markup. The body is taken from the profile's selector, else JSON-LD `articleBody`, else the largest
<article>, else the block with the most paragraph text; the first one with enough words wins.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from bs4 import BeautifulSoup, Tag
from bs4.builder import XMLParsedAsHTMLWarning

from morris_mlx.scrape import jsonld
from morris_mlx.scrape.byline import clean_byline
from morris_mlx.scrape.dates import normalize_date
from morris_mlx.scrape.profile import Profile
from morris_mlx.scrape.text import (
    clean_paragraphs,
    inside_junk,
    normalize_space,
    paragraphs,
    remove_container_junk,
    remove_page_junk,
    remove_selected,
    word_count,
)
from morris_mlx.scrape.urls import normalize_url


@dataclass(frozen=True)
class Extracted:
    """What a page yielded; `body` is '' and `method` None when no strategy found enough text."""

    title: str | None
    standfirst: str | None
    byline: str | None
    published: str | None
    body: str
    canonical: str | None
    site_name: str | None
    method: str | None
    words: int


def make_soup(content: bytes | str, encoding: str | None = None) -> BeautifulSoup:
    """Parse HTML leniently; bytes are decoded with the HTTP charset, else <meta charset>, else sniffed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", UserWarning)
        if isinstance(content, bytes):
            return BeautifulSoup(content, "html.parser", from_encoding=encoding)
        return BeautifulSoup(content, "html.parser")


def _text(tag: Tag | None) -> str | None:
    if tag is None:
        return None
    return normalize_space(tag.get_text(" ", strip=True)).replace("\n", " ") or None


def _meta(soup: BeautifulSoup, *names: str) -> str | None:
    for name in names:
        tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
        if tag is not None and str(tag.get("content") or "").strip():
            return " ".join(str(tag["content"]).split())
    return None


def _select_text(soup: BeautifulSoup, selector: str | None, joiner: str | None = None) -> str | None:
    if not selector:
        return None
    found = [t for t in (_text(tag) for tag in soup.select(selector)) if t]
    if not found:
        return None
    return joiner.join(dict.fromkeys(found)) if joiner else found[0]


def _select_date(soup: BeautifulSoup, selector: str | None) -> str | None:
    if not selector:
        return None
    for tag in soup.select(selector):
        for value in (tag.get("datetime"), tag.get("content"), _text(tag)):
            iso = normalize_date(str(value)) if value else None
            if iso:
                return iso
    return None


def _first(*candidates: Callable[[], str | None]) -> str | None:
    """The first candidate that yields a non-empty value; later ones are not evaluated."""
    for candidate in candidates:
        value = candidate()
        if value:
            return value
    return None


def _byline(soup: BeautifulSoup, marked: str | None, article: dict | None) -> str | None:
    def from_markup() -> str | None:
        names = []
        for tag in soup.select('[rel~="author"], [itemprop="author"], .byline, .author-name, .author'):
            if inside_junk(tag):
                continue
            name_tag = tag.find(attrs={"itemprop": "name"}) if tag.name != "a" else None
            text = _text(name_tag or tag)
            if text and len(text) < 200:
                names.append(text)
        return ", ".join(dict.fromkeys(names)) or None

    def from_meta() -> str | None:
        value = _meta(soup, "author", "article:author", "sailthru.author", "parsely-author", "dc.creator")
        return None if value is None or value.startswith("http") else value

    raw = marked or _first(
        lambda: ", ".join(jsonld.person_names(article.get("author"))) if article else None,
        from_meta,
        from_markup,
    )
    return clean_byline(raw) or None if raw else None


def _title(soup: BeautifulSoup, marked: str | None, article: dict | None) -> str | None:
    def from_title_tag() -> str | None:
        text = _text(soup.title)
        return re.split(r"\s+[|\u2013\u2014-]\s+", text)[0] if text else None

    return marked or _first(
        lambda: jsonld.text_value(article.get("headline") or article.get("name")) if article else None,
        lambda: _meta(soup, "og:title", "twitter:title"),
        lambda: _text(soup.find("h1")),
        from_title_tag,
    )


def _published(soup: BeautifulSoup, marked: str | None, article: dict | None) -> str | None:
    def from_time_tag() -> str | None:
        tag = soup.find("time", attrs={"datetime": True})
        return normalize_date(str(tag["datetime"])) if tag else None

    return marked or _first(
        lambda: normalize_date(jsonld.text_value(article.get("datePublished"))) if article else None,
        lambda: normalize_date(
            _meta(soup, "article:published_time", "og:published_time", "datePublished", "pubdate",
                  "publish-date", "date", "dc.date", "dcterms.created")
        ),
        lambda: _select_date(soup, '[itemprop="datePublished"]'),
        from_time_tag,
        lambda: normalize_date(jsonld.text_value(article.get("dateCreated"))) if article else None,
    )


def _jsonld_body(article: dict | None) -> list[str]:
    body = article.get("articleBody") if article else None
    if not isinstance(body, str) or not body.strip():
        return []
    if re.search(r"<(p|br|div)\b", body, re.I):
        return paragraphs(make_soup(body))
    separator = "\n\n" if "\n\n" in body else "\n"
    return [p for p in (normalize_space(part).replace("\n", " ") for part in body.split(separator)) if p]


def _top_level(tags: list[Tag]) -> list[Tag]:
    """Drop matches nested inside other matches so no text is taken twice."""
    chosen = set(map(id, tags))
    return [t for t in tags if not any(id(parent) in chosen for parent in t.parents)]


def _container_paragraphs(containers: list[Tag]) -> list[str]:
    paras: list[str] = []
    for container in containers:
        remove_container_junk(container)
        paras.extend(paragraphs(container))
    return paras


def _largest_block(soup: BeautifulSoup) -> Tag | None:
    """The element whose own paragraphs (and loose text) hold the most characters."""
    best, best_score = None, 0
    for tag in soup.find_all(["div", "section", "main", "td", "article", "body"]):
        score = 0
        for child in tag.children:
            if isinstance(child, Tag):
                if child.name == "p":
                    score += len(child.get_text(strip=True))
            elif isinstance(child, str):
                score += len(child.strip())
        if score > best_score:
            best, best_score = tag, score
    return best


def extract_article(content: bytes | str, url: str, profile: Profile, encoding: str | None = None) -> Extracted:
    """Extract one article page; `url` resolves relative links such as the canonical one."""
    soup = make_soup(content, encoding)
    article = jsonld.find_article(jsonld.jsonld_objects(soup))
    # The profile's selectors see the page as served (its byline box may sit in an <aside>); the generic
    # fallbacks only see it once scripts, navigation and sidebars are gone, so that the byline of a teaser
    # in a "related" box is never taken for this article's.
    sel = profile.selectors
    marked_title = _select_text(soup, sel.title)
    marked_standfirst = _select_text(soup, sel.standfirst)
    marked_byline = _select_text(soup, sel.byline, joiner=", ")
    marked_date = _select_date(soup, sel.published)
    remove_page_junk(soup)

    title = _title(soup, marked_title, article)
    standfirst = marked_standfirst or _first(
        lambda: jsonld.text_value(article.get("description")) if article else None,
        lambda: _meta(soup, "og:description", "twitter:description", "description"),
    )
    byline = _byline(soup, marked_byline, article)
    published = _published(soup, marked_date, article)
    canonical_tag = soup.find("link", rel="canonical", href=True)
    canonical_href = str(canonical_tag["href"]) if canonical_tag else _meta(soup, "og:url")
    canonical = normalize_url(canonical_href, base=url) if canonical_href else None
    publisher = article.get("publisher") if article else None
    site_name = _meta(soup, "og:site_name") or (jsonld.text_value(publisher) if publisher else None)

    remove_selected(soup, profile.selectors.remove)
    strategies: list[tuple[str, Callable[[], list[str]]]] = [
        ("selectors", lambda: _container_paragraphs(_top_level(soup.select(profile.selectors.body)))
         if profile.selectors.body else []),
        ("json-ld", lambda: _jsonld_body(article)),
        ("article", lambda: _container_paragraphs(
            sorted(soup.find_all("article"), key=lambda t: len(t.get_text()), reverse=True)[:1])),
        ("largest-block", lambda: _container_paragraphs([b for b in [_largest_block(soup)] if b])),
    ]
    body_paras: list[str] = []
    method = None
    for name, strategy in strategies:
        # A description from metadata is often just the first paragraph: only a standfirst the site marks
        # up as such is taken out of the body, so the opening line is never lost.
        paras = clean_paragraphs(strategy(), drop=[title or "", marked_standfirst or ""],
                                 extra_junk=profile.drop_paragraphs)
        if word_count(paras) >= profile.min_words:
            body_paras, method = paras, name
            break
    return Extracted(
        title=title,
        standfirst=standfirst,
        byline=byline,
        published=published,
        body="\n\n".join(body_paras),
        canonical=canonical,
        site_name=site_name,
        method=method,
        words=word_count(body_paras),
    )
