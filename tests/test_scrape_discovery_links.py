"""Link discovery on listing pages, as pure functions on HTML: which links are articles and why."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from test_scrape_discovery_support import ARCHIVE, archive_html
from test_scrape_support import article_html

from morris_mlx.scrape.discover import parse_listing
from morris_mlx.scrape.explain import explain_listing
from morris_mlx.scrape.extract import extract_article
from morris_mlx.scrape.jsonld import jsonld_objects, listed_urls
from morris_mlx.scrape.links import reads_as_headline
from morris_mlx.scrape.profile import Profile, load_profile
from morris_mlx.scrape.urls import article_url_shape, non_article_reason, url_family

HOST = "news.test"
BASE = f"https://{HOST}"
PAGE = f"{BASE}{ARCHIVE}"
GENERIC = dataclasses.replace(load_profile("generic"), hosts=(HOST,), listings=(PAGE,))


def decisions(page: str, profile: Profile = GENERIC, url: str = PAGE) -> dict[str, tuple[str, str]]:
    """{url: (verdict, reason)} for the first link to each URL."""
    out: dict[str, tuple[str, str]] = {}
    for d in parse_listing(page, url, profile).decisions:
        out.setdefault(d.url, (d.verdict, d.reason))
    return out


def body(html: str) -> str:
    return f"<html><head><title>Archive</title></head><body>{html}</body></html>"


@pytest.mark.parametrize(
    ("text", "marked", "headline"),
    [
        ("Ericsson swings the axe again", False, True),
        ("5G is dead, long live 5G", False, True),
        ("Nokia's open RAN dream", False, True),
        ("Doom", True, True),
        ("Doom", False, False),
        ("Iain Morris", False, False),
        ("Read more", False, False),
        ("Read more about Ericsson's job cuts", False, False),
        ("Share on LinkedIn", False, False),
        ("Sign in to your account", False, False),
        ("Tuesday, March 5, 2024", False, False),
        ("4 min read", False, False),
        ("https://news.test/p/x7f2", False, False),
        ("More stories by Jane", False, False),
        ("Back to the future: Nokia bets on the phones that made it rich", False, True),
        ("More than half of operators fail", False, True),
        ("Follow the money in open RAN", False, True),
        ("View all stories by Jane Doe", False, False),
        ("Sign in to comment", False, False),
    ],
)
def test_link_text_that_reads_as_a_headline(text, marked, headline):
    assert reads_as_headline(text, marked) is headline


def test_url_helpers_name_what_a_url_is():
    assert article_url_shape(f"{BASE}/news/ericsson-swings-the-axe") == "multi-word slug"
    assert article_url_shape(f"{BASE}/2024/03/05/axe") == "date in the path"
    assert article_url_shape(f"{BASE}/articles/48213") == "numeric id"
    assert article_url_shape(f"{BASE}/story.html") == "page name (.html)"
    for opaque in ("/p/x7f2", "/a/9Qk", "/news/m1", "/article?id=123", "/articles/731"):
        assert article_url_shape(BASE + opaque) is None, opaque
        assert non_article_reason(BASE + opaque) is None, opaque
    reasons = {
        "/": "the site's home page", "/tag/5g": "tag page", "/topics/open-ran": "tag page",
        "/category/opinion": "category page", "/author/jane-doe": "author page", "/login": "login or account",
        "/account/settings": "login or account", "/search?q=5g": "search page", "/p/x7f2?share=twitter": "share link",
        "/share?url=x": "share link", "/news/page/2": "pagination", "/news?page=2": "pagination",
        "/feed": "feed", "/logo.png": "a file", "/about": "site page",
    }
    for path, reason in reasons.items():
        assert reason in (non_article_reason(BASE + path) or ""), path
    assert "another page of this listing" in non_article_reason(f"{PAGE}?sort=new", listing_url=PAGE)
    assert url_family(f"{BASE}/news/m1") == "/news/*"
    assert url_family(f"{BASE}/article?id=12&ref=x") == "/article?id=*&ref=*"
    assert url_family(f"{BASE}/x7f2") == "/*"


def test_opaque_ids_with_headlines_in_a_list_are_taken_and_the_furniture_is_not():
    items = [(f"/news/m{i}", f"Headline number {i} about the telecom industry") for i in range(1, 4)]
    got = decisions(archive_html(items, pages=[ARCHIVE, f"{ARCHIVE}?page=2"], page=1,
                                 sidebar=("/news/s1", "Most read: the other writer's big scoop")))
    for path, _ in items:
        verdict, reason = got[BASE + path]
        assert verdict == "taken" and "headline text" in reason and "like items" in reason
        assert "one of 3 links under /news/*" in reason
    left = {
        "/news": "navigation", "/login": "login or account page", "/tag/5g": "tag page",
        "/category/opinion": "category page", "/share?url=archive": "share link", "/news/s1": "sidebar",
        "/privacy-and-cookie-policy": "site footer",
    }
    for path, reason in left.items():
        assert got[BASE + path][0] == "left" and reason in got[BASE + path][1], path
    assert got[f"{PAGE}?page=2"][0] == "next page"


def test_siblings_under_one_path_are_enough_outside_any_list_markup():
    links = "".join(f"<p>Today: <a href='/story?id={i}'>Operator number {i} cuts its capex again</a></p>"
                    for i in (11, 12, 13))
    got = decisions(body(f"<div>{links}</div>"))
    for i in (11, 12, 13):
        verdict, reason = got[f"{BASE}/story?id={i}"]
        assert verdict == "taken" and "one of 3 links under /story?id=*" in reason


def test_a_lone_headline_or_a_menu_of_short_links_is_left():
    lone = decisions(body("<div><a href='/p/zz'>A headline with nowhere to live</a></div>"))
    assert lone[f"{BASE}/p/zz"] == ("left", "too little sign of an article (headline text; not in the main list "
                                            "and no sibling links)")
    menu = "".join(f"<li><a href='/section/{s}'>{s.title()}</a></li>" for s in ("world", "business", "tech"))
    got = decisions(body(f"<main><ul>{menu}</ul></main>"))
    verdict, reason = got[f"{BASE}/section/world"]
    assert verdict == "left" and "no headline-like text" in reason and "one of 3 links under /section/*" in reason


def test_pagination_by_text_rel_and_url_is_left():
    page = body(
        "<main><ul>" + "".join(f"<li><a href='/p/a{i}'>A long enough headline number {i}</a></li>" for i in range(3))
        + "</ul><div class='pager'><a href='/author/jane-doe?p=3'>3</a> <a href='/p/newer' rel='prev'>Newer</a>"
        " <a href='/archive/page/4'>4</a> <a href='/news?offset=20'>More</a></div></main>"
    )
    got = decisions(page)
    assert got[f"{BASE}/author/jane-doe?p=3"][0] == "left"
    for url in (f"{BASE}/p/newer", f"{BASE}/archive/page/4", f"{BASE}/news?offset=20"):
        assert got[url][0] == "left" and "pagination" in got[url][1], url
    page_without_pager_class = body(
        "<main><ul>" + "".join(f"<li><a href='/p/b{i}'>A long enough headline number {i}</a></li>" for i in range(3))
        + "</ul><a href='/p/c9'>Next</a><a href='/p/c8'>2</a></main>"
    )
    got = decisions(page_without_pager_class)
    assert got[f"{BASE}/p/c9"][0] == "next page"
    assert got[f"{BASE}/p/c8"] == ("left", "pagination (link text '2')")


def test_jsonld_item_list_and_collection_page_but_not_breadcrumbs():
    item_list = {"@type": "ItemList", "itemListElement": [
        {"@type": "ListItem", "position": 1, "url": "/p/one"},
        {"@type": "ListItem", "position": 2, "item": {"@id": f"{BASE}/p/two", "name": "Two"}},
        {"@type": "ListItem", "position": 3, "item": f"{BASE}/tag/5g"},
    ]}
    collection = {"@type": "CollectionPage", "hasPart": [{"@type": "BlogPosting", "url": f"{BASE}/p/three"}],
                  "mainEntity": {"@type": "Person", "url": f"{BASE}/author/jane-doe"}}
    crumbs = {"@type": "BreadcrumbList", "itemListElement": [{"@type": "ListItem", "item": f"{BASE}/p/crumb"}]}
    scripts = "".join(f'<script type="application/ld+json">{json.dumps(d)}</script>' for d in (item_list, collection,
                                                                                             crumbs))
    page = f"<html><head>{scripts}</head><body><a href='/p/two'>Two</a><div id='app'></div></body></html>"
    from bs4 import BeautifulSoup

    assert listed_urls(jsonld_objects(BeautifulSoup(page, "html.parser"))) == [
        "/p/one", f"{BASE}/p/two", f"{BASE}/tag/5g", f"{BASE}/p/three"]
    listing = parse_listing(page, PAGE, GENERIC)
    assert listing.links == [f"{BASE}/p/two", f"{BASE}/p/one", f"{BASE}/p/three"]
    got = decisions(page)
    assert got[f"{BASE}/tag/5g"] == ("left", "tag page (/tag/) (listed in JSON-LD)")
    assert f"{BASE}/p/crumb" not in got
    assert [d.in_jsonld_only for d in listing.decisions] == [False, True, True, True]


def test_a_profiles_patterns_come_first():
    lr = load_profile("lightreading")
    page = (
        "<html><body><main><div class='ListPreview'>"
        "<a href='/5g/ericsson-swings-the-axe-again'>Ericsson swings the axe again</a>"
        "<a href='/a/9Qk'>An opaque link with a perfectly good headline</a>"
        "<a href='/author/iain-morris'>Iain Morris</a></div></main>"
        "<div class='Footer'><a href='/5g/outside-the-listing-scope'>A link outside the scope</a></div></body></html>"
    )
    got = decisions(page, lr, "https://www.lightreading.com/author/iain-morris")
    base = "https://www.lightreading.com"
    assert got[f"{base}/5g/ericsson-swings-the-axe-again"] == ("taken", "matches the profile's article_patterns")
    assert got[f"{base}/a/9Qk"] == ("left", "does not match the profile's article_patterns")
    assert got[f"{base}/author/iain-morris"][0] == "left"
    assert got[f"{base}/5g/outside-the-listing-scope"] == ("left", "outside the profile's listing_scope")
    assert parse_listing(page, f"{base}/author/iain-morris", lr).links == [f"{base}/5g/ericsson-swings-the-axe-again"]


def test_feeds_linked_from_the_listing_are_read_but_not_the_site_feed_in_the_footer():
    page = body("<main><a href='/author/jane-doe/feed' type='application/rss+xml'>RSS for Jane</a></main>"
                "<footer><a href='/feed.xml'>RSS</a></footer>")
    listing = parse_listing(page, PAGE, GENERIC)
    assert listing.feeds == [f"{BASE}/author/jane-doe/feed"]
    got = decisions(page)
    assert got[f"{BASE}/feed.xml"][0] == "left" and "site footer" in got[f"{BASE}/feed.xml"][1]
    no_feeds = dataclasses.replace(GENERIC, discover_feeds=False)
    assert parse_listing(page, PAGE, no_feeds).feeds == []


def test_card_headers_are_not_the_site_header_and_big_wrappers_are_not_sidebars():
    cards = "".join(f"<article><header><h2><a href='/p/{c}'>Short</a></h2></header></article>" for c in "abc")
    page = body(f"<header><a href='/p/logo-link'>The Telecom Times of London</a></header>"
                f"<div class='content has-sidebar'>{cards}<div class='sidebar'><a href='/p/side'>A sidebar story "
                "about a vendor</a></div></div>")
    got = decisions(page)
    assert all(got[f"{BASE}/p/{c}"][0] == "taken" for c in "abc")
    assert got[f"{BASE}/p/logo-link"] == ("left", "site header")
    assert got[f"{BASE}/p/side"][0] == "left" and "sidebar" in got[f"{BASE}/p/side"][1]


def test_the_old_slug_rule_still_takes_links_anywhere_in_the_content():
    page = body("<div><a href='/blog/another-grim-quarter'>Grim</a> <a href='/2024/03/doom'>Doom</a></div>")
    assert parse_listing(page, PAGE, GENERIC).links == [f"{BASE}/blog/another-grim-quarter", f"{BASE}/2024/03/doom"]


def test_sitemap_entries_and_canonicals_may_be_opaque_but_not_furniture():
    assert GENERIC.may_be_article(f"{BASE}/p/x7f2") and GENERIC.may_be_article(f"{BASE}/article?id=3")
    for not_article in ("/", "/tag/5g", ARCHIVE, "/login", "/about"):
        assert not GENERIC.may_be_article(BASE + not_article), not_article
    assert not GENERIC.may_be_article("https://elsewhere.test/p/x7f2")
    lr = load_profile("lightreading")
    assert not lr.may_be_article("https://www.lightreading.com/a/9Qk")


def test_og_url_is_the_canonical_when_there_is_no_canonical_link():
    page = article_html("Doom", layout="jsonld").replace(
        "<title>", f'<meta property="og:url" content="{BASE}/p/x7f2"><title>')
    assert extract_article(page, f"{BASE}/p/x7f2?ref=home", GENERIC).canonical == f"{BASE}/p/x7f2"


def test_explain_lines_give_every_link_a_verdict_and_a_reason():
    items = [("/p/a1", "Ericsson swings the axe again as sales slump"), ("/p/b2", "Nokia's dream turns to dust")]
    listing = parse_listing(archive_html(items, pages=[ARCHIVE], page=1, sidebar=("/p/s", "Popular")), PAGE, GENERIC)
    lines = explain_listing(listing, PAGE)
    assert lines[0] == f"{PAGE}: {len(listing.decisions)} links, 2 taken as article links"
    assert len(lines) == 1 + len(listing.decisions)
    for line, decision in zip(lines[1:], listing.decisions, strict=True):
        assert re.match(rf"  {re.escape(decision.verdict)} +\S", line) and line.endswith(decision.reason)
    assert any(line.split()[:2] == ["taken", "/p/a1"] for line in lines)
    nothing = parse_listing(body("<nav><a href='/news'>News</a></nav>"), PAGE, GENERIC)
    assert "no link here looks like an article" in explain_listing(nothing, PAGE)[-1]
