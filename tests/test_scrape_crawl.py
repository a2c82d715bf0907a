"""Whole runs against a local site full of faults: exactly the right articles, resumable, incremental."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from test_scrape_support import (
    FIXED_NOW,
    Reply,
    article_html,
    listing_html,
    prose,
    rss_xml,
    serve_site,
    write_profile,
)

from morris_mlx.errors import MorrisError
from morris_mlx.scrape.crawl import Scraper, ScrapeSettings, state_path
from morris_mlx.scrape.fetch import FetchSettings
from morris_mlx.scrape.profile import load_profile, resolve_profile
from morris_mlx.scrape.store import FIELDS, ArticleStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def site():
    with serve_site() as s:
        yield s


def fixed_now() -> datetime:
    return datetime.fromisoformat(FIXED_NOW)


def settings_for(site, tmp_path: Path, *, out="out.jsonl", cache="cache", profile=None, max_articles=200,
                 since=None, **discovery) -> ScrapeSettings:
    profile = profile or load_profile(str(write_profile(tmp_path, site, **discovery)))
    return ScrapeSettings(
        profile=profile,
        out=tmp_path / out,
        cache_dir=tmp_path / cache,
        max_articles=max_articles,
        since=since,
        # A timeout far above a local reply's time even on a loaded machine, far below the slow story's delay.
        fetch=FetchSettings(allowed_hosts=profile.hosts, delay=0.0, timeout=1.0, retries=1, backoff=0.0,
                            max_bytes=100_000, max_retry_after=5.0),
    )


def run(settings: ScrapeSettings):
    return Scraper(settings, now=fixed_now).run()


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build_faulty_site(site) -> list[str]:
    """Two listing pages and a feed covering every fault in the issue; returns the expected URLs in order."""
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    alpha = article_html("Alpha story")
    site.add("/news/alpha-story", alpha)
    site.add("/news/jsonld-story", article_html("JSON-LD story", layout="jsonld"))
    site.add("/news/other-story", article_html("Someone else", author="Mike Dano"))
    site.add("/news/no-byline-story", article_html("No byline", author=None))
    site.add("/news/alpha-copy", alpha)  # the same article under a second URL
    site.add("/news/alpha-old", Reply(status=301, headers={"Location": "/news/alpha-story"}))
    site.add("/private/secret-story", article_html("Secret"))
    site.add("/news/flaky-story", Reply(status=500), Reply(body=article_html("Flaky story").encode()))
    site.add("/news/cp1252-story", Reply(body=article_html("Café £5bn story", charset=None).encode("cp1252"),
                                         content_type="text/html; charset=windows-1252"))
    broken = article_html("Broken story").replace("</p>", "", 3).replace("</div>", "</span></div></b>", 2)
    site.add("/news/broken-story", broken[:-20])  # unclosed tags, stray end tags, cut off at the end
    site.add("/news/busy-story", Reply(status=429, headers={"Retry-After": "1"}),
             Reply(body=article_html("Busy story").encode()))
    site.add("/news/slow-story", Reply(body=article_html("Slow").encode(), delay=4.0))
    site.add("/news/offsite-story", Reply(status=302, headers={"Location": f"http://localhost:{site.host.split(':')[1]}/x"}))
    site.add("/news/huge-story", Reply(body=article_html("Huge", paragraphs=prose("huge", 4000)).encode()))
    site.add("/news/feed-only-story", article_html("Feed only story"))
    site.add("/news/feed-other-story", article_html("Feed other", author="Kelsey Ziser"))
    site.add("/news/popular-other-story", article_html("Popular", author="Mike Dano"))

    page1 = [f"/news/{s}" for s in ("alpha-story", "alpha-story?utm_source=twitter", "jsonld-story", "other-story",
                                    "no-byline-story", "alpha-copy", "missing-story")] + \
        ["/private/secret-story", "/news/flaky-story"]
    page2 = [f"/news/{s}" for s in ("cp1252-story", "broken-story", "busy-story", "slow-story", "offsite-story",
                                    "huge-story", "alpha-old")]
    site.add("/author/iain-morris", listing_html(page1, next_url="/author/iain-morris?page=2",
                                                  sidebar=["/news/popular-other-story"]))
    site.add("/author/iain-morris?page=2", listing_html(page2))
    date = "Tue, 05 Mar 2024 09:30:00 GMT"
    site.add("/feed.xml", rss_xml([(site.url("/news/jsonld-story"), "Iain Morris", date),
                                   (site.url("/news/feed-only-story"), "Iain Morris", date),
                                   (site.url("/news/feed-other-story"), "Kelsey Ziser", date)]),
             content_type="application/rss+xml")
    return [site.url(f"/news/{s}") for s in ("alpha-story", "jsonld-story", "flaky-story", "cp1252-story",
                                             "broken-story", "busy-story", "feed-only-story")]


def test_a_run_collects_exactly_the_expected_articles_and_logs_every_fault(site, tmp_path, caplog):
    expected = build_faulty_site(site)
    settings = settings_for(site, tmp_path, feeds=[site.url("/feed.xml")])
    # `morris` itself may not propagate to the root logger (the CLI sets it up so), so listen directly.
    caplog.set_level("DEBUG", logger="morris.scrape")
    logger = logging.getLogger("morris.scrape")
    logger.addHandler(caplog.handler)
    try:
        summary = run(settings)
    finally:
        logger.removeHandler(caplog.handler)

    got = rows(settings.out)
    assert [r["url"] for r in got] == expected
    for record in got:
        assert tuple(record) == FIELDS
        assert record["author"] == "Iain Morris" and record["source"] == "Test Site"
        assert record["published"] == "2024-03-05T09:30:00+00:00"
        assert record["fetched_at"] == FIXED_NOW
        assert record["sha256"] == hashlib.sha256(record["body"].encode("utf-8")).hexdigest()
        assert record["body"].count("\n\n") >= 3 and "Share on" not in record["body"]
    cafe = next(r for r in got if "cp1252" in r["url"])
    assert cafe["title"] == "Café £5bn story" and "Café £5bn story paragraph 0" in cafe["body"]

    assert summary.found == 17 and summary.kept == summary.written == 7 and summary.already == 0
    assert dict(summary.skipped) == {
        "other author": 2, "no byline": 1, "duplicate": 2, "robots.txt disallows": 1,
        "redirect to another host": 1, "page too large": 1,
    }
    assert dict(summary.failed) == {"HTTP 404": 1, "timed out": 1}
    for never in ("/private/secret-story", "/news/feed-other-story", "/news/popular-other-story", "/x"):
        assert site.hits(never) == 0, never
    assert site.hits("/news/alpha-story") == 1  # the ?utm_source link was the same URL
    log = caplog.text
    for reason in ("HTTP 404", "timed out", "robots.txt disallows", "redirect to another host", "page too large",
                   "other author", "no byline", "duplicate"):
        assert reason in log, reason


def test_interrupted_then_resumed_run_gives_the_same_file(site, tmp_path, monkeypatch):
    build_faulty_site(site)
    whole = settings_for(site, tmp_path, out="whole.jsonl", cache="cache-whole", feeds=[site.url("/feed.xml")])
    run(whole)

    parts = settings_for(site, tmp_path, out="parts.jsonl", cache="cache-parts", feeds=[site.url("/feed.xml")])
    original = ArticleStore.append
    calls = []

    def append_then_die(self, record):
        original(self, record)
        calls.append(record["url"])
        if len(calls) == 3:
            raise KeyboardInterrupt  # after the line is on disk, before the state file knows about it

    monkeypatch.setattr(ArticleStore, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(parts)
    monkeypatch.setattr(ArticleStore, "append", original)
    assert len(rows(parts.out)) == 3
    assert state_path(parts.out).is_file()

    site.requests.clear()
    summary = run(parts)
    assert parts.out.read_bytes() == whole.out.read_bytes()
    assert summary.already == 3 and summary.written == 4
    # nothing already collected was downloaded again
    assert not {"/news/alpha-story", "/news/jsonld-story", "/news/flaky-story"} & set(site.paths())


def test_killed_process_keeps_whole_lines_and_resumes(site, tmp_path):
    links = [f"/news/story-number-{i}" for i in range(8)]
    for i, link in enumerate(links):
        site.add(link, Reply(body=article_html(f"Story {i}").encode(), delay=0.15))
    site.add("/author/iain-morris", listing_html(links))
    profile = write_profile(tmp_path, site)
    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "morris_mlx", "scrape", "--profile", str(profile), "--out", str(out),
               "--delay", "0", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    data = out.read_bytes()
    assert data.endswith(b"\n") and 2 <= data.count(b"\n") < len(links)
    assert all(json.loads(line)["url"] for line in data.splitlines())

    from morris_mlx.cli import main

    assert main(["scrape", "--profile", str(profile), "--out", str(out), "--delay", "0",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    assert [r["url"] for r in rows(out)] == [site.url(link) for link in links]


def test_rerun_fetches_only_what_is_new(site, tmp_path):
    pages = [[f"/news/page{p}-story-{i}" for i in range(2)] for p in range(3)]
    for links in pages:
        for link in links:
            site.add(link, article_html(link.rsplit("/", 1)[1]))
    paths = ["/author/iain-morris", "/author/iain-morris?page=2", "/author/iain-morris?page=3"]
    for i, path in enumerate(paths):
        site.add(path, listing_html(pages[i], next_url=paths[i + 1] if i + 1 < len(paths) else None))
    settings = settings_for(site, tmp_path)
    assert run(settings).written == 6

    site.add("/news/brand-new-story", article_html("Brand new"))
    site.add(paths[0], listing_html(["/news/brand-new-story", *pages[0]], next_url=paths[1]))
    site.requests.clear()
    summary = run(settings)
    assert summary.written == 1 and summary.already == 4
    assert site.paths() == ["/robots.txt", paths[0], "/news/brand-new-story", paths[1]]
    assert rows(settings.out)[-1]["url"] == site.url("/news/brand-new-story")

    site.requests.clear()
    again = run(settings)
    assert again.written == 0 and site.paths() == ["/robots.txt", paths[0]]


def test_max_articles_takes_the_newest_and_stops(site, tmp_path):
    pages = [[f"/news/page{p}-story-{i}" for i in range(3)] for p in range(2)]
    for links in pages:
        for link in links:
            site.add(link, article_html(link))
    site.add("/author/iain-morris", listing_html(pages[0], next_url="/author/iain-morris?page=2"))
    site.add("/author/iain-morris?page=2", listing_html(pages[1]))
    summary = run(settings_for(site, tmp_path, max_articles=2))
    assert summary.kept == 2 and "max-articles" in (summary.stopped or "")
    assert site.hits("/author/iain-morris?page=2") == 0 and site.hits(pages[0][2]) == 0


def test_since_skips_older_articles_and_stops_paginating(site, tmp_path):
    site.add("/news/new-story-here", article_html("New", published="2024-06-01"))
    site.add("/news/old-story-here", article_html("Old", published="2023-01-01"))
    site.add("/news/older-story-here", article_html("Older", published="2022-01-01"))
    site.add("/author/iain-morris", listing_html(["/news/new-story-here", "/news/old-story-here"],
                                                 next_url="/author/iain-morris?page=2"))
    site.add("/author/iain-morris?page=2", listing_html(["/news/older-story-here"],
                                                        next_url="/author/iain-morris?page=3"))
    settings = settings_for(site, tmp_path, since=date(2024, 1, 1))
    summary = run(settings)
    assert [r["title"] for r in rows(settings.out)] == ["New"]
    assert summary.skipped["before --since"] == 2
    assert site.hits("/author/iain-morris?page=3") == 0


def test_sitemap_discovery_with_lastmod_filter(site, tmp_path):
    site.add("/sitemap.xml", f"<sitemapindex><sitemap><loc>{site.url('/sitemap-1.xml')}</loc></sitemap></sitemapindex>",
             content_type="application/xml")
    site.add("/sitemap-1.xml",
             f"<urlset><url><loc>{site.url('/news/fresh-story-here')}</loc><lastmod>2024-05-01</lastmod></url>"
             f"<url><loc>{site.url('/news/stale-story-here')}</loc><lastmod>2020-01-01</lastmod></url>"
             f"<url><loc>{site.url('/about')}</loc></url></urlset>", content_type="application/xml")
    site.add("/news/fresh-story-here", article_html("Fresh", published="2024-05-01"))
    settings = settings_for(site, tmp_path, listings=[], sitemaps=[site.url("/sitemap.xml")], since=date(2024, 1, 1))
    summary = run(settings)
    assert [r["title"] for r in rows(settings.out)] == ["Fresh"]
    assert site.hits("/news/stale-story-here") == 0 and summary.skipped["before --since"] == 1


def test_generic_profile_from_author_url(site, tmp_path):
    site.add("/author/iain-morris/", listing_html(
        ["/2024/03/doom-and-gloom-at-the-telco", "/blog/another-grim-quarter", "/tag/open-ran", "/about"],
        feed="/author/iain-morris/feed"))
    site.add("/2024/03/doom-and-gloom-at-the-telco", article_html("Doom", layout="article"))
    site.add("/blog/another-grim-quarter", article_html("Grim", layout="plain"))
    site.add("/author/iain-morris/feed", rss_xml([(site.url("/p/12"), None, "Tue, 05 Mar 2024 09:30:00 GMT")]),
             content_type="application/rss+xml")
    site.add("/p/12", article_html("From the feed", layout="jsonld"))
    profile = resolve_profile("lightreading", site.url("/author/iain-morris/"), None)
    assert profile.name == "generic" and profile.author == "Iain Morris" and profile.hosts == (site.host,)
    settings = settings_for(site, tmp_path, profile=profile)
    run(settings)
    got = rows(settings.out)
    assert [r["title"] for r in got] == ["Doom", "Grim", "From the feed"]
    assert got[0]["source"] == site.host
    assert site.hits("/tag/open-ran") == 0 and site.hits("/about") == 0


def test_failed_sources_are_reported_not_raised(site, tmp_path):
    site.add("/feed.xml", "<html>not a feed</html>", content_type="text/html")
    summary = run(settings_for(site, tmp_path, feeds=[site.url("/feed.xml")]))
    assert summary.found == 0
    assert dict(summary.failed) == {"listing: HTTP 404": 1, "feed: unreadable feed": 1}


def test_partial_last_line_is_repaired_and_foreign_files_refused(site, tmp_path):
    site.add("/news/only-story-here", article_html("Only"))
    site.add("/author/iain-morris", listing_html(["/news/only-story-here"]))
    settings = settings_for(site, tmp_path)
    settings.out.write_text('{"url": "http://x/a", "sha256": "00", "title": "kept"}\n{"url": "http://x/b", "bo')
    run(settings)
    lines = settings.out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["title"] == "kept" and json.loads(lines[1])["title"] == "Only"
    # Torn however short, or zero bytes from a power cut: still our own line, cut on the next open.
    whole = settings.out.read_bytes()
    for torn in (b"{", b'{"ur', b"\0" * 50):
        settings.out.write_bytes(whole + torn)
        run(settings)
        assert settings.out.read_bytes() == whole

    # A file that is not ours is refused untouched, even when its last line is unterminated.
    for foreign in ("this is not jsonl\n", '{"a": 1}\nmy notes', "my notes", '{"url": "http://x/a", "sha256": "00"}\nnotes'):
        settings.out.write_text(foreign)
        with pytest.raises(MorrisError, match="not a scraped article"):
            run(settings)
        assert settings.out.read_text() == foreign


def test_second_listing_overlapping_the_first_is_still_paginated(site, tmp_path):
    shared = ["/news/shared-story-one", "/news/shared-story-two"]
    for link in [*shared, "/news/column-only-story"]:
        site.add(link, article_html(link))
    site.add("/author/iain-morris", listing_html(shared))
    site.add("/column", listing_html(shared, next_url="/column?page=2"))
    site.add("/column?page=2", listing_html(["/news/column-only-story"]))
    settings = settings_for(site, tmp_path, listings=[site.url("/author/iain-morris"), site.url("/column")])
    summary = run(settings)
    assert [r["url"] for r in rows(settings.out)] == [site.url(p) for p in [*shared, "/news/column-only-story"]]
    assert summary.found == 3 and summary.skipped == {}


def test_sigterm_stops_cleanly_with_the_summary(site, tmp_path):
    links = [f"/news/slow-story-{i}" for i in range(6)]
    for i, link in enumerate(links):
        site.add(link, Reply(body=article_html(f"Story {i}").encode(), delay=0.2))
    site.add("/author/iain-morris", listing_html(links))
    out = tmp_path / "term.jsonl"
    command = [sys.executable, "-m", "morris_mlx", "scrape", "--profile", str(write_profile(tmp_path, site)),
               "--out", str(out), "--delay", "0", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n") >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "scrape summary" in stdout and "interrupted" in stderr and "Traceback" not in stderr
    assert state_path(out).is_file() and out.read_bytes().endswith(b"\n")


def test_two_runs_cannot_write_one_file_at_once(site, tmp_path):
    from morris_mlx.scrape.store import exclusive

    settings = settings_for(site, tmp_path)
    with exclusive(settings.out), pytest.raises(MorrisError, match="another `morris scrape` is writing"):
        run(settings)
