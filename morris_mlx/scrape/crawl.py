"""The crawl: walk a profile's listings, feeds and sitemaps, and turn each article link into a line.

Articles are processed as their listing page is read (not after all pages are discovered), in a fixed
order, and already-collected articles count toward `max_articles`. That makes a run deterministic: an
interrupted run started again walks the same links, finds the first part already written, and ends
with the same file an uninterrupted run would have written.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from morris_mlx.scrape.byline import author_matches
from morris_mlx.scrape.cache import Page, PageCache
from morris_mlx.scrape.dates import date_of
from morris_mlx.scrape.discover import parse_listing
from morris_mlx.scrape.extract import Extracted, extract_article
from morris_mlx.scrape.feeds import Entry, FeedError, parse_feed, parse_sitemap
from morris_mlx.scrape.fetch import Fetcher, FetchError, FetchSettings, PageCapReached, utc_now
from morris_mlx.scrape.profile import Profile
from morris_mlx.scrape.store import ArticleStore, CrawlState, exclusive
from morris_mlx.scrape.urls import host_of, normalize_url, with_query_param

log = logging.getLogger("morris.scrape")

# Skips that stay true on a re-run for the same writer: the state file remembers them so the page is not
# fetched or parsed again. Date, robots.txt and size skips depend on settings and are re-checked.
FINAL_SKIPS = {"other author", "no byline", "no article text", "not a web page", "duplicate"}
MAX_SITEMAP_DEPTH = 3
STATE_SAVE_INTERVAL = 5.0


@dataclass(frozen=True)
class ScrapeSettings:
    profile: Profile
    out: Path
    cache_dir: Path
    fetch: FetchSettings
    max_articles: int = 200
    since: date | None = None


@dataclass
class Summary:
    """Counts for the end-of-run report; `skipped` and `failed` are keyed by reason."""

    found: int = 0
    kept: int = 0
    already: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    pages_fetched: int = 0
    cache_hits: int = 0
    bytes_fetched: int = 0
    stopped: str | None = None
    # First pages of listings where no link looked like an article: (url, number of links on the page).
    listings_without_articles: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found, "kept": self.kept, "already": self.already, "written": self.written,
            "skipped": dict(self.skipped), "failed": dict(self.failed), "pages_fetched": self.pages_fetched,
            "cache_hits": self.cache_hits, "bytes_fetched": self.bytes_fetched, "stopped": self.stopped,
            "listings_without_articles": [list(item) for item in self.listings_without_articles],
        }


class ProgressSink(Protocol):
    def update(self, summary: Summary, activity: str) -> None: ...


class _NoProgress:
    def update(self, summary: Summary, activity: str) -> None:
        pass


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.json")


def config_path(out: Path) -> Path:
    """The settings of the scrape that wrote `out`: one per articles file, as two scrapes may share a folder."""
    return out.with_name(out.name + ".config.json")


class Scraper:
    """One run over a profile. `summary` stays readable if the run is interrupted."""

    def __init__(
        self,
        settings: ScrapeSettings,
        *,
        progress: ProgressSink | None = None,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.profile = settings.profile
        self.progress = progress or _NoProgress()
        self.summary = Summary()
        self._now = now
        self._sleep = sleep
        self._seen: set[str] = set()
        self._kept: set[str] = set()
        self._state_saved_at = 0.0

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> Summary:
        with exclusive(self.settings.out):
            return self._run()

    def _run(self) -> Summary:
        self.store = ArticleStore(self.settings.out)
        self.state = CrawlState.load(state_path(self.settings.out), self.profile.author)
        self.fetcher = Fetcher(self.settings.fetch, PageCache(self.settings.cache_dir), now=self._now,
                               sleep=self._sleep)
        queue: deque[tuple[str, str, int]] = deque(
            [("listing", u, 0) for u in self.profile.listings]
            + [("feed", u, 0) for u in self.profile.feeds]
            + [("sitemap", u, 0) for u in self.profile.sitemaps]
        )
        queued = {url for _, url, _ in queue}
        crawlers = {"listing": self._crawl_listing, "feed": self._crawl_feed, "sitemap": self._crawl_sitemap}
        tried_robots_sitemaps = False
        try:
            while not self.summary.stopped:
                if not queue:
                    # Sitemaps are the last resort, for a listing that was read but links to no article (a
                    # page its scripts fill in): a wrong or unreachable URL must not turn into a site crawl.
                    if tried_robots_sitemaps or not self.profile.discover_sitemaps or self.summary.found or \
                            not self.summary.listings_without_articles:
                        break
                    tried_robots_sitemaps = True
                    queue.extend(("sitemap", u, 0) for u in self._robots_sitemaps() if u not in queued)
                    queued.update(url for _, url, _ in queue)
                    continue
                kind, url, depth = queue.popleft()
                more = crawlers[kind](url, depth)
                for item in more:
                    if item[1] not in queued:
                        queued.add(item[1])
                        queue.append(item)
        except PageCapReached as exc:
            self.summary.stopped = f"page cap reached: {exc}"
            log.warning("stopping: %s", exc)
        finally:
            self._finish()
        return self.summary

    def _save_state(self, force: bool = False) -> None:
        """Save the state at most every few seconds: losing its latest entries costs nothing but a re-parse
        of cached pages (what was written is in the output itself), while saving after every URL would
        rewrite a growing file thousands of times."""
        if force or time.monotonic() - self._state_saved_at >= STATE_SAVE_INTERVAL:
            self.state.save()
            self._state_saved_at = time.monotonic()

    def _finish(self) -> None:
        self._save_state(force=True)
        self.fetcher.close()
        self.summary.pages_fetched = self.fetcher.pages_fetched
        self.summary.cache_hits = self.fetcher.cache_hits
        self.summary.bytes_fetched = self.fetcher.bytes_fetched
        self.progress.update(self.summary, "done")

    def _tick(self, activity: str) -> None:
        self.summary.pages_fetched = self.fetcher.pages_fetched
        self.progress.update(self.summary, activity)

    # -- sources --------------------------------------------------------------------------------

    def _fetch_source(self, url: str, what: str) -> Page | None:
        self._tick(f"{what} {url}")
        try:
            return self.fetcher.fetch(url, use_cache=False)
        except FetchError as exc:
            self._source_failed(url, what, exc.reason, exc.detail)
            return None

    def _source_failed(self, url: str, what: str, reason: str, detail: str = "") -> None:
        self.summary.failed[f"{what}: {reason}"] += 1
        log.warning("%s %s: %s%s", what, url, reason, f" ({detail})" if detail and detail != url else "")

    def _robots_sitemaps(self) -> list[str]:
        """The sitemaps robots.txt names on the profile's hosts, news sitemaps first (they list recent
        articles only, so they are short and the likeliest place for the writer's latest)."""
        found: list[str] = []
        for start in (*self.profile.listings, *self.profile.feeds, *self.profile.sitemaps):
            for url in self.fetcher.robots.sitemaps(start):
                normalized = normalize_url(url)
                if normalized and self.profile.allows_host(normalized) and normalized not in found:
                    found.append(normalized)
        found.sort(key=lambda u: "news" not in u.lower())
        if found:
            log.info("no article links on the listings or in their feeds; reading the sitemaps robots.txt "
                     "names (each page is fetched to read its byline; --max-pages caps it): %s", ", ".join(found))
        return found

    def _crawl_listing(self, seed: str, depth: int) -> list[tuple[str, str, int]]:
        """Follow a listing's pages, processing each page's articles before moving on."""
        discovered: list[tuple[str, str, int]] = []
        was_complete = self.state.source_complete(seed)
        url: str | None = seed
        page_number, guessed, visited = 1, False, set()
        source_links: set[str] = set()
        while url is not None and not self.summary.stopped:
            visited.add(url)
            self._tick(f"listing {url}")
            try:
                page = self.fetcher.fetch(url, use_cache=False)
            except FetchError as exc:
                if guessed and exc.status in (404, 410):
                    break  # ran past the last page of a ?page=N listing: its natural end
                self._source_failed(url, "listing", exc.reason, exc.detail)
                return discovered
            try:
                listing = parse_listing(page.content, page.final_url, self.profile, page.encoding)
            except Exception as exc:  # a parser bug on one odd page must not end the whole run
                self._source_failed(url, "listing", "unreadable page", repr(exc))
                return discovered
            if self.profile.discover_feeds:
                discovered += [("feed", f, 0) for f in listing.feeds]
            if page_number == 1 and not listing.links:
                links = sum(1 for d in listing.decisions if not d.in_jsonld_only)
                self.summary.listings_without_articles.append((url, links))
                log.info("listing %s: none of its %d links looks like an article (`morris scrape --explain` "
                         "shows why)", url, links)
            # A page with no link this listing has not shown before is past its end (or a repeat of the
            # last page, which is how many sites answer ?page=N beyond the end).
            if not set(listing.links) - source_links:
                break
            source_links.update(listing.links)
            fresh = [link for link in listing.links if link not in self._seen]
            unknown = [link for link in fresh if not self._known(link)]
            outcomes = []
            for link in fresh:
                if self.summary.stopped:
                    return discovered
                outcomes.append(self._process(link))
            if was_complete and not unknown:
                log.info("listing %s: nothing new on page %d; older pages were collected before", seed,
                         page_number)
                return discovered
            if self.settings.since and outcomes and all(o == "old" for o in outcomes):
                log.info("listing %s: page %d is all older than --since; stopping there", seed, page_number)
                return discovered
            next_url = listing.next_url
            guessed = next_url is None and self.profile.page_param is not None
            if guessed:
                next_url = with_query_param(seed, self.profile.page_param or "", str(page_number + 1))
            url = next_url if next_url not in visited else None
            page_number += 1
        if not self.summary.stopped:
            self.state.mark_source(seed, complete=True)
            self._save_state(force=True)
        return discovered

    def _crawl_feed(self, seed: str, depth: int) -> list[tuple[str, str, int]]:
        url: str | None = seed
        visited: set[str] = set()
        while url and url not in visited and not self.summary.stopped:
            visited.add(url)
            page = self._fetch_source(url, "feed")
            if page is None:
                break
            try:
                feed = parse_feed(page.content, page.final_url, self.settings.fetch.max_bytes)
            except FeedError as exc:
                self._source_failed(url, "feed", "unreadable feed", str(exc))
                break
            for entry in feed.entries:
                if self.summary.stopped:
                    break
                if entry.url not in self._seen and self.profile.is_article_url(entry.url, from_feed=True):
                    self._process(entry.url, entry)
            url = feed.next_url if feed.next_url and self.profile.allows_host(feed.next_url) else None
        return []

    def _crawl_sitemap(self, url: str, depth: int) -> list[tuple[str, str, int]]:
        page = self._fetch_source(url, "sitemap")
        if page is None:
            return []
        try:
            sitemap = parse_sitemap(page.content, page.final_url, self.settings.fetch.max_bytes)
        except FeedError as exc:
            self._source_failed(url, "sitemap", "unreadable sitemap", str(exc))
            return []
        for entry in sitemap.entries:
            if self.summary.stopped:
                break
            if entry.url not in self._seen and self.profile.may_be_article(entry.url):
                self._process(entry.url, entry)
        if depth >= MAX_SITEMAP_DEPTH:
            return []
        return [("sitemap", child, depth + 1) for child in sitemap.sitemaps if self.profile.allows_host(child)]

    # -- one article ----------------------------------------------------------------------------

    def _known(self, url: str) -> bool:
        return url in self.store.urls or self.state.knows(url)

    def _keep(self, article_url: str, already: bool) -> str:
        if article_url not in self._kept:
            self._kept.add(article_url)
            self.summary.kept += 1
            if already:
                self.summary.already += 1
            else:
                self.summary.written += 1
        if self.summary.kept >= self.settings.max_articles:
            self.summary.stopped = f"reached --max-articles {self.settings.max_articles}"
        return "kept"

    def _skip(self, url: str, reason: str, detail: str = "", *, article_url: str = "",
              level: int = logging.DEBUG, remember: bool = True) -> str:
        self.summary.skipped[reason] += 1
        log.log(level, "skipped %s: %s%s", url, reason, f" ({detail})" if detail else "")
        if remember:
            self.state.note(url, "skipped", reason, article_url)
            self._save_state()
        return "old" if reason == "before --since" else "skipped"

    def _fail(self, url: str, reason: str, detail: str = "") -> str:
        self.summary.failed[reason] += 1
        log.warning("failed %s: %s%s", url, reason, f" ({detail})" if detail and detail != url else "")
        # Failures are not remembered as final: the next run tries again.
        self.state.note(url, "failed", reason)
        self._save_state()
        return "failed"

    def _process(self, url: str, entry: Entry | None = None) -> str:
        """Decide one article link: kept (new or already collected), skipped or failed, with a reason."""
        self._seen.add(url)
        self.summary.found += 1
        self._tick(f"article {url}")
        earlier = self.state.urls.get(url, {})
        article_url = url if url in self.store.urls else earlier.get("article_url", "")
        if earlier.get("outcome") in (None, "written") and article_url in self.store.urls:
            if article_url in self._kept:
                return self._skip(url, "duplicate", f"same article as {article_url}", remember=False)
            return self._keep(article_url, already=True)
        if earlier.get("outcome") == "skipped" and earlier.get("reason") in FINAL_SKIPS:
            duplicate_gone = earlier["reason"] == "duplicate" and earlier.get("article_url") not in self.store.urls
            if not duplicate_gone:
                return self._skip(url, earlier["reason"], "decided in an earlier run", remember=False)

        wanted = self.profile.author
        if entry is not None and entry.author and wanted and not author_matches(wanted, entry.author):
            return self._skip(url, "other author", f"feed says {entry.author}")
        if entry is not None and self.settings.since and (d := date_of(entry.published)) and \
                d < self.settings.since:
            return self._skip(url, "before --since", f"listed as {entry.published}", remember=False)

        try:
            page = self.fetcher.fetch(url)
        except FetchError as exc:
            if exc.skipped:
                return self._skip(url, exc.reason, exc.detail, level=logging.INFO, remember=exc.reason in FINAL_SKIPS)
            return self._fail(url, exc.reason, exc.detail)
        try:
            extracted = extract_article(page.content, page.final_url, self.profile, page.encoding)
        except Exception as exc:  # malformed HTML that defeats the parser is one bad page, not a crash
            return self._fail(url, "unreadable page", repr(exc))
        return self._judge(url, page, extracted)

    def _judge(self, url: str, page: Page, art: Extracted) -> str:
        wanted = self.profile.author
        if art.method is None:
            return self._skip(url, "no article text", f"{art.words} words", level=logging.INFO)
        if wanted:
            if not art.byline:
                if self.profile.require_byline:
                    return self._skip(url, "no byline", level=logging.INFO)
            elif not author_matches(wanted, art.byline):
                return self._skip(url, "other author", art.byline)
        if self.settings.since:
            published = date_of(art.published)
            if published is None:
                return self._skip(url, "no date to compare with --since", remember=False, level=logging.INFO)
            if published < self.settings.since:
                return self._skip(url, "before --since", art.published or "", remember=False)

        # The page's own canonical URL (<link rel="canonical">, og:url) names the article whatever link led
        # here, so two links to one article (tracking parameters, ?id= and slug forms) are one record.
        canonical = art.canonical if art.canonical and self.profile.may_be_article(art.canonical) else None
        record_url = canonical or page.final_url
        record = {
            "url": record_url,
            "title": art.title or "",
            "standfirst": art.standfirst or "",
            "author": art.byline or wanted or "",
            "published": art.published,
            "body": art.body,
            "source": self.profile.source or art.site_name or host_of(record_url),
            "fetched_at": page.fetched_at,
            "sha256": hashlib.sha256(art.body.encode("utf-8")).hexdigest(),
        }
        duplicate = self.store.duplicate_of(record)
        if duplicate is not None:
            if duplicate == record_url and duplicate not in self._kept:
                # The article itself under another address (redirect, alias), written by an earlier run.
                self._note_written(url, page, record_url)
                return self._keep(record_url, already=True)
            return self._skip(url, "duplicate", f"same article as {duplicate}", article_url=duplicate)
        self.store.append(record)
        self._note_written(url, page, record_url)
        log.debug("kept %s (%s, %d words)", record_url, art.method, art.words)
        return self._keep(record_url, already=False)

    def _note_written(self, url: str, page: Page, record_url: str) -> None:
        for alias in dict.fromkeys((url, page.final_url, record_url)):
            self.state.note(alias, "written", article_url=record_url)
        self._save_state()
