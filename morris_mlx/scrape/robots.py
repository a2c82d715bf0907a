"""robots.txt, read once per host and asked before every request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

log = logging.getLogger("morris.scrape")


@dataclass(frozen=True)
class RobotsAnswer:
    allowed: bool
    reason: str = ""


class RobotsPolicy:
    """Per-host robots.txt rules, fetched lazily through `fetch_robots(url) -> (status, text)`.

    Follows RFC 9309: a missing file (4xx) allows everything; 401/403 or an unreachable server (5xx,
    network error, `None` status) means crawl nothing on that host.
    """

    def __init__(self, user_agent: str, fetch_robots: Callable[[str], tuple[int | None, str]]) -> None:
        self.user_agent = user_agent
        self._fetch = fetch_robots
        self._parsers: dict[str, tuple[RobotFileParser, str]] = {}

    def _parser(self, url: str) -> tuple[RobotFileParser, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            robots_url = origin + "/robots.txt"
            status, text = self._fetch(robots_url)
            parser = RobotFileParser(robots_url)
            note = ""
            if status is None or status >= 500:
                parser.disallow_all = True
                note = f"robots.txt unreachable ({'no answer' if status is None else f'HTTP {status}'})"
            elif status in (401, 403):
                parser.disallow_all = True
                note = f"robots.txt forbidden (HTTP {status})"
            elif status >= 400:
                parser.allow_all = True
            else:
                parser.parse(text.splitlines())
            log.debug("robots.txt for %s: HTTP %s %s", origin, status, note)
            self._parsers[origin] = (parser, note)
        return self._parsers[origin]

    def check(self, url: str) -> RobotsAnswer:
        parser, note = self._parser(url)
        if parser.can_fetch(self.user_agent, url):
            return RobotsAnswer(True)
        return RobotsAnswer(False, note or "robots.txt disallows")

    def crawl_delay(self, url: str) -> float:
        """The host's Crawl-delay (or 1/Request-rate) for our agent, 0 if it sets none."""
        parser, _ = self._parser(url)
        delay = parser.crawl_delay(self.user_agent)
        rate = parser.request_rate(self.user_agent)
        from_rate = rate.seconds / rate.requests if rate and rate.requests else 0.0
        return float(max(delay or 0.0, from_rate))

    def sitemaps(self, url: str) -> list[str]:
        """The sitemaps the host's robots.txt names (`Sitemap:` lines), in its order."""
        parser, _ = self._parser(url)
        return list(dict.fromkeys(parser.site_maps() or []))
