"""Every link on a listing page judged: taken as a link to an article, or left, with the reason. Pure.

A profile's `article_patterns` decide when it has them. Without patterns, a URL with the shape most
article URLs have (multi-word slug, date in the path, long numeric id, .html name) is taken, and so is a
URL the page lists in its JSON-LD ItemList or CollectionPage. Links with opaque ids (/p/x7f2, /news/m1,
/story?id=12) carry no such shape; they are taken when the link text reads as a headline and the link
sits in the page's main list (<main>, an <article> card, a run of like items) or has siblings under the
same path. Whatever the signals, links in navigation, site headers and footers, sidebars, share bars
and tag lists, pagination, and URLs of tag, category, author, login, search and feed pages are left
out. Which of a listing's links lead to the writer's articles is settled later, by each article's byline.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Tag

from morris_mlx.scrape.profile import Profile
from morris_mlx.scrape.text import junk_word, normalize_space
from morris_mlx.scrape.urls import article_url_shape, non_article_reason, normalize_url, url_family

TAKEN, LEFT, FEED, NEXT = "taken", "left", "feed", "next page"

# Never shown to readers, so never a link a reader could follow.
_INVISIBLE_TAGS = ("script", "style", "template", "noscript")
# Elements whose links are never the listing's own (the same set the article extractor drops).
_OUTSIDE_TAGS = {"iframe", "svg", "canvas", "dialog", "object", "embed", "video", "audio", "map"}
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# class/id words of menus and pagers (the article extractor's junk words cover sidebars, share bars...).
_NAV_WORD = re.compile(
    r"(?:^|[-_ ])(nav|navbar|navigation|menu|menubar|skip-link|masthead|pagination|pager|paging)(?:$|[-_ ])", re.I
)
_JUNK_KINDS = (
    (re.compile(r"^(share|sharing|sharebar|social)$"), "share bar"),
    (re.compile(r"^(tags|taglist)$"), "tag list"),
    (re.compile(r"^breadcrumbs?$"), "breadcrumbs"),
    (re.compile(r"^(comments?)$"), "comments"),
    (re.compile(r"^(popular|trending|most-read)$"), "most-read box"),
    (re.compile(r"^(related|recommended|recommendations|read-more|readmore|more-stories|outbrain|taboola)$"),
     "related-stories box"),
    (re.compile(r"^(newsletter|subscribe|subscription|signup|sign-up)$"), "newsletter box"),
    (re.compile(r"^(promo|promotion|advert|advertisement|ads?|ad-slot|sponsor|sponsored)$"), "advert or promo"),
    (re.compile(r"^(pagination|pager|paging)$"), "pagination"),
    (re.compile(r"^masthead$"), "site header"),
    (re.compile(r"^(nav|navbar|navigation|menu|menubar|skip-link)$"), "navigation"),
)
_FEED_PATH = re.compile(r"(/feed|/rss|/atom|\.rss|\.atom|[/_.-](feed|rss|atom)\.xml)/?$", re.I)
_FEED_TYPE = re.compile(r"(rss|atom)\+xml", re.I)
_PAGER_TEXT = re.compile(
    r"^(\d{1,4}|next|next page|prev|previous|previous page|older|newer|(older|newer) (posts|entries|articles|"
    r"stories)|first|last|first page|last page|more|load more|show more|see more|view more|more articles)$",
    re.I,
)
# Link texts that are buttons, not headlines: "Read more", "Share on X", "Sign in to comment", "View all
# stories". Only short texts are tested, and only whole phrases, so "More than half of telcos..." and
# "Follow the money in open RAN" still read as headlines.
_BUTTON_TEXT = re.compile(
    r"^(read|continue|see|view|show|load|click|tap|go|back|skip|jump) (more|all|full|the full|reading|here|now|"
    r"on|to|this|story|article|comments?)\b|^(sign|log) ?(in|up|out)\b|^(share|tweet|email|e-mail|print|"
    r"subscribe|comment|reply|bookmark|download|follow us|listen|watch)( (this|on|to|via|now|article|story|"
    r"page|us|here|online)\b|$)|\b(all|more) (stories|articles|posts|news|columns)\b",
    re.I,
)
# Words of a printed date or reading time: "Tuesday, March 5, 2024" and "4 min read" are not headlines.
_DATE_WORDS = {
    "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june", "jul", "july",
    "aug", "august", "sep", "sept", "september", "oct", "october", "nov", "november", "dec", "december",
    "mon", "monday", "tue", "tues", "tuesday", "wed", "wednesday", "thu", "thurs", "thursday", "fri",
    "friday", "sat", "saturday", "sun", "sunday", "am", "pm", "ago", "min", "mins", "minute", "minutes",
    "hour", "hours", "read", "updated", "published", "st", "nd", "rd", "th",
}
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Siblings: this many links under one path (this one included), or this many like items side by side,
# look like a list of articles.
MIN_SIBLINGS = 3
# A list item (a teaser: headline, standfirst, date) holds less text than this; a page section holds more.
MAX_ITEM_TEXT = 1000


@dataclass(frozen=True)
class LinkDecision:
    """One link on a listing page: its URL (the href as written when it is not an http(s) link), its
    text, the verdict (taken, left, feed, next page) and why. `in_jsonld_only`: no <a> on the page links
    to it, only the page's JSON-LD lists it."""

    url: str
    text: str
    verdict: str
    reason: str
    in_jsonld_only: bool = False

    @property
    def taken(self) -> bool:
        return self.verdict == TAKEN


def reads_as_headline(text: str, marked: bool = False) -> bool:
    """Whether link text reads as an article's headline: several words that are not a date, a button
    ('Read more', 'Share on X') or a URL. `marked`: the page puts the link in a heading, so one word does."""
    words = _WORD.findall(text)
    if not words or len(words) > 40 or re.match(r"\s*(https?://|www\.)", text, re.I):
        return False
    if len(words) <= 6 and _BUTTON_TEXT.search(text.strip(" \t<>«»‹›←→|·-")):
        return False
    content = [w for w in words if not w.isdigit() and w.lower() not in _DATE_WORDS]
    if marked:
        return len(content) >= 1
    return len(content) >= 4 or (len(content) >= 3 and len(text) >= 15)


def _link_text(anchor: Tag) -> tuple[str, bool]:
    """The anchor's text (its heading's, for a whole card wrapped in a link) and whether the page marks
    it as a headline (inside or around a heading, or a class naming it a title)."""
    heading = anchor.find(_HEADINGS)
    text = normalize_space((heading or anchor).get_text(" ", strip=True)).replace("\n", " ")
    if not text:
        image = anchor.find("img", alt=True)
        text = " ".join(str(anchor.get(k) or "") for k in ("title", "aria-label")).strip() or \
            (str(image["alt"]).strip() if image else "")
    classes = " ".join(anchor.get("class") or [])
    marked = heading is not None or anchor.find_parent(_HEADINGS) is not None or \
        str(anchor.get("itemprop") or "") == "headline" or \
        bool(re.search(r"(?:^|[-_ ])(headline|title)(?:$|[-_ ])", classes, re.I))
    return text, marked


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _Page:
    """Facts about the page that many links ask for, computed once."""

    def __init__(self, root: Tag, scopes: list[Tag]) -> None:
        self.root = root
        self.scopes = {id(s) for s in scopes}
        self.scoped = bool(scopes)
        self.total = len(root.get_text(" ", strip=True))
        self._lengths: dict[int, int] = {}
        self._like: dict[tuple[int, str, tuple[str, ...]], int] = {}

    def text_length(self, tag: Tag) -> int:
        if id(tag) not in self._lengths:
            self._lengths[id(tag)] = len(tag.get_text(" ", strip=True))
        return self._lengths[id(tag)]

    def like_siblings(self, node: Tag) -> int:
        """How many children of `node`'s parent share its tag and classes (itself included)."""
        parent = node.parent
        classes = tuple(node.get("class") or ())
        key = (id(parent), str(node.name), classes)
        if key not in self._like:
            self._like[key] = sum(1 for c in parent.find_all(node.name, recursive=False)
                                  if tuple(c.get("class") or ()) == classes) if parent is not None else 0
        return self._like[key]

    def in_scope(self, anchor: Tag) -> bool:
        return not self.scoped or id(anchor) in self.scopes or any(id(p) in self.scopes for p in anchor.parents)


def _is_page_level(tag: Tag) -> bool:
    """A <header> or <footer> of the whole page (the site's), not of one article card or section: the
    same test browsers use to give it the banner or contentinfo role."""
    for parent in tag.parents:
        role = str(parent.get("role") or "").lower() if parent.name else ""
        if parent.name in ("article", "aside", "main", "nav", "section") or role in ("main", "article"):
            return False
    return True


def _region(anchor: Tag, page: _Page) -> str | None:
    """Why the anchor's place on the page rules it out (navigation, sidebar, share bar...), or None.

    With a profile's `listing_scope`, the profile has already said where the listing is, so only the
    element types are checked, as before; class names and page headers are checked on unscoped pages.
    """
    for parent in anchor.parents:
        name = parent.name
        if name in (None, "[document]", "html", "body"):
            break
        role = str(parent.get("role") or "").lower()
        if name == "nav" or role == "navigation":
            return "navigation (<nav>)"
        if name == "aside" or role == "complementary":
            return "sidebar (<aside>)"
        if name in _OUTSIDE_TAGS:
            return f"inside <{name}>"
        if page.scoped:
            continue
        if role in ("banner", "contentinfo") or (name in ("header", "footer") and _is_page_level(parent)):
            return "site header" if name == "header" or role == "banner" else "site footer"
        if name in ("main", "article") or role == "main":
            continue
        words = " ".join([*(parent.get("class") or []), str(parent.get("id") or "")])
        nav = _NAV_WORD.search(words)
        word = nav.group(1).lower() if nav else junk_word(parent)
        # A wrapper that holds most of the page ("content-with-sidebar") is the page, not a sidebar.
        if word is None or page.text_length(parent) > 0.5 * page.total:
            continue
        if word == "hidden":
            return "hidden from readers"
        kind = next((label for pattern, label in _JUNK_KINDS if pattern.match(word)), f"'{word}' block")
        label = " ".join(parent.get("class") or []) or str(parent.get("id") or "")
        return f'{kind} (<{name} "{_short(label, 40)}">)'
    return None


def _container(anchor: Tag, page: _Page) -> str | None:
    """Where in the listing's main body the link sits, if it does: <main>, an <article> card, or one of
    a run of like items (the <li>s of a list, the cards of a grid; small ones, not the page's layout)."""
    node: Tag | None = anchor
    while node is not None and node.name not in ("body", "html", "[document]"):
        parent = node.parent
        if node.name == "main" or str(node.get("role") or "").lower() == "main":
            return "in the page's <main>"
        if node.name == "article":
            return "in an article card"
        inline = node is anchor and parent is not None and parent.name in ("p", "span", "em", "strong")
        if parent is not None and not inline and page.text_length(node) <= MAX_ITEM_TEXT:
            like = page.like_siblings(node)
            if like >= MIN_SIBLINGS:
                return f"in a list of {like} like items"
        node = parent
    return None


@dataclass
class _Row:
    anchor_text: str
    url: str
    verdict: str | None = None
    reason: str = ""
    in_jsonld_only: bool = False


@dataclass
class _Evidence:
    """What all the links to one URL say about it, and which rows of the output they are."""

    first_row: int
    rows: list[int] = field(default_factory=list)
    headline: str | None = None
    container: str | None = None
    jsonld: bool = False


def _web_verdict(url: str | None, page_url: str, next_url: str | None, profile: Profile) -> tuple[str, str] | None:
    """Left for a link that leaves the web, the site or the page, or the next page of the listing."""
    if url is None:
        return LEFT, "not a web link"
    if not profile.allows_host(url):
        return LEFT, "another site"
    if url == page_url:
        return LEFT, "this page"
    if url == next_url:
        return NEXT, "pagination: the next page of this listing (followed)"
    return None


def _feed_verdict(anchor: Tag, page: _Page, profile: Profile) -> tuple[str, str]:
    """A link to a feed is read when it belongs to the listing; the site-wide feed in a footer is not."""
    if not profile.discover_feeds:
        return LEFT, "a feed (this profile does not read feeds it finds)"
    region = _region(anchor, page)
    if region:
        return LEFT, f"a feed, but in the {region}: only the listing's own feeds are read"
    return FEED, "a feed: read for more articles"


def _url_verdict(url: str, page_url: str, profile: Profile) -> tuple[str, str] | None:
    """Left for what the URL says it is (a tag, author, login or search page...), or None."""
    if url in profile.listings:
        return LEFT, "another listing this profile crawls"
    builtin = non_article_reason(url, listing_url=page_url)
    if profile.article_patterns:  # the profile's own patterns decide; the built-in words only explain
        if any(p.search(url) for p in profile.exclude_patterns):
            return LEFT, "excluded by the profile's exclude_patterns" + (f" ({builtin})" if builtin else "")
        return None
    if builtin:
        return LEFT, builtin
    if any(p.search(url) for p in profile.exclude_patterns):
        return LEFT, "excluded by the profile's exclude_patterns"
    return None


def _place_verdict(anchor: Tag, text: str, url: str, page: _Page, profile: Profile) -> tuple[str, str] | None:
    """Left for where the link is or what it is marked as (rel=tag, a pager's "2"), or None."""
    rel = {r.lower() for r in (anchor.get("rel") or [])}
    if "tag" in rel:
        return LEFT, "tag link (rel=tag)"
    if "author" in rel:
        return LEFT, "author link (rel=author)"
    if rel & {"prev", "next"}:
        return LEFT, f"pagination (rel={'/'.join(sorted(rel & {'prev', 'next'}))})"
    if not page.in_scope(anchor):
        return LEFT, "outside the profile's listing_scope"
    region = _region(anchor, page)
    if region:
        return LEFT, region
    if not profile.article_patterns and not article_url_shape(url) and _PAGER_TEXT.match(text.strip(" <>«»‹›←→")):
        return LEFT, f"pagination (link text {_short(text, 20)!r})"
    return None


def judge_links(soup: BeautifulSoup, page_url: str, base: str, profile: Profile, *,
                next_url: str | None = None, listed: Sequence[str] = ()) -> list[LinkDecision]:
    """Every <a href> of a listing page in page order, then the URLs only its JSON-LD lists, each with a
    verdict and the reason. `listed`: URLs from the page's JSON-LD ItemList/CollectionPage.

    Changes `soup`: scripts, styles and templates are removed first (their links are never shown).
    """
    for tag in soup.find_all(_INVISIBLE_TAGS):
        tag.decompose()
    root = soup.body or soup
    scopes: list[Tag] = soup.select(profile.listing_scope) if profile.listing_scope else []
    page = _Page(root, scopes)
    listed_urls = list(dict.fromkeys(u for u in (normalize_url(x, base=base) for x in listed) if u))

    rows: list[_Row] = []
    evidence: dict[str, _Evidence] = {}
    for anchor in root.find_all("a", href=True):
        href = str(anchor["href"]).strip()
        url = normalize_url(href, base=base)
        text, marked = _link_text(anchor)
        rows.append(_Row(text, url or href))
        verdict = _web_verdict(url, page_url, next_url, profile)
        if verdict is None and url is not None:
            is_feed = _FEED_TYPE.search(str(anchor.get("type") or "")) or _FEED_PATH.search(url.split("?", 1)[0])
            verdict = _feed_verdict(anchor, page, profile) if is_feed else None
            verdict = verdict or _url_verdict(url, page_url, profile) or \
                _place_verdict(anchor, text, url, page, profile)
        if verdict is not None:
            rows[-1].verdict, rows[-1].reason = verdict
            continue
        ev = evidence.setdefault(rows[-1].url, _Evidence(first_row=len(rows) - 1))
        ev.rows.append(len(rows) - 1)
        if ev.headline is None and reads_as_headline(text, marked):
            ev.headline = "headline (in a heading or title)" if marked else "headline text"
        ev.container = ev.container or _container(anchor, page)

    for url in listed_urls:
        if url in evidence:
            evidence[url].jsonld = True
            continue
        rows.append(_Row("", url, in_jsonld_only=True))
        fixed = _web_verdict(url, page_url, next_url, profile) or _url_verdict(url, page_url, profile)
        if fixed is not None:
            rows[-1].verdict, rows[-1].reason = fixed[0], fixed[1] + " (listed in JSON-LD)"
            continue
        evidence[url] = _Evidence(jsonld=True, first_row=len(rows) - 1, rows=[len(rows) - 1])

    families = Counter(url_family(url) for url in evidence)
    for url, ev in evidence.items():
        verdict, reason = _weigh(url, ev, families, profile)
        first = rows[ev.first_row]
        first.verdict, first.reason = verdict, reason
        for later in ev.rows[1:]:
            rows[later].verdict = LEFT
            rows[later].reason = f"same URL as a link above ({verdict})"
    return [LinkDecision(r.url, _short(r.anchor_text), r.verdict or LEFT, r.reason, r.in_jsonld_only) for r in rows]


def _weigh(url: str, ev: _Evidence, families: Counter, profile: Profile) -> tuple[str, str]:
    """Taken or left for a URL that nothing rules out, from the evidence of all its links."""
    listed = "listed in the page's JSON-LD (ItemList or CollectionPage)"
    if profile.article_patterns:
        if any(p.search(url) for p in profile.article_patterns):
            return TAKEN, "matches the profile's article_patterns" + (f"; {listed}" if ev.jsonld else "")
        return LEFT, "does not match the profile's article_patterns"
    family = url_family(url)
    siblings = f"one of {families[family]} links under {family}" if families[family] >= MIN_SIBLINGS else None
    shape = article_url_shape(url)
    signals = [s for s in (f"URL shape: {shape}" if shape else None, listed if ev.jsonld else None, ev.headline,
                           ev.container, siblings) if s]
    if shape or ev.jsonld or ev.headline and (ev.container or siblings):
        return TAKEN, "; ".join(signals)
    missing = "no headline-like text" if not ev.headline else "not in the main list and no sibling links"
    return LEFT, f"too little sign of an article ({'; '.join(signals) + '; ' if signals else ''}{missing})"


def feed_urls(decisions: list[LinkDecision]) -> list[str]:
    """Feed URLs among the decisions, in order, once each."""
    return list(dict.fromkeys(d.url for d in decisions if d.verdict == FEED))


def taken_urls(decisions: list[LinkDecision]) -> list[str]:
    """Article URLs in page order, once each."""
    return list(dict.fromkeys(d.url for d in decisions if d.taken))

