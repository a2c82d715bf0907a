"""`morris scrape --explain`: every link of a listing page with the reason it was taken or left.

`explain_listing` is pure (a parsed listing in, lines of text out); `explain_profile` fetches the first
page of each of a profile's listings through the polite fetcher (robots.txt is asked, as in a run).
"""

from __future__ import annotations

from morris_mlx.errors import MorrisError
from morris_mlx.scrape.discover import Listing, parse_listing
from morris_mlx.scrape.fetch import Fetcher, FetchError, FetchSettings
from morris_mlx.scrape.links import FEED, NEXT, TAKEN
from morris_mlx.scrape.profile import Profile
from morris_mlx.scrape.urls import host_of, site_path

_URL_WIDTH = 44
_TEXT_WIDTH = 40


def _where(url: str, page_url: str) -> str:
    """A link as short as it can be told apart: its path on the page's own site, else the whole URL."""
    return site_path(url) if host_of(url) and host_of(url) == host_of(page_url) else url


def _cell(text: str, width: int) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.ljust(width)


def explain_listing(listing: Listing, page_url: str) -> list[str]:
    """A header line, then one line per link in page order: verdict, link, its text, the reason."""
    links = [d for d in listing.decisions if not d.in_jsonld_only]
    taken = [d for d in listing.decisions if d.verdict == TAKEN]
    lines = [f"{page_url}: {len(links)} links, {len(listing.links)} taken as article links"
             + (f", next page {_where(listing.next_url, page_url)}" if listing.next_url else "")]
    for d in listing.decisions:
        text = "(JSON-LD only)" if d.in_jsonld_only else f'"{d.text}"' if d.text else "(no text)"
        lines.append(f"  {d.verdict:<9}  {_cell(_where(d.url, page_url), _URL_WIDTH)}  "
                     f"{_cell(text, _TEXT_WIDTH)}  {d.reason}")
    if listing.next_url and not any(d.verdict == NEXT for d in listing.decisions):
        lines.append(f"  {NEXT:<9}  {_where(listing.next_url, page_url)}  (from <link rel=next> or the profile)")
    feeds = [f for f in listing.feeds if not any(d.verdict == FEED and d.url == f for d in listing.decisions)]
    for feed in feeds:
        lines.append(f"  {FEED:<9}  {_cell(_where(feed, page_url), _URL_WIDTH)}  {'(<link rel=alternate>)':<{_TEXT_WIDTH}}"
                     "  a feed the page advertises")
    if not taken:
        lines.append("  no link here looks like an article: if the articles are there, a profile with "
                     "article_patterns (a regex for the site's article URLs) finds them; see --profile")
    return lines


def explain_profile(profile: Profile, settings: FetchSettings) -> list[str]:
    """Fetch the first page of each of the profile's listings and explain its links."""
    if not profile.listings:
        raise MorrisError(f"profile {profile.name!r} has no listing page to explain; pass --author-url URL")
    fetcher = Fetcher(settings, None)
    lines: list[str] = []
    try:
        for url in profile.listings:
            try:
                page = fetcher.fetch(url, use_cache=False)
            except FetchError as exc:
                raise MorrisError(f"--explain: cannot fetch {url}: {exc}; check the URL, or "
                                  "robots.txt if it says so") from None
            listing = parse_listing(page.content, page.final_url, profile, page.encoding)
            lines += explain_listing(listing, page.final_url)
    finally:
        fetcher.close()
    return lines
