"""`morris scrape`: collect a writer's public articles into raw JSONL, politely and resumably."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser, add_config_arg, config_from_args, positive_int
from morris_mlx.config import ScrapeConfig, field_help, write_config
from morris_mlx.errors import MorrisError
from morris_mlx.paths import morris_home

log = logging.getLogger("morris.scrape")

EXAMPLE = """examples:
  morris scrape                                   # Iain Morris on Light Reading -> data/raw/articles.jsonl
  morris scrape --max-articles 20 --since 2024-01-01
  morris scrape --author-url https://example.com/author/jane-doe --out data/raw/jane.jsonl
  morris scrape --explain --author-url https://example.com/author/jane-doe   # why each link is taken or left

Run it again at any time: articles already in --out are kept, pages already fetched come from the cache
(--cache-dir), and only new articles are fetched. An interrupted run resumes where it stopped.
"""

MAPPING = {
    "profile": "scrape.profile",
    "author_url": "scrape.author_url",
    "max_articles": "scrape.max_articles",
    "max_pages": "scrape.max_pages",
    "max_bytes": "scrape.max_bytes",
    "since": "scrape.since",
    "delay": "scrape.delay",
    "timeout": "scrape.timeout",
    "retries": "scrape.retries",
    "out": "scrape.out",
}


def _non_negative(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be zero or more")
        return value

    return parse


def _positive_float(text: str) -> float:
    value = _non_negative(float)(text)  # type: ignore[operator]
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="morris scrape",
        description="Collect a writer's public articles into JSONL, one article a line (url, title, standfirst,\n"
        "author, published, body, source, fetched_at, sha256). Honours robots.txt, waits between requests,\n"
        "retries politely, stays on the profile's hosts and keeps only the writer's own articles.",
        epilog=EXAMPLE,
    )
    add_config_arg(parser)

    def h(name: str) -> str:
        return field_help(ScrapeConfig, name)

    parser.add_argument("--profile", metavar="NAME|FILE", help=h("profile") + " Default: lightreading.")
    parser.add_argument("--author-url", metavar="URL", help=h("author_url"))
    parser.add_argument(
        "--author",
        metavar="NAME",
        help="Writer whose byline must appear (default: the profile's writer, or the name in an "
        "/author/jane-doe URL).",
    )
    parser.add_argument(
        "--max-articles",
        type=positive_int,
        metavar="N",
        help=h("max_articles") + " Articles already collected count, so this is the newest N.",
    )
    parser.add_argument("--max-pages", type=positive_int, metavar="N", help=h("max_pages"))
    parser.add_argument("--max-bytes", type=positive_int, metavar="N", help=h("max_bytes"))
    parser.add_argument("--since", metavar="DATE", help=h("since"))
    parser.add_argument(
        "--delay",
        type=_non_negative(float),
        metavar="SECONDS",
        help=h("delay") + " Each wait is drawn from 2/3 to 4/3 of it.",
    )
    parser.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help=h("timeout"))
    parser.add_argument("--retries", type=_non_negative(int), metavar="N", help=h("retries"))
    parser.add_argument(
        "--backoff",
        type=_non_negative(float),
        default=1.0,
        metavar="SECONDS",
        help="Backoff factor between retries (waits 0, 2x, 4x, ... this). Default: 1.",
    )
    parser.add_argument("--out", metavar="FILE", help=h("out"))
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="Where fetched pages are kept (default: $MORRIS_HOME/scrape-cache).",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs and summary only).")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="Fetch the first page of each listing (--author-url, or the profile's) and list every link on it "
        "with the reason it was taken as an article link or left out; collects nothing.",
    )
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` gets the same clean stop as Ctrl-C: state saved, summary printed."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, MAPPING)
    sc = cfg.scrape

    from morris_mlx.scrape.crawl import Scraper, ScrapeSettings, config_path
    from morris_mlx.scrape.dates import parse_since
    from morris_mlx.scrape.fetch import FetchSettings
    from morris_mlx.scrape.profile import resolve_profile
    from morris_mlx.scrape.report import RichProgress, print_summary

    since = None
    if sc.since:
        try:
            since = parse_since(sc.since)
        except ValueError as exc:
            raise MorrisError(f"--since (scrape.since): {exc}; pass YYYY-MM-DD") from None
    if args.author is not None and not args.author.strip():
        raise MorrisError("--author is empty; pass the writer's name as it appears in bylines")
    profile = resolve_profile(sc.profile, sc.author_url, args.author)
    if not profile.listings and not profile.feeds and not profile.sitemaps:
        raise MorrisError(f"profile {profile.name!r} lists no pages to start from; pass --author-url URL")
    fetch_settings = FetchSettings(
        allowed_hosts=profile.hosts,
        delay=sc.delay,
        timeout=sc.timeout,
        retries=sc.retries,
        backoff=args.backoff,
        max_pages=sc.max_pages,
        max_bytes=sc.max_bytes,
    )
    if args.explain:
        from morris_mlx.scrape.explain import explain_profile

        logging.getLogger("urllib3").setLevel(logging.ERROR)
        print("\n".join(explain_profile(profile, fetch_settings)))
        return 0

    if not profile.author:
        log.warning("no writer name known: keeping articles by anyone; pass --author NAME to check bylines")

    out = Path(sc.out).expanduser()
    if out.is_dir():
        raise MorrisError(f"--out {out} is a folder; pass a file such as {out / 'articles.jsonl'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MorrisError(
            f"--out {out}: cannot create its folder ({exc.strerror}); choose another path"
        ) from None
    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else morris_home() / "scrape-cache"
    settings = ScrapeSettings(
        profile=profile,
        out=out,
        cache_dir=cache_dir,
        max_articles=sc.max_articles,
        since=since,
        fetch=fetch_settings,
    )
    # urllib3 logs each retry as a warning of its own; the outcome is reported per page and in the summary.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    log.info("scraping %s (profile %s) into %s", profile.author or "every writer", profile.name, out)
    scraper = Scraper(settings)
    progress = RichProgress(sc.max_articles, enabled=not args.no_progress)
    scraper.progress = progress
    try:
        with _sigterm_as_interrupt(), progress:
            summary = scraper.run()
    except KeyboardInterrupt:
        scraper.summary.stopped = "interrupted"
        print_summary(scraper.summary, out)
        log.warning(
            "interrupted: %d articles are safely in %s; run the same command again to resume",
            scraper.summary.kept,
            out,
        )
        raise
    print_summary(summary, out)
    write_config(
        cfg,
        out.parent,
        filename=config_path(out).name,
        extra={
            "command": "scrape",
            "profile": profile.name,
            "author": profile.author,
            "hosts": list(profile.hosts),
            "cache_dir": str(cache_dir),
            "summary": summary.as_dict(),
        },
    )
    if summary.found == 0 and summary.listings_without_articles:
        # Printed, not logged: the log handler wraps long lines, and this must stay one line.
        print(f"morris scrape: {_nothing_found(summary.listings_without_articles, sc.author_url, sc.profile)}",
              file=sys.stderr)
        return 1
    if summary.found == 0 and summary.failed:
        log.error("no article links found: every source failed (see the reasons above)")
        return 1
    return 0


def _nothing_found(pages: list[tuple[str, int]], author_url: str | None, profile: str) -> str:
    """One line for a run that found no article link on listing pages that were read."""
    url, links = pages[0]
    more = f" (nor on {len(pages) - 1} other listing page{'s' if len(pages) > 2 else ''})" if len(pages) > 1 else ""
    what = f"none of the {links} links on {url}{more} looks like an article" if links else \
        f"{url}{more} has no links at all (a page its scripts fill in? try its feed or sitemap in a profile)"
    again = f"--author-url {author_url}" if author_url else f"--profile {profile}"
    return (f"no article links found: {what}; see why with `morris scrape --explain {again}`, or pass "
            "--profile FILE with article_patterns for the site's article URLs")
