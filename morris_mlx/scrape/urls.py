"""URL normalisation and the URL-shape heuristics used to tell article links from everything else."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only track the click: dropping them makes two links to one article compare equal.
_TRACKING = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|_gl|cmpid|ocid)$", re.I)

# Path segments of pages that list or describe things rather than being an article.
_NON_ARTICLE_SEGMENTS = {
    "tag", "tags", "category", "categories", "author", "authors", "page", "search", "login", "logout",
    "register", "subscribe", "about", "about-us", "contact", "contact-us", "privacy", "privacy-policy",
    "terms", "feed", "rss", "newsletter", "newsletters", "events", "webinars", "keyword", "keywords",
    "topic", "topics", "wp-admin", "wp-login.php", "cart", "account", "sitemap",
}
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


def query_param(url: str, name: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def looks_like_article_url(url: str, listing_url: str | None = None) -> bool:
    """Guess from the URL alone whether it points at an article (used when a profile has no patterns).

    News and blog articles almost always carry a multi-word slug, a date in the path, a numeric id or an
    .html name; listing, tag, author and utility pages rarely do.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path or _FILE_EXTENSIONS.search(path):
        return False
    if listing_url is not None and path == urlsplit(listing_url).path.rstrip("/"):
        return False
    segments = [s for s in path.split("/") if s]
    if any(s.lower() in _NON_ARTICLE_SEGMENTS for s in segments):
        return False
    last = segments[-1]
    if re.search(r"\.(s?html?|aspx?|php)$", last, re.I):
        return True
    if last.count("-") >= 2:
        return True
    if re.search(r"/(19|20)\d\d/\d\d?/", path + "/"):
        return True
    return bool(re.search(r"\d{5,}", path))


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
