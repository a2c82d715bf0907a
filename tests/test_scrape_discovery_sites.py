"""Whole runs with the generic profile (`--author-url`) against sites the scraper has never seen, one per
style of article link: exactly the writer's articles, robots.txt obeyed, no duplicates, and a clear
failure (exit 1, one line, a hint) when a listing's links hold no article."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from test_scrape_discovery_support import (
    ARCHIVE,
    EVERY_STYLE,
    FEED_ONLY,
    SITEMAP_ONLY,
    STYLES,
    WRITER,
    archive_html,
    build_style,
)
from test_scrape_support import FIXED_NOW, article_html, serve_site

from morris_mlx.cli import main
from morris_mlx.scrape.crawl import Scraper, ScrapeSettings
from morris_mlx.scrape.fetch import FetchSettings
from morris_mlx.scrape.profile import resolve_profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def site():
    with serve_site() as s:
        yield s


def scrape(start: str, tmp_path: Path, out: str = "out.jsonl"):
    profile = resolve_profile("generic", start, None)
    settings = ScrapeSettings(
        profile=profile, out=tmp_path / out, cache_dir=tmp_path / "cache",
        fetch=FetchSettings(allowed_hosts=profile.hosts, delay=0.0, timeout=5.0, retries=0, backoff=0.0),
    )
    summary = Scraper(settings, now=lambda: datetime.fromisoformat(FIXED_NOW)).run()
    rows = [json.loads(line) for line in settings.out.read_text().splitlines()] if settings.out.exists() else []
    return summary, rows


def cli(*args: str) -> int:
    try:
        return main(["scrape", *args])
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize("style", EVERY_STYLE)
def test_each_link_style_yields_exactly_the_writers_articles(site, tmp_path, style):
    built = build_style(site, style)
    summary, rows = scrape(built.start, tmp_path)

    assert [r["url"] for r in rows] == built.expected
    assert all(r["author"] == WRITER for r in rows)
    assert len({r["sha256"] for r in rows}) == len({r["title"] for r in rows}) == len(rows)
    for record in rows:
        assert record["sha256"] == hashlib.sha256(record["body"].encode("utf-8")).hexdigest()
    assert site.hits("/robots.txt") == 1
    for path in built.never_requested:
        assert site.hits(path) == 0, path
    assert summary.skipped["robots.txt disallows"] == 1
    assert summary.skipped["other author"] >= 1
    if style in STYLES:
        # the second URL of the writer's third article: fetched, then known by its canonical link
        assert summary.skipped["duplicate"] == 1
        assert site.hits(str(STYLES[style]["repeat"])) == 1
        assert summary.kept == 5 and summary.found == 8


def test_a_second_run_fetches_no_article_again(site, tmp_path):
    built = build_style(site, "opaque")
    scrape(built.start, tmp_path)
    site.requests.clear()
    summary, rows = scrape(built.start, tmp_path)
    # page 1 holds nothing new, and the archive was read to its end before: the run stops there
    assert summary.written == 0 and summary.already == 3 and len(rows) == 5
    assert site.paths() == ["/robots.txt", ARCHIVE]


def test_sitemaps_from_robots_are_not_read_when_the_listing_has_articles(site, tmp_path):
    built = build_style(site, "opaque")
    robots = site.routes["/robots.txt"][0].body.decode() + f"Sitemap: {site.url('/sitemap.xml')}\n"
    site.add("/robots.txt", robots, content_type="text/plain")
    site.add("/sitemap.xml", f"<urlset><url><loc>{site.url('/news/elsewhere')}</loc></url></urlset>",
             content_type="application/xml")
    summary, rows = scrape(built.start, tmp_path)
    assert len(rows) == 5 and site.hits("/sitemap.xml") == 0


def test_a_listing_that_cannot_be_read_does_not_fall_back_to_the_sitemaps(site, tmp_path):
    build_style(site, SITEMAP_ONLY)
    summary, rows = scrape(site.url("/author/somebody-else"), tmp_path)
    assert rows == [] and summary.failed == {"listing: HTTP 404": 1}
    assert site.hits("/news-sitemap.xml") == site.hits("/sitemap_index.xml") == 0


def test_the_cli_collects_the_opaque_site(site, tmp_path, capsys):
    built = build_style(site, "opaque")
    out = tmp_path / "jane.jsonl"
    assert cli("--author-url", built.start, "--out", str(out), "--delay", "0", "--cache-dir",
               str(tmp_path / "cache"), "--no-progress") == 0
    assert [json.loads(line)["url"] for line in out.read_text().splitlines()] == built.expected
    assert "5 articles: 5 new" in capsys.readouterr().out


def test_explain_lists_every_link_with_its_reason_and_collects_nothing(site, tmp_path, capsys):
    build_style(site, "opaque")
    out = tmp_path / "never.jsonl"
    assert cli("--explain", "--author-url", site.url(ARCHIVE), "--out", str(out), "--delay", "0") == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith(f"{site.url(ARCHIVE)}: ") and "4 taken as article links" in lines[0]
    assert "next page /author/jane-doe?page=2" in lines[0]

    def verdict(path: str, text: str = "") -> tuple[str, str]:
        found = [line for line in lines if f"  {path} " in line and text in line]
        assert found, (path, text, printed)
        parts = found[0].split()
        return parts[0], found[0]

    for path in ("/news/x7f2", "/news/Pv5", "/news/9Qk", "/news/m1"):
        kind, line = verdict(path)
        assert kind == "taken" and "headline text" in line, line
    expectations = {
        "/news": "navigation", "/opinion": "navigation", "/topics/open-ran": "tag page",
        "/video/the-week-in-telecom-explained": "navigation", "/login": "login or account page",
        "/subscribe": "login or account page", "/tag/5g": "tag page", "/category/opinion": "category page",
        "/share?url=archive": "share link", "https://twitter.com/intent/tweet?url=x": "another site",
        "/news/s4t": "sidebar", "/about": "site page", "/privacy-and-cookie-policy": "site footer",
        "/author/jane-doe/about-jane": "author page", "/": "home page",
    }
    for path, reason in expectations.items():
        kind, line = verdict(path)
        assert kind == "left" and reason in line, line
    kind, line = verdict("/news/x7f2", "Read more")
    assert kind == "left" and "same URL as a link above (taken)" in line
    kind, line = verdict("/author/jane-doe?page=2", "Next")
    assert kind == "next" and "pagination" in line
    assert not out.exists() and not out.parent.joinpath("morris_config.json").exists()
    assert site.hits("/news/x7f2") == 0  # only the listing is read


def test_explain_of_a_page_that_cannot_be_fetched_is_one_line_exit_2(site, capsys):
    assert cli("--explain", "--author-url", site.url("/author/nobody-here"), "--delay", "0", "--retries", "0") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "HTTP 404" in err[0] and "--explain" in err[0]


def _site_without_article_links(site) -> None:
    """An archive with navigation, tags, a pager and two-word links, and nothing that reads as an article."""
    items = [("/x/1", "Quick note"), ("/x/2", "Short one"), ("/x/3", "Brief")]
    page = archive_html(items, pages=[ARCHIVE], page=1, sidebar=("/x/9", "Popular"))
    site.add(ARCHIVE, page.replace("Read more", "More"))
    for path, _ in items:
        site.add(path, article_html("Quick note", author=WRITER))


def test_no_article_on_a_page_with_links_is_one_line_and_exit_1(site, tmp_path, capsys):
    _site_without_article_links(site)
    out = tmp_path / "none.jsonl"
    assert cli("--author-url", site.url(ARCHIVE), "--out", str(out), "--delay", "0", "--cache-dir",
               str(tmp_path / "cache"), "--no-progress") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "no article links found" in line]
    assert len(err) == 1
    assert f"links on {site.url(ARCHIVE)} looks like an article" in err[0]
    assert f"morris scrape --explain --author-url {site.url(ARCHIVE)}" in err[0] and "--profile" in err[0]
    assert site.hits("/x/1") == 0


def test_the_one_line_stays_one_line_in_a_narrow_terminal(site, tmp_path):
    _site_without_article_links(site)
    env = {**os.environ, "COLUMNS": "60", "MORRIS_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "morris_mlx", "--quiet", "scrape", "--author-url", site.url(ARCHIVE), "--out",
         str(tmp_path / "none.jsonl"), "--delay", "0", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("morris scrape: no article links found: ")
    assert lines[0].endswith("for the site's article URLs") and "Traceback" not in result.stderr


def test_a_page_with_no_links_at_all_says_so(site, tmp_path, capsys):
    site.add(ARCHIVE, "<html><body><div id='app'>Loading…</div></body></html>")
    assert cli("--author-url", site.url(ARCHIVE), "--out", str(tmp_path / "o.jsonl"), "--delay", "0",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "no article links found" in line]
    assert len(err) == 1 and "has no links at all" in err[0]


@pytest.mark.parametrize("style", [FEED_ONLY, SITEMAP_ONLY])
def test_articles_found_only_in_a_feed_or_sitemap_exit_0(site, tmp_path, style, capsys):
    built = build_style(site, style)
    out = tmp_path / "o.jsonl"
    assert cli("--author-url", built.start, "--out", str(out), "--delay", "0", "--cache-dir",
               str(tmp_path / "cache"), "--no-progress") == 0
    assert len(out.read_text().splitlines()) == 5
    assert "no article links found" not in capsys.readouterr().err
