"""The fetcher against a local server: politeness, retries, caps, redirects and the page cache."""

from __future__ import annotations

import time

import pytest
from test_scrape_support import Reply, serve_site

from morris_mlx.scrape.cache import PageCache
from morris_mlx.scrape.fetch import USER_AGENT, Fetcher, FetchError, FetchSettings, PageCapReached


@pytest.fixture()
def site():
    with serve_site() as s:
        yield s


def make_fetcher(site, tmp_path=None, **kw) -> Fetcher:
    settings = FetchSettings(allowed_hosts=(site.host,), **{"delay": 0.0, "timeout": 0.3, "retries": 2,
                                                              "backoff": 0.0, **kw})
    return Fetcher(settings, PageCache(tmp_path / "cache") if tmp_path else None)


def test_user_agent_names_the_tool_and_robots_is_read_once(site):
    site.add("/a", "<p>a</p>")
    site.add("/b", "<p>b</p>")
    fetcher = make_fetcher(site)
    assert fetcher.fetch(site.url("/a")).content == b"<p>a</p>"
    fetcher.fetch(site.url("/b"))
    assert site.hits("/robots.txt") == 1
    agents = {headers.get("User-Agent") for _, headers in site.requests}
    assert agents == {USER_AGENT} and USER_AGENT.startswith("morris_mlx/")
    assert "(+https://github.com/morris-mlx)" in USER_AGENT


def test_robots_disallow_skips_without_requesting(site):
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add("/private/x", "secret")
    with pytest.raises(FetchError) as err:
        make_fetcher(site).fetch(site.url("/private/x"))
    assert err.value.skipped and err.value.reason == "robots.txt disallows"
    assert site.hits("/private/x") == 0


def test_robots_agent_specific_group_and_unreachable_robots(site):
    site.add("/robots.txt", "User-agent: morris_mlx\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
             content_type="text/plain")
    with pytest.raises(FetchError, match="robots.txt disallows"):
        make_fetcher(site).fetch(site.url("/anything"))
    site.add("/robots.txt", Reply(status=503, body=b"down"))
    with pytest.raises(FetchError, match="robots.txt unreachable") as err:
        make_fetcher(site, retries=0).fetch(site.url("/anything"))
    assert err.value.skipped


def test_404_is_a_failure_not_retried(site):
    with pytest.raises(FetchError) as err:
        make_fetcher(site).fetch(site.url("/missing"))
    assert err.value.reason == "HTTP 404" and not err.value.skipped
    assert site.hits("/missing") == 1


def test_429_waits_for_retry_after_then_succeeds(site):
    site.add("/busy", Reply(status=429, headers={"Retry-After": "1"}), Reply(body=b"ok"))
    start = time.monotonic()
    page = make_fetcher(site).fetch(site.url("/busy"))
    assert page.content == b"ok" and site.hits("/busy") == 2
    assert time.monotonic() - start >= 0.9


def test_429_asking_for_too_long_a_wait_gives_up_at_once(site):
    site.add("/busy", Reply(status=429, headers={"Retry-After": "3600"}))
    start = time.monotonic()
    with pytest.raises(FetchError, match="asks to wait 3600 s"):
        make_fetcher(site, max_retry_after=5).fetch(site.url("/busy"))
    assert time.monotonic() - start < 2 and site.hits("/busy") == 1


def test_malformed_retry_after_falls_back_to_backoff(site):
    site.add("/busy", Reply(status=503, headers={"Retry-After": "soon-ish"}), Reply(body=b"ok"))
    assert make_fetcher(site).fetch(site.url("/busy")).content == b"ok"


def test_500_then_success_and_persistent_500(site):
    site.add("/flaky", Reply(status=500), Reply(status=502), Reply(body=b"fine"))
    assert make_fetcher(site).fetch(site.url("/flaky")).content == b"fine"
    assert site.hits("/flaky") == 3
    site.add("/down", Reply(status=500))
    with pytest.raises(FetchError, match="HTTP 500") as err:
        make_fetcher(site).fetch(site.url("/down"))
    assert not err.value.skipped and site.hits("/down") == 3  # one try and two retries


def test_slow_response_times_out_after_retries(site):
    site.add("/slow", Reply(body=b"late", delay=6.0))
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        make_fetcher(site, timeout=0.2, retries=1).fetch(site.url("/slow"))
    # Two tries of 0.2 s; waiting for the reply even once would take 6 s. The margin is for a busy machine.
    assert time.monotonic() - start < 5.0
    assert site.hits("/slow") == 2


def test_redirects_are_followed_on_the_host_and_refused_off_it(site):
    with serve_site() as other:
        site.add("/old", Reply(status=301, headers={"Location": "/new"}))
        site.add("/new", "<p>new</p>")
        site.add("/away", Reply(status=302, headers={"Location": other.url("/elsewhere")}))
        site.add("/scheme", Reply(status=302, headers={"Location": "ftp://example.com/x"}))
        other.add("/elsewhere", "<p>elsewhere</p>")
        fetcher = make_fetcher(site)
        page = fetcher.fetch(site.url("/old"))
        assert page.final_url == site.url("/new") and page.url == site.url("/old")
        with pytest.raises(FetchError, match="redirect to another host") as err:
            fetcher.fetch(site.url("/away"))
        assert err.value.skipped and other.requests == []
        with pytest.raises(FetchError, match="non-http"):
            fetcher.fetch(site.url("/scheme"))


def test_redirect_loop_ends(site):
    site.add("/loop", Reply(status=302, headers={"Location": "/loop"}))
    with pytest.raises(FetchError, match="too many redirects"):
        make_fetcher(site).fetch(site.url("/loop"))


def test_huge_pages_are_refused_by_length_or_while_streaming(site):
    site.add("/huge", Reply(body=b"x" * 300_000))
    site.add("/huge-stream", Reply(body=b"<p>" + b"y" * 300_000, length=False))
    fetcher = make_fetcher(site, max_bytes=100_000)
    for path in ("/huge", "/huge-stream"):
        with pytest.raises(FetchError, match="page too large") as err:
            fetcher.fetch(site.url(path))
        assert err.value.skipped
    assert fetcher.bytes_fetched <= 200_000


def test_only_http_and_allowed_hosts_and_web_pages(site):
    fetcher = make_fetcher(site)
    with pytest.raises(FetchError, match="not an http"):
        fetcher.fetch("file:///etc/passwd")
    with pytest.raises(FetchError, match="host not allowed"):
        fetcher.fetch("http://example.com/x")
    site.add("/pic", Reply(body=b"\x89PNG", content_type="image/png"))
    with pytest.raises(FetchError, match="not a web page"):
        fetcher.fetch(site.url("/pic"))


def test_page_cap(site):
    site.add("/a", "a")
    fetcher = make_fetcher(site, max_pages=1)
    fetcher.fetch(site.url("/a"), use_cache=False)
    with pytest.raises(PageCapReached):
        fetcher.fetch(site.url("/a"), use_cache=False)


def test_cache_serves_repeat_fetches_and_survives_corruption(site, tmp_path):
    site.add("/a", "<p>cached</p>")
    fetcher = make_fetcher(site, tmp_path)
    first = fetcher.fetch(site.url("/a"))
    second = make_fetcher(site, tmp_path).fetch(site.url("/a"))
    assert second.from_cache and second.content == first.content and second.fetched_at == first.fetched_at
    assert site.hits("/a") == 1
    for body in (tmp_path / "cache").rglob("*.body"):
        body.write_bytes(b"torn")
    third = make_fetcher(site, tmp_path).fetch(site.url("/a"))
    assert not third.from_cache and site.hits("/a") == 2


def test_delay_between_requests_and_crawl_delay(site):
    site.add("/robots.txt", "User-agent: *\nCrawl-delay: 5\n", content_type="text/plain")
    site.add("/a", "a")
    clock = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    settings = FetchSettings(allowed_hosts=(site.host,), delay=1.5, timeout=1, retries=0)
    fetcher = Fetcher(settings, None, sleep=sleep, monotonic=lambda: clock[0])
    fetcher.fetch(site.url("/a"))
    fetcher.fetch(site.url("/a"))
    # first wait: the 1-2 s delay after robots.txt; second: robots.txt's Crawl-delay, which is longer
    assert 1.0 <= waits[0] <= 2.0 and waits[1] == pytest.approx(5.0)


def test_a_final_429_books_its_retry_after_before_the_next_request(site):
    site.add("/busy", Reply(status=429, headers={"Retry-After": "30"}))
    site.add("/calm", "calm")
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    settings = FetchSettings(allowed_hosts=(site.host,), delay=0.0, timeout=1, retries=0)
    fetcher = Fetcher(settings, None, sleep=sleep, monotonic=lambda: clock[0])
    with pytest.raises(FetchError, match="HTTP 429: asks to wait 30 s"):
        fetcher.fetch(site.url("/busy"))
    fetcher.fetch(site.url("/calm"))
    assert waits == [pytest.approx(30.0)]
