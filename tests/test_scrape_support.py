"""A local website for the scraper tests: a stdlib ThreadingHTTPServer serving pages (and faults) that
the tests write themselves, plus builders for article, listing and feed pages.

Imported by the test_scrape_* modules; it holds no tests of its own.
"""

from __future__ import annotations

import contextlib
import html
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AUTHOR = "Iain Morris"
FIXED_NOW = "2025-01-02T03:04:05+00:00"


@dataclass
class Reply:
    """One canned response. `delay` stalls before the status line; `length=False` omits Content-Length
    so the body ends when the connection closes."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    length: bool = True


class Site:
    """Routes are keyed by path with its query string; a list of replies is served in turn, the last one
    repeating. Every request is logged as (path, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def add(self, path: str, *replies: Reply | bytes | str, **kw) -> None:
        if not replies:
            replies = (Reply(**kw),)
        converted = []
        for r in replies:
            if isinstance(r, str):
                r = r.encode("utf-8")
            converted.append(Reply(body=r, **kw) if isinstance(r, bytes) else r)
        self.routes[path] = converted

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            self.requests.append((path, {}))
            replies = self.routes.get(path)
            if replies is None:
                return Reply(body=b"not found", status=404, content_type="text/plain")
            return replies.pop(0) if len(replies) > 1 else replies[0]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            reply = site._next_reply(self.path)
            with site._lock:
                site.requests[-1] = (self.path, dict(self.headers.items()))
            try:
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.length:
                    self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scraper gave up on a slow or huge reply: expected in these tests

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_site() -> Iterator[Site]:
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    site.server = server
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


# -- page builders --------------------------------------------------------------------------------

def prose(seed: str, paragraphs: int = 4) -> list[str]:
    """Distinct paragraphs of about 40 words each, so every article clears the 80-word minimum."""
    return [
        f"{seed} paragraph {i}: like a ship sinking in slow motion, the operator bet the farm on another "
        f"network upgrade (and who could blame it?) while the shareholders watched the share price fall "
        f"for the {i + 1}th quarter running. What could possibly go wrong, asked {seed} number {i}?"
        for i in range(paragraphs)
    ]


def article_html(
    title: str,
    *,
    author: str | None = AUTHOR,
    published: str = "2024-03-05T09:30:00Z",
    paragraphs: list[str] | None = None,
    standfirst: str = "A standfirst that sums the piece up.",
    canonical: str | None = None,
    layout: str = "profile",
    charset: str | None = "utf-8",
) -> str:
    """An article page. layout: 'profile' (the test profile's classes), 'jsonld' (JSON-LD carries
    everything, the visible page has no article markup), 'article' (<article> only), 'plain' (divs)."""
    paras = paragraphs if paragraphs is not None else prose(title)
    head = [f'<meta charset="{charset}">' if charset else "", f"<title>{html.escape(title)} | Test Site</title>"]
    if canonical:
        head.append(f'<link rel="canonical" href="{canonical}">')
    body_html = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
    junk = (
        '<div class="share-bar"><a href="#">Share on X</a> <a href="#">Share on LinkedIn</a></div>'
        '<figure><img src="/img.png"><figcaption>A picture of a mast at dusk</figcaption></figure>'
        '<div class="newsletter-signup"><p>Sign up for our daily newsletter to get more stories.</p></div>'
        '<aside class="related-articles"><h3>Related</h3><a href="/5g/other-story-here">Other</a></aside>'
        "<p>(Source: Alamy Stock Photo)</p>"
    )
    if layout == "profile":
        byline = f'<span class="byline-name">{html.escape(author)}</span>' if author else ""
        body = (
            f'<div class="article"><h1 class="headline">{html.escape(title)}</h1>'
            f'<p class="deck">{html.escape(standfirst)}</p>'
            f'<div class="meta">{byline}<time datetime="{published}">March 5, 2024</time></div>'
            f'<div class="story-body">{body_html[: len(body_html) // 2]}{junk}{body_html[len(body_html) // 2:]}'
            f'<script>var tracking = "not prose";</script></div></div>'
        )
    elif layout == "jsonld":
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "description": standfirst,
            "datePublished": published,
            "articleBody": "\n\n".join(paras),
        }
        if author:
            data["author"] = {"@type": "Person", "name": author}
        head.append(f'<script type="application/ld+json">{json.dumps(data)}</script>')
        body = '<div id="app">Loading…</div><noscript>Enable JavaScript</noscript>'
    elif layout == "article":
        by = f'<p class="byline">By {html.escape(author)}</p>' if author else ""
        body = f"<nav><a href='/'>Home</a></nav><article><h1>{html.escape(title)}</h1>{by}{body_html}</article>"
        head.append(f'<meta property="article:published_time" content="{published}">')
    else:
        head.append(f'<meta name="author" content="{author}">' if author else "")
        body = f"<div class='wrap'><div class='left'><a href='/'>Home</a></div><div class='c'>{body_html}</div></div>"
    return f"<!doctype html><html><head>{''.join(head)}</head><body>{body}</body></html>"


def listing_html(links: list[str], next_url: str | None = None, sidebar: list[str] = (), feed: str = "") -> str:
    items = "".join(f'<li class="item"><a href="{link}">Story {i}</a></li>' for i, link in enumerate(links))
    nxt = f'<a rel="next" href="{next_url}">Next</a>' if next_url else ""
    side = "".join(f'<a href="{link}">Most read</a>' for link in sidebar)
    alt = f'<link rel="alternate" type="application/rss+xml" href="{feed}">' if feed else ""
    return (
        f"<html><head><title>Iain Morris</title>{alt}</head><body><nav><a href='/about'>About</a></nav>"
        f"<main><ul class='stories'>{items}</ul>{nxt}</main><div class='most-popular'>{side}</div></body></html>"
    )


def rss_xml(entries: list[tuple[str, str | None, str]]) -> str:
    """entries: (url, author or None, RFC 822 date)."""
    items = "".join(
        f"<item><title>t</title><link>{url}</link><pubDate>{date}</pubDate>"
        + (f"<dc:creator>{author}</dc:creator>" if author else "")
        + "</item>"
        for url, author, date in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Feed</title>'
        f"{items}</channel></rss>"
    )


def write_profile(directory: Path, site: Site, name: str = "testsite", **discovery: object) -> Path:
    """A profile for the local site, in the shape of data/profiles/*.toml."""
    disc = {"listings": [site.url("/author/iain-morris")], "feeds": [], "sitemaps": [],
            "article_patterns": [r"/(news|5g|private)/[a-z0-9-]+$"], **discovery}
    lines = [
        f'name = "{name}"', 'source = "Test Site"', f'author = "{AUTHOR}"', f'hosts = ["{site.host}"]',
        "min_words = 60", "[discovery]",
        *(f"{key} = {json.dumps(value)}" for key, value in disc.items()),
        "[selectors]",
        'title = "h1.headline"', 'standfirst = "p.deck"', 'byline = ".byline-name"',
        'published = "time[datetime]"', 'body = ".story-body"',
    ]
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
