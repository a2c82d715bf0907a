"""Small news sites the scraper has never seen, one per style of article link, served on loopback by the
local server of test_scrape_support. Imported by the test_scrape_discovery_* modules; no tests here.

Every site has the same cast: a writer (Jane Doe) with an author archive over two pages, five articles by
her that must be collected, one more that robots.txt forbids, one by another writer linked from her
archive, and one of hers linked twice (the second time under another URL, with another headline, whose
page names the first URL as canonical). Around the article links sit the things a listing is full of: a
header with navigation and a login link, tag and category links on every teaser, a share bar, a pager,
a most-read sidebar holding another writer's article, a footer.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from test_scrape_support import article_html, prose

WRITER = "Jane Doe"
OTHER = "Mike Dano"
ARCHIVE = "/author/jane-doe"
PUBLISHED = "2024-03-05T09:30:00Z"

HEADLINES = [
    "Ericsson swings the axe again as sales slump in North America",
    "Nokia's open RAN dream turns to dust in a German field",
    "Vodafone and the curse of the spectrum auction",
    "Why network slicing is the zombie that refuses to die",
    "Telcos bet the farm on AI and the farm is on fire",
]
FORBIDDEN = "The robots will not let you read this column on tower sales"
OTHER_HEADLINE = "Private 5G is finally taking off, says a vendor with private 5G to sell"
SIDEBAR_HEADLINE = "Most read: the satellite operator that ate the phone company"
REPEAT_HEADLINE = "Vodafone's spectrum headache, explained for the second time"

# Paths of the articles for each link style: the writer's five, the forbidden one, the other writer's,
# the second URL of the writer's third article, and the sidebar's article.
STYLES: dict[str, dict[str, object]] = {
    "slug": {
        "mine": ["/news/ericsson-swings-the-axe", "/news/nokia-open-ran-dream-dust", "/news/vodafone-spectrum-curse",
                 "/news/network-slicing-zombie-refuses", "/news/telcos-bet-the-farm"],
        "forbidden": "/news/tower-sales-column-robots", "other": "/news/private-5g-finally-takes-off",
        "repeat": "/news/vodafone-spectrum-curse-explained-again", "sidebar": "/news/satellite-ate-the-telco",
    },
    "date": {
        "mine": ["/2024/03/05/axe", "/2024/02/28/dust", "/2024/02/20/curse", "/2024/01/15/zombie", "/2023/12/01/farm"],
        "forbidden": "/2023/11/11/towers", "other": "/2024/03/01/private5g",
        "repeat": "/2024/02/21/curse", "sidebar": "/2024/03/04/satellite",
    },
    "numeric": {
        "mine": ["/articles/731", "/articles/48213", "/articles/9", "/articles/120044", "/articles/5512"],
        "forbidden": "/articles/77", "other": "/articles/800", "repeat": "/articles/732",
        "sidebar": "/articles/801",
    },
    "opaque": {
        "mine": ["/news/x7f2", "/news/9Qk", "/news/m1", "/news/Zz0b", "/news/a4"],
        "forbidden": "/news/t0w", "other": "/news/Pv5", "repeat": "/news/m1b", "sidebar": "/news/s4t",
    },
    "query": {
        "mine": ["/article?id=101", "/article?id=102", "/article?id=103", "/article?id=104", "/article?id=106"],
        "forbidden": "/article?id=105", "other": "/article?id=200", "repeat": "/article?id=103&view=full",
        "sidebar": "/article?id=201",
    },
}
FEED_ONLY, SITEMAP_ONLY, JSONLD_LIST = "feed only", "sitemap only", "JSON-LD list"
EVERY_STYLE = [*STYLES, FEED_ONLY, SITEMAP_ONLY, JSONLD_LIST]


@dataclass
class BuiltSite:
    """What a test needs to know about a site it built: where to start and what must come out."""

    start: str
    expected: list[str]
    never_requested: list[str] = field(default_factory=list)


def _chrome(main: str, *, head: str = "", title: str = WRITER) -> str:
    """A page with a site header and navigation, the given main part, a sidebar and a footer."""
    return (
        f"<!doctype html><html><head><title>{title} | Test News</title>{head}</head><body>"
        "<header class='site-header'><a href='/'><img src='/logo.png' alt='Test News'></a>"
        "<nav><a href='/news'>News</a> <a href='/opinion'>Opinion</a> <a href='/topics/open-ran'>Open RAN</a>"
        " <a href='/video/the-week-in-telecom-explained'>The week in telecom, explained on video</a></nav>"
        "<a href='/login'>Sign in</a> <a href='/subscribe'>Subscribe to Test News for more stories</a></header>"
        f"<main>{main}</main>"
        "<footer><a href='/about'>About us</a> <a href='/privacy-and-cookie-policy'>Privacy and cookie policy</a>"
        " <a href='/contact'>Contact</a></footer></body></html>"
    )


def archive_html(items: list[tuple[str, str]], *, pages: list[str], page: int, sidebar: tuple[str, str],
                 head: str = "") -> str:
    """One page of the writer's archive: teasers with the headline as link text, tag and category links,
    a share bar, a pager, a sidebar with another writer's article."""
    teasers = "".join(
        f"<li class='teaser'><a href='{html.escape(href)}'>{html.escape(headline)}</a>"
        f"<p class='meta'>By {WRITER} · 5 March 2024 · <a href='/category/opinion'>Opinion</a> · "
        f"<a href='/tag/5g' rel='tag'>5G</a></p>"
        f"<a href='{html.escape(href)}'>Read more</a></li>"
        for href, headline in items
    )
    next_path = pages[page] if page < len(pages) else None
    pager = "<nav class='pagination'>" + " ".join(
        f"<a href='{html.escape(path)}'>{n}</a>" for n, path in enumerate(pages, 1) if n != page
    ) + (f" <a href='{html.escape(next_path)}'>Next</a>" if next_path else "") + "</nav>"
    share = ("<div class='share-bar'><a href='/share?url=archive'>Share this page</a> "
             "<a href='https://twitter.com/intent/tweet?url=x'>Share on X</a></div>")
    aside = (f"<aside class='most-read'><h3>Most read</h3><a href='{html.escape(sidebar[0])}'>"
             f"{html.escape(sidebar[1])}</a></aside>")
    main = (f"<h1>{WRITER}</h1><p>International Editor. <a href='/author/jane-doe/about-jane'>About Jane</a></p>"
            f"{share}<ul class='archive'>{teasers}</ul>{pager}{aside}")
    return _chrome(main, head=head)


def _article(headline: str, author: str, canonical: str | None = None, extra: str = "") -> str:
    paragraphs = prose(headline) + ([extra] if extra else [])
    return article_html(headline, author=author, layout="jsonld", published=PUBLISHED, canonical=canonical,
                        paragraphs=paragraphs)


def _add_articles(site, mine: list[str], forbidden: str, other: str, sidebar: str) -> None:
    for path, headline in zip(mine, HEADLINES, strict=True):
        site.add(path, _article(headline, WRITER, canonical=site.url(path)))
    site.add(forbidden, _article(FORBIDDEN, WRITER))
    site.add(other, _article(OTHER_HEADLINE, OTHER))
    site.add(sidebar, _article(SIDEBAR_HEADLINE, OTHER))


def build_style(site, style: str) -> BuiltSite:
    """Build the site for one link style; returns where to start and the URLs that must be collected."""
    if style == FEED_ONLY:
        return _build_feed_only(site)
    if style == SITEMAP_ONLY:
        return _build_sitemap_only(site)
    if style == JSONLD_LIST:
        return _build_jsonld_list(site)
    paths = STYLES[style]
    mine, forbidden, other = list(paths["mine"]), str(paths["forbidden"]), str(paths["other"])
    repeat, sidebar = str(paths["repeat"]), str(paths["sidebar"])
    site.add("/robots.txt", f"User-agent: *\nDisallow: {forbidden}\n", content_type="text/plain")
    _add_articles(site, mine, forbidden, other, sidebar)
    # The writer's third article again, under a second URL and an A/B-tested headline, with an editor's
    # note at the end: only its canonical link says it is the same article.
    site.add(repeat, _article(REPEAT_HEADLINE, WRITER, canonical=site.url(mine[2]),
                              extra="Editor's note: this article was updated with the auction's results."))
    page2 = f"{ARCHIVE}/page/2" if style == "numeric" else f"{ARCHIVE}?page=2"
    first = [(mine[0], HEADLINES[0]), (other, OTHER_HEADLINE), (mine[1], HEADLINES[1]), (mine[2], HEADLINES[2])]
    second = [(forbidden, FORBIDDEN), (mine[3], HEADLINES[3]), (repeat, REPEAT_HEADLINE), (mine[4], HEADLINES[4])]
    site.add(ARCHIVE, archive_html(first, pages=[ARCHIVE, page2], page=1, sidebar=(sidebar, SIDEBAR_HEADLINE)))
    site.add(page2, archive_html(second, pages=[ARCHIVE, page2], page=2, sidebar=(sidebar, SIDEBAR_HEADLINE)))
    never = [forbidden, sidebar, "/login", "/subscribe", "/tag/5g", "/category/opinion", "/share?url=archive",
             "/about", "/news", "/opinion", "/topics/open-ran", "/privacy-and-cookie-policy",
             "/video/the-week-in-telecom-explained", "/author/jane-doe/about-jane"]
    return BuiltSite(site.url(ARCHIVE), [site.url(p) for p in mine], never)


def _build_feed_only(site) -> BuiltSite:
    """The archive is filled in by scripts: no article link in its HTML, only a feed it advertises."""
    mine = ["/a/9Qk", "/a/b2", "/a/Xc7", "/a/d4", "/a/e5e"]
    forbidden, other, unnamed, sidebar = "/a/f0", "/a/g1", "/a/h2", "/a/s9"
    site.add("/robots.txt", f"User-agent: *\nDisallow: {forbidden}\n", content_type="text/plain")
    _add_articles(site, mine, forbidden, other, sidebar)
    site.add(unnamed, _article("A column whose feed entry names nobody at all", OTHER))
    feed = f"{ARCHIVE}/feed"
    head = f'<link rel="alternate" type="application/rss+xml" href="{feed}">'
    main = f"<h1>{WRITER}</h1><div id='archive' data-src='/api/archive'>Loading…</div>"
    site.add(ARCHIVE, _chrome(main, head=head))
    date = "Tue, 05 Mar 2024 09:30:00 GMT"
    entries = [(mine[0], WRITER), (other, OTHER), (mine[1], WRITER), (forbidden, WRITER), (mine[2], WRITER),
               (unnamed, None), (mine[3], WRITER), (mine[4], WRITER)]
    items = "".join(
        f"<item><title>t</title><link>{site.url(path)}</link><pubDate>{date}</pubDate>"
        + (f"<dc:creator>{author}</dc:creator>" if author else "") + "</item>"
        for path, author in entries
    )
    site.add(feed, '<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
             f"<channel><title>Jane Doe</title>{items}</channel></rss>", content_type="application/rss+xml")
    return BuiltSite(site.url(ARCHIVE), [site.url(p) for p in mine], [forbidden, other, sidebar])


def _build_sitemap_only(site) -> BuiltSite:
    """The archive is filled in by scripts and advertises no feed; robots.txt names a news sitemap (the
    recent articles) and a sitemap index whose child lists every page of the site."""
    mine = ["/n/k3j", "/n/p0p", "/n/w8", "/n/QQ1"]
    older = "/n/old7"
    forbidden, other, sidebar = "/n/zz", "/n/o1", "/n/s2"
    site.add("/robots.txt", f"User-agent: *\nDisallow: {forbidden}\nSitemap: {site.url('/sitemap_index.xml')}\n"
             f"Sitemap: {site.url('/news-sitemap.xml')}\n", content_type="text/plain")
    _add_articles(site, [*mine, older], forbidden, other, sidebar)
    main = f"<h1>{WRITER}</h1><div id='archive'>Loading…</div>"
    site.add(ARCHIVE, _chrome(main))
    news_urls = "".join(
        f"<url><loc>{site.url(p)}</loc><news:news><news:publication><news:name>Test News</news:name>"
        f"</news:publication><news:publication_date>2024-03-05</news:publication_date>"
        f"<news:title>t</news:title></news:news></url>"
        for p in [mine[0], other, mine[1], forbidden, mine[2], mine[3]]
    )
    site.add("/news-sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
             ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + news_urls + "</urlset>",
             content_type="application/xml")
    site.add("/sitemap_index.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
             f'sitemap/0.9"><sitemap><loc>{site.url("/sitemap-pages.xml")}</loc></sitemap></sitemapindex>',
             content_type="application/xml")
    everything = ["/", "/about", "/tag/5g", ARCHIVE, "/category/opinion", *mine, older, other, sidebar]
    site.add("/sitemap-pages.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             + "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in everything) + "</urlset>",
             content_type="application/xml")
    return BuiltSite(site.url(ARCHIVE), [site.url(p) for p in [*mine, older]],
                     [forbidden, "/tag/5g", "/about", "/category/opinion"])


def _build_jsonld_list(site) -> BuiltSite:
    """The archive's teasers are drawn by scripts; the page lists them in a JSON-LD ItemList (page 1) and
    a CollectionPage (page 2) for search engines."""
    mine = ["/s/1a", "/s/2b", "/s/3c", "/s/4d", "/s/5e"]
    forbidden, other, sidebar = "/s/6f", "/s/7g", "/s/8h"
    site.add("/robots.txt", f"User-agent: *\nDisallow: {forbidden}\n", content_type="text/plain")
    _add_articles(site, mine, forbidden, other, sidebar)
    item_list = {"@context": "https://schema.org", "@type": "ItemList", "itemListElement": [
        {"@type": "ListItem", "position": i + 1, "url": site.url(p)} for i, p in enumerate([mine[0], other, mine[1]])
    ]}
    collection = {"@context": "https://schema.org", "@type": "CollectionPage", "hasPart": [
        {"@type": "NewsArticle", "headline": "t", "url": p} for p in [mine[2], forbidden, mine[3], mine[4]]
    ]}
    crumbs = {"@context": "https://schema.org", "@type": "BreadcrumbList", "itemListElement": [
        {"@type": "ListItem", "position": 1, "item": {"@id": site.url("/"), "name": "Home"}},
        {"@type": "ListItem", "position": 2, "item": {"@id": site.url("/authors"), "name": "Authors"}},
    ]}
    for path, data, nxt in ((ARCHIVE, item_list, f"{ARCHIVE}?page=2"), (f"{ARCHIVE}?page=2", collection, None)):
        head = "".join(f'<script type="application/ld+json">{json.dumps(d)}</script>' for d in (data, crumbs))
        pager = f"<nav class='pagination'><a href='{nxt}'>Next</a></nav>" if nxt else ""
        site.add(path, _chrome(f"<h1>{WRITER}</h1><div id='archive'>Loading…</div>{pager}", head=head))
    return BuiltSite(site.url(ARCHIVE), [site.url(p) for p in mine], [forbidden, "/authors", sidebar])
