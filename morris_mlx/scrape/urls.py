"""URL normalisation and the URL-shape heuristics used to tell article links from everything else."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only track the click: dropping them makes two links to one article compare equal.
_TRACKING = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|_gl|cmpid|ocid)$", re.I)

# Path segments of pages that list or describe things rather than being an article, with what they are
# (the words `morris scrape --explain` uses for a link it leaves out).
_SEGMENT_KINDS = {
    **dict.fromkeys(("tag", "tags", "topic", "topics", "keyword", "keywords"), "tag page"),
    **dict.fromkeys(("category", "categories"), "category page"),
    **dict.fromkeys(("author", "authors"), "author page"),
    **dict.fromkeys(("login", "logout", "signin", "sign-in", "signup", "sign-up", "register", "subscribe",
                     "account", "my-account", "cart", "checkout", "wp-admin", "wp-login.php"),
                    "login or account page"),
    "search": "search page",
    **dict.fromkeys(("feed", "rss"), "feed"),
    "page": "pagination",
    "share": "share link",
    **dict.fromkeys(("about", "about-us", "contact", "contact-us", "privacy", "privacy-policy", "terms",
                     "newsletter", "newsletters", "events", "webinars", "sitemap"), "site page"),
}
# Query parameters that turn a URL into another page of a list, a share button or a search.
_PAGE_PARAMS = {"page", "paged", "pg", "offset", "start"}
_QUERY_KINDS = {"share": "share link", "replytocom": "comment reply link", "s": "search page",
                "q": "search page", "query": "search page", "search": "search page", "cursor": "pagination"}
_FILE_EXTENSIONS = re.compile(
    r"\.(jpe?g|png|gif|webp|svg|ico|pdf|xml|rss|css|js|json|zip|gz|mp3|mp4|mov|avi|docx?|xlsx?|pptx?)$", re.I
)
_AUTHOR_SEGMENTS = {
    "author", "authors", "by", "people", "staff", "contributor", "contributors", "writer", "writers",
    "columnist", "columnists", "profile", "profiles",
}


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Absolute http(s) URL without fragment, default port or tracking parameters; None if not http(s)."""
    url = (url or "").strip()
    if base is not None:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def host_of(url: str) -> str:
    """The `host[:port]` part as `normalize_url` writes it (lowercase, default port dropped)."""
    normalized = normalize_url(url)
    return urlsplit(normalized).netloc if normalized else ""


def with_query_param(url: str, name: str, value: str) -> str:
    """`url` with query parameter `name` set to `value` (replacing any earlier value)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    pairs.append((name, value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), ""))


def non_article_reason(url: str, listing_url: str | None = None) -> str | None:
    """Why the URL alone says it is not an article (a tag, author, login, search or pagination page, a
    file, the home page), or None when it might be one. `listing_url` is the page the link was found on."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path:
        return "the site's home page"
    if _FILE_EXTENSIONS.search(path):
        return "a file, not a web page"
    if listing_url is not None and path == urlsplit(listing_url).path.rstrip("/"):
        return "pagination (another page of this listing)"
    for segment in (s for s in path.split("/") if s):
        kind = _SEGMENT_KINDS.get(segment.lower())
        if kind is not None:
            return f"{kind} (/{segment}/)"
    if re.search(r"/page/\d+$", path):
        return "pagination (/page/N)"
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        key = key.lower()
        if key in _PAGE_PARAMS and value.isdigit():
            return f"pagination (?{key}=)"
        if key in _QUERY_KINDS:
            return f"{_QUERY_KINDS[key]} (?{key}=)"
    return None


def article_url_shape(url: str) -> str | None:
    """The shape that marks most article URLs (multi-word slug, date in the path, long numeric id, .html
    name), or None. Opaque ids (/p/x7f2, ?id=12) have no such shape: other signals must find those."""
    path = urlsplit(url).path.rstrip("/")
    segments = [s for s in path.split("/") if s]
    if not segments:
        return None
    last = segments[-1]
    if re.search(r"\.(s?html?|aspx?|php)$", last, re.I):
        return "page name (.html)"
    if last.count("-") >= 2:
        return "multi-word slug"
    if re.search(r"/(19|20)\d\d/\d\d?/", path + "/"):
        return "date in the path"
    if re.search(r"\d{5,}", path):
        return "numeric id"
    return None


def looks_like_article_url(url: str, listing_url: str | None = None) -> bool:
    """Guess from the URL alone whether it points at an article (used when a profile has no patterns).

    News and blog articles almost always carry a multi-word slug, a date in the path, a numeric id or an
    .html name; listing, tag, author and utility pages rarely do.
    """
    return non_article_reason(url, listing_url) is None and article_url_shape(url) is not None


def url_family(url: str) -> str:
    """What links to sibling pages share: the path up to the last segment ('/news/*'), or the path and
    the query's keys ('/story?id=*') when the query is what tells pages apart."""
    parts = urlsplit(url)
    keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
    if keys:
        return parts.path + "?" + "&".join(f"{k}=*" for k in keys)
    segments = [s for s in parts.path.split("/") if s]
    return "/" + "".join(s + "/" for s in segments[:-1]) + "*"


def site_path(url: str) -> str:
    """The part of a URL after the host: what tells two links on one site apart."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def author_from_url(url: str) -> str | None:
    """'Jane Doe' from an author page such as /author/jane-doe; None when the URL does not say.

    Single-word slugs are usually user names ('jdoe') rather than names, so they are not trusted.
    """
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for i, segment in enumerate(segments[:-1]):
        if segment.lower() in _AUTHOR_SEGMENTS:
            words = [w for w in re.split(r"[-_+.]+", segments[i + 1]) if w and not w.isdigit()]
            if len(words) >= 2:
                return " ".join(w.capitalize() for w in words)
            return None
    return None
