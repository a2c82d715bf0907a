"""Polite HTTP: one place that every request goes through.

What it guarantees: only http(s) and only the allowed hosts, before and after every redirect; robots.txt
asked first; a named User-Agent; a delay between requests to a host (longer if robots.txt or a
Retry-After says so); retries with backoff on 429/5xx/timeouts via urllib3's `Retry`; a cap on pages per
run and on bytes per page. Failures come out as `FetchError` with a short reason, never as a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError, ReadTimeoutError, ResponseError
from urllib3.util.retry import Retry

from morris_mlx import __version__
from morris_mlx.scrape.cache import Page, PageCache
from morris_mlx.scrape.robots import RobotsPolicy
from morris_mlx.scrape.urls import host_of, normalize_url

log = logging.getLogger("morris.scrape")

USER_AGENT = f"morris_mlx/{__version__} (+https://github.com/morris-mlx)"
MAX_REDIRECTS = 5
RETRY_STATUSES = (429, 500, 502, 503, 504)
_CHUNK = 64 * 1024
_BINARY_TYPES = ("image/", "video/", "audio/", "font/", "application/pdf", "application/zip",
                 "application/octet-stream", "application/x-gzip", "application/gzip")


class FetchError(Exception):
    """A page that could not or should not be fetched. `skipped` marks our own policy (robots.txt,
    off-site redirect, size cap, not a web page) as opposed to a failure of the server or network."""

    def __init__(self, reason: str, detail: str = "", skipped: bool = False, status: int | None = None) -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason
        self.detail = detail
        self.skipped = skipped
        self.status = status


class PageCapReached(Exception):
    """The run has fetched as many pages as `max_pages` allows."""


class PoliteRetry(Retry):
    """urllib3 Retry that stops retrying, instead of retrying early, when Retry-After asks for a longer
    wait than `max_retry_after` (urllib3's own cap would retry before the server said it was ready).
    With raise_on_status=False the last response then comes back and is reported with its status."""

    max_retry_after: float = 120.0

    def new(self, **kw):  # type: ignore[no-untyped-def]
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        return retry

    def get_retry_after(self, response):  # type: ignore[no-untyped-def]
        try:
            return super().get_retry_after(response)
        except InvalidHeader:  # a malformed Retry-After is ignored (backoff applies), not fatal
            return None

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,  # type: ignore[no-untyped-def]
                  _stacktrace=None):
        if response is not None and response.status in RETRY_STATUSES:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.max_retry_after:
                reason = ResponseError(f"HTTP {response.status} asks to wait {wait:.0f} s")
                raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


@dataclass(frozen=True)
class FetchSettings:
    allowed_hosts: tuple[str, ...]
    delay: float = 1.5
    timeout: float = 20.0
    retries: int = 4
    backoff: float = 1.0
    max_pages: int = 2000
    max_bytes: int = 5_000_000
    max_retry_after: float = 120.0
    user_agent: str = USER_AGENT


def utc_now() -> datetime:
    return datetime.now(UTC)


def _parse_content_type(value: str) -> tuple[str, str | None]:
    kind, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'")
    return kind.strip().lower(), charset


def _describe(exc: Exception) -> str:
    """A short reason for a requests exception; retries are already spent when one reaches us."""
    if isinstance(exc, requests.exceptions.RetryError):
        inner = exc.args[0] if exc.args else exc
        reason = getattr(inner, "reason", inner)
        return str(reason) if isinstance(reason, ResponseError) else "gave up after retries"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = exc.args[0] if exc.args else None
        if isinstance(getattr(inner, "reason", None), ReadTimeoutError) or isinstance(inner, ReadTimeoutError):
            return "timed out"
        return "connection failed"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "broken response"
    return f"request failed ({type(exc).__name__})"


class Fetcher:
    """Fetch pages politely; `fetch` returns a Page or raises FetchError / PageCapReached."""

    def __init__(
        self,
        settings: FetchSettings,
        cache: PageCache | None = None,
        *,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self._now = now
        self._sleep = sleep
        self._monotonic = monotonic
        self._next_request_at: dict[str, float] = {}
        self.pages_fetched = 0
        self.bytes_fetched = 0
        self.cache_hits = 0
        self.session = requests.Session()
        self.session.headers["User-Agent"] = settings.user_agent
        self.session.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        retry = PoliteRetry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            other=0,
            redirect=False,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            backoff_factor=settings.backoff,
            backoff_max=max(settings.backoff * 8, 1.0),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.max_retry_after = settings.max_retry_after
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.robots = RobotsPolicy(settings.user_agent, self._fetch_robots)

    def close(self) -> None:
        self.session.close()

    # -- politeness -----------------------------------------------------------------------------

    def _wait_turn(self, url: str) -> None:
        wait = self._next_request_at.get(host_of(url), 0.0) - self._monotonic()
        if wait > 0:
            self._sleep(wait)

    def _done_with(self, url: str, response: requests.Response | None) -> None:
        """Book the next slot for this host: the delay (1-2 s for the 1.5 s default), robots.txt's
        Crawl-delay if longer, and whatever Retry-After the last answer carried."""
        host = host_of(url)
        delay = self.settings.delay * random.uniform(2 / 3, 4 / 3) if self.settings.delay else 0.0
        if not url.endswith("/robots.txt"):
            delay = max(delay, self.robots.crawl_delay(url))
        if response is not None and response.status_code in RETRY_STATUSES:
            value = response.headers.get("Retry-After")
            if value:
                try:
                    asked = Retry().parse_retry_after(value)
                except InvalidHeader:  # a malformed value is ignored, as urllib3's retries ignore it
                    asked = 0.0
                delay = max(delay, min(asked, self.settings.max_retry_after))
        self._next_request_at[host] = self._monotonic() + delay

    # -- requests -------------------------------------------------------------------------------

    def _check_url(self, url: str) -> str:
        normalized = normalize_url(url)
        if normalized is None:
            raise FetchError("not an http(s) URL", url, skipped=True)
        if host_of(normalized) not in self.settings.allowed_hosts:
            raise FetchError("host not allowed", host_of(normalized), skipped=True)
        return normalized

    def _get(self, url: str, *, check_robots: bool, use_cache: bool = False) -> tuple[requests.Response | Page, str]:
        """GET with redirects followed by hand, so each hop is checked against hosts and robots.txt.

        With `use_cache`, a redirect to a page already in the cache ends there, with the cached Page.
        """
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            if hop and use_cache and self.cache is not None:
                cached = self.cache.get(current)
                if cached is not None:
                    return cached, current
            if check_robots:
                answer = self.robots.check(current)
                if not answer.allowed:
                    raise FetchError(answer.reason, current, skipped=True)
            self._wait_turn(current)
            response = None
            try:
                response = self.session.get(
                    current, allow_redirects=False, stream=True,
                    timeout=(self.settings.timeout, self.settings.timeout),
                )
            except (requests.RequestException, HTTPError) as exc:
                raise FetchError(_describe(exc), current) from None
            finally:
                self._done_with(current, response)
            if not response.is_redirect:
                return response, current
            location = response.headers.get("Location", "")
            response.close()
            target = normalize_url(location, base=current)
            if target is None:
                raise FetchError("redirect to a non-http(s) URL", location, skipped=True)
            if host_of(target) not in self.settings.allowed_hosts:
                raise FetchError("redirect to another host", host_of(target), skipped=True)
            current = target
        raise FetchError("too many redirects", url)

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError("page too large", f"{int(declared)} bytes > {limit}", skipped=True)
        # The timeout applies to each socket read; a server dripping bytes would evade it, so the whole
        # body also has a deadline.
        deadline = self._monotonic() + 3 * self.settings.timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FetchError("page too large", f"more than {limit} bytes", skipped=True)
                if self._monotonic() > deadline:
                    raise FetchError("timed out", "body took too long", status=response.status_code)
                chunks.append(chunk)
        except (requests.RequestException, HTTPError) as exc:
            raise FetchError(_describe(exc), url) from None
        finally:
            response.close()
        self.bytes_fetched += size
        return b"".join(chunks)

    def fetch(self, url: str, *, use_cache: bool = True) -> Page:
        """The page at `url`: from the cache when allowed and present, else from the network."""
        url = self._check_url(url)
        if use_cache and self.cache is not None:
            cached = self.cache.get(url)
            if cached is not None:
                self.cache_hits += 1
                return cached
        if self.pages_fetched >= self.settings.max_pages:
            raise PageCapReached(f"fetched {self.pages_fetched} pages (--max-pages)")
        self.pages_fetched += 1
        response, final_url = self._get(url, check_robots=True, use_cache=use_cache)
        if isinstance(response, Page):
            self.cache_hits += 1
            page = dataclasses.replace(response, url=url, from_cache=False)
            if self.cache is not None:
                self.cache.put(page)
            return dataclasses.replace(page, from_cache=True)
        if response.status_code != 200:
            response.close()
            retry_after = (response.headers.get("Retry-After") or "").strip()
            if retry_after:
                detail = f"asks to wait {retry_after} s" if retry_after.isdigit() else f"asks to wait until {retry_after}"
            else:
                detail = final_url
            raise FetchError(f"HTTP {response.status_code}", detail, status=response.status_code)
        content_type, charset = _parse_content_type(response.headers.get("Content-Type", ""))
        if content_type.startswith(_BINARY_TYPES):
            response.close()
            raise FetchError("not a web page", content_type, skipped=True)
        content = self._read_body(response, final_url)
        page = Page(url=url, final_url=final_url, content=content, content_type=content_type,
                    encoding=charset, fetched_at=self._now().isoformat(timespec="seconds"))
        if use_cache and self.cache is not None:
            self.cache.put(page)
        return page

    def _fetch_robots(self, robots_url: str) -> tuple[int | None, str]:
        try:
            response, _ = self._get(robots_url, check_robots=False)
            assert isinstance(response, requests.Response)  # no cache for robots.txt
            status = response.status_code
            body = self._read_body(response, robots_url) if status == 200 else b""
        except FetchError as exc:
            # Unreadable for any reason (network, off-host redirect, too large, too slow): report no status,
            # so the host is treated as fully disallowed, the cautious reading of RFC 9309.
            log.warning("robots.txt %s: %s", robots_url, exc)
            return None, ""
        if response.status_code != 200:
            response.close()
        return status, body.decode("utf-8", errors="replace")
