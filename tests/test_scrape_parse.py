"""Parsing is pure: article extraction, listings, feeds, bylines, dates and URLs on strings and bytes."""

from __future__ import annotations

import gzip
import json

import pytest
from test_scrape_support import article_html, listing_html, prose, rss_xml

from morris_mlx.scrape.byline import author_matches, clean_byline
from morris_mlx.scrape.dates import normalize_date, parse_since
from morris_mlx.scrape.discover import parse_listing
from morris_mlx.scrape.extract import extract_article
from morris_mlx.scrape.feeds import FeedError, parse_feed, parse_sitemap
from morris_mlx.scrape.profile import Profile, Selectors
from morris_mlx.scrape.urls import author_from_url, looks_like_article_url, normalize_url

HOST = "news.test"
BASE = f"https://{HOST}"
PROFILE = Profile(
    name="t",
    author="Iain Morris",
    hosts=(HOST,),
    min_words=60,
    selectors=Selectors(title="h1.headline", standfirst="p.deck", byline=".byline-name",
                        published="time[datetime]", body=".story-body"),
)
GENERIC = Profile(name="generic", hosts=(HOST,), min_words=60)


def test_profile_selectors_give_every_field_and_drop_boilerplate():
    page = article_html("Doom at the telco", standfirst="Things are grim.")
    art = extract_article(page.encode(), f"{BASE}/news/doom", PROFILE)
    assert art.method == "selectors"
    assert art.title == "Doom at the telco"
    assert art.standfirst == "Things are grim."
    assert art.byline == "Iain Morris"
    assert art.published == "2024-03-05T09:30:00+00:00"
    paras = art.body.split("\n\n")
    assert paras == prose("Doom at the telco")
    for junk in ("Share on", "newsletter", "mast at dusk", "Related", "Source: Alamy", "tracking"):
        assert junk not in art.body


def test_jsonld_only_page_is_extracted_from_article_body():
    page = article_html("Only JSON-LD", layout="jsonld")
    art = extract_article(page, f"{BASE}/news/only", GENERIC)
    assert art.method == "json-ld"
    assert art.title == "Only JSON-LD" and art.byline == "Iain Morris"
    assert art.published == "2024-03-05T09:30:00+00:00"
    assert art.body.split("\n\n") == prose("Only JSON-LD")


def test_jsonld_graph_with_author_list_and_sloppy_json():
    body = " ".join(prose("graph"))
    sloppy = (
        '{"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, {"@type": ["NewsArticle"],'
        ' "headline": "Graph", "author": [{"@type": "Person", "name": "Kelsey Ziser"}, "Iain Morris"],'
        f' "articleBody": "{body}",}}]}}'
    )
    page = f'<html><head><script type="application/ld+json">{sloppy}</script></head><body></body></html>'
    art = extract_article(page, f"{BASE}/news/graph", GENERIC)
    assert art.method == "json-ld" and art.title == "Graph"
    assert art.byline == "Kelsey Ziser, Iain Morris"
    assert author_matches("Iain Morris", art.byline)


def test_article_tag_and_largest_block_fallbacks():
    art = extract_article(article_html("In an article", layout="article"), f"{BASE}/news/a", GENERIC)
    assert art.method == "article" and art.byline == "Iain Morris"
    assert art.body.split("\n\n") == prose("In an article")
    plain = extract_article(article_html("Plain divs", layout="plain"), f"{BASE}/news/b", GENERIC)
    assert plain.method == "largest-block" and plain.byline == "Iain Morris"
    assert plain.body.split("\n\n") == prose("Plain divs")
    assert plain.title == "Plain divs"  # from <title>, site name cut off


def test_page_without_enough_text_has_no_body():
    art = extract_article("<html><body><p>Too short.</p></body></html>", f"{BASE}/x", GENERIC)
    assert art.method is None and art.body == ""


def test_paragraph_breaks_from_br_and_lists_are_kept():
    words = " ".join(["word"] * 70)
    page = f"<html><body><div class='c'>First line {words}<br><br>Second para<br>same para<ul><li>item</li></ul></div>"
    art = extract_article(page, f"{BASE}/x", GENERIC)
    assert art.body.split("\n\n") == [f"First line {words}", "Second para\nsame para", "- item"]


def test_non_utf8_bytes_decode_from_header_or_meta_charset():
    text = prose("Café £5bn")
    page = article_html("Café costs £5bn", paragraphs=text, charset=None).encode("cp1252")
    art = extract_article(page, f"{BASE}/x", PROFILE, encoding="windows-1252")
    assert art.title == "Café costs £5bn" and "£5bn" in art.body
    with_meta = article_html("Café costs £5bn", paragraphs=text, charset="iso-8859-1").encode("latin-1")
    assert extract_article(with_meta, f"{BASE}/x", PROFILE).title == "Café costs £5bn"


def test_malformed_and_deeply_nested_html_does_not_crash():
    broken = (
        "<html><head><title>Broken</title><body><div class='story-body'><p>"
        + "</p><p>".join(prose("broken"))
        + "</div></span></b><p>unclosed <b>bold <i>italic</div></html><<>>"
    )
    art = extract_article(broken, f"{BASE}/x", PROFILE)
    assert art.method is not None and "broken paragraph 3" in art.body
    deep = "<html><body>" + "<div>" * 5000 + " ".join(["deep"] * 100) + "</body></html>"
    assert extract_article(deep, f"{BASE}/x", GENERIC).words >= 100


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("By Iain Morris, International Editor", "Iain Morris"),
        ("Iain Morris and Kelsey Ziser", "Iain Morris, Kelsey Ziser"),
        ("  by IAIN MORRIS | Follow @iainmorris ", "IAIN MORRIS"),
    ],
)
def test_clean_byline(raw, clean):
    assert clean_byline(raw) == clean


def test_author_matching_is_by_whole_words():
    assert author_matches("Iain Morris", "By Iain Morris, International Editor")
    assert author_matches("Iain Morris", "iáin morris")
    assert not author_matches("Iain Morris", "Iain Morrison")
    assert not author_matches("Iain Morris", "Mike Dano")
    assert not author_matches("", "Iain Morris")


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2024-03-05T09:30:00Z", "2024-03-05T09:30:00+00:00"),
        ("2024-03-05", "2024-03-05"),
        ("Tue, 05 Mar 2024 09:30:00 GMT", "2024-03-05T09:30:00+00:00"),
        ("March 5, 2024", "2024-03-05"),
        ("Published 5 Mar 2024", "2024-03-05"),
        ("Sept. 5, 2024", "2024-09-05"),
        ("soon", None),
        (None, None),
    ],
)
def test_normalize_date(raw, iso):
    assert normalize_date(raw) == iso


def test_parse_since():
    assert parse_since("2024-01-31").isoformat() == "2024-01-31"
    with pytest.raises(ValueError):
        parse_since("last tuesday")


def test_listing_links_next_page_and_feed_ignore_sidebars_and_other_hosts():
    page = listing_html(
        ["/news/first-story-here", "/news/second-story-here?utm_source=x", "https://elsewhere.test/news/x-y-z",
         "/author/iain-morris", "/news/first-story-here#comments"],
        next_url="/author/iain-morris?page=2",
        sidebar=["/news/popular-story-by-someone-else"],
        feed="/author/iain-morris/feed",
    )
    listing = parse_listing(page, f"{BASE}/author/iain-morris", GENERIC)
    assert listing.links == [f"{BASE}/news/first-story-here", f"{BASE}/news/second-story-here"]
    assert listing.next_url == f"{BASE}/author/iain-morris?page=2"
    assert listing.feeds == [f"{BASE}/author/iain-morris/feed"]


def test_listing_next_found_by_link_text_and_class():
    by_text = '<html><body><a href="/p/2">Older posts</a></body></html>'
    assert parse_listing(by_text, f"{BASE}/p/1", GENERIC).next_url == f"{BASE}/p/2"
    by_class = '<html><body><a class="pagination-next" href="/p/3">›</a></body></html>'
    assert parse_listing(by_class, f"{BASE}/p/2", GENERIC).next_url == f"{BASE}/p/3"


def test_rss_and_atom_feeds():
    rss = rss_xml([(f"{BASE}/news/a-b-c", "Iain Morris", "Tue, 05 Mar 2024 09:30:00 GMT"),
                   (f"{BASE}/news/d-e-f", None, "not a date")])
    feed = parse_feed(rss.encode(), BASE)
    assert [(e.url, e.author, e.published) for e in feed.entries] == [
        (f"{BASE}/news/a-b-c", "Iain Morris", "2024-03-05T09:30:00+00:00"),
        (f"{BASE}/news/d-e-f", None, None),
    ]
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><link rel="next" href="/feed?page=2"/>'
        '<entry><title>A</title><link href="/news/x-y-z"/><published>2024-01-02T00:00:00Z</published>'
        "<author><name>Iain Morris</name></author></entry></feed>"
    )
    parsed = parse_feed(atom.encode(), f"{BASE}/feed")
    assert parsed.entries[0].url == f"{BASE}/news/x-y-z" and parsed.entries[0].author == "Iain Morris"
    assert parsed.next_url == f"{BASE}/feed?page=2"
    with pytest.raises(FeedError):
        parse_feed(b"<html><body>not a feed</body></html>", BASE)
    with pytest.raises(FeedError):
        parse_feed(b"<rss><channel><item>", BASE)


def test_sitemap_index_urlset_and_gzip():
    index = f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap><loc>{BASE}/s1.xml</loc>" \
            "</sitemap></sitemapindex>"
    assert parse_sitemap(index.encode(), BASE).sitemaps == [f"{BASE}/s1.xml"]
    urlset = f"<urlset><url><loc>{BASE}/news/a-b-c</loc><lastmod>2023-12-31</lastmod></url></urlset>"
    parsed = parse_sitemap(gzip.compress(urlset.encode()), BASE)
    assert [(e.url, e.published) for e in parsed.entries] == [(f"{BASE}/news/a-b-c", "2023-12-31")]
    bomb = gzip.compress(b"<urlset>" + b" " * 2_000_000 + b"</urlset>")
    with pytest.raises(FeedError, match="larger than"):
        parse_sitemap(bomb, BASE, max_bytes=100_000)


def test_url_helpers():
    assert normalize_url("HTTP://News.Test:80/a/b?utm_source=x&id=3#frag") == "http://news.test/a/b?id=3"
    assert normalize_url("/x", base="https://news.test/a/") == "https://news.test/x"
    assert normalize_url("mailto:someone@news.test") is None
    assert normalize_url("javascript:void(0)") is None
    assert looks_like_article_url(f"{BASE}/5g/ericsson-cuts-more-jobs")
    assert looks_like_article_url(f"{BASE}/2024/03/05/story")
    assert not looks_like_article_url(f"{BASE}/tag/open-ran-news")
    assert not looks_like_article_url(f"{BASE}/images/a-b-c.jpg")
    assert author_from_url(f"{BASE}/author/iain-morris/") == "Iain Morris"
    assert author_from_url(f"{BASE}/author/jdoe") is None
    assert author_from_url(f"{BASE}/news/a-b") is None


def test_jsonld_body_with_html_markup():
    body = "".join(f"<p>{p}</p>" for p in prose("markup"))
    data = {"@type": "NewsArticle", "headline": "M", "articleBody": body}
    page = f"<html><head><script type='application/ld+json'>{json.dumps(data)}</script></head></html>"
    assert extract_article(page, BASE, GENERIC).body.split("\n\n") == prose("markup")


def test_a_teasers_byline_in_a_related_box_is_not_the_articles():
    body = "".join(f"<p>{p}</p>" for p in prose("teaser"))
    teaser = '<div class="related-stories"><p class="byline">By Iain Morris</p><a href="/x">x</a></div>'
    page = f"<html><body><article>{body}</article>{teaser}<aside><span class='author'>Iain Morris</span></aside>"
    assert extract_article(page, BASE, GENERIC).byline is None
    signed = page.replace("<article>", "<article><p class='byline'>By Mike Dano</p>")
    assert extract_article(signed, BASE, GENERIC).byline == "Mike Dano"


def test_lightreading_profile_on_a_page_shaped_like_its_template():
    from morris_mlx.scrape.profile import load_profile

    lr = load_profile("lightreading")
    paras = "".join(f'<p class="ContentParagraph">{p}</p>' for p in prose("lr"))
    page = (
        '<html><head><link rel="canonical" href="https://www.lightreading.com/5g/doom-looms-for-vendors"></head>'
        '<body><header><nav><a href="/5g">5G</a></nav></header><main><div class="ArticleBase">'
        '<h1 class="ArticleBase-HeaderTitle">Doom looms for vendors</h1>'
        '<p class="ArticleBase-HeaderSummary">Things could get worse.</p>'
        '<div class="Contributors"><a class="Contributors-ContributorName" href="/author/iain-morris">Iain Morris'
        '</a><span>International Editor</span><p class="Contributors-Date">March 5, 2024</p></div>'
        f'<div class="ArticleBase-BodyContent">{paras}<p>(Source: Alamy Stock Photo)</p>'
        '<p>Related posts:</p><div class="SocialShare"><a>Share</a></div></div></div></main></body></html>'
    )
    art = extract_article(page.encode(), "https://www.lightreading.com/5g/doom-looms-for-vendors", lr)
    assert (art.method, art.title, art.standfirst, art.byline, art.published) == (
        "selectors", "Doom looms for vendors", "Things could get worse.", "Iain Morris", "2024-03-05")
    assert art.body.split("\n\n") == prose("lr")
    assert art.canonical == "https://www.lightreading.com/5g/doom-looms-for-vendors"
