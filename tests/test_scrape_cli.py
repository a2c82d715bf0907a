"""`morris scrape` from the command line: help, bad input as one line with exit 2, a real run, profiles."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_scrape_support import article_html, listing_html, serve_site, write_profile

from morris_mlx.cli import main
from morris_mlx.errors import MorrisError
from morris_mlx.scrape.profile import load_profile, resolve_profile


@pytest.fixture()
def site():
    with serve_site() as s:
        yield s


def cli(*args: str) -> int:
    try:
        return main(["scrape", *args])
    except SystemExit as exc:  # argparse's own exits (--help, bad flag values)
        return int(exc.code or 0)


def test_help_has_an_example(capsys):
    assert cli("--help") == 0
    out = capsys.readouterr().out
    assert "example" in out and "morris scrape --max-articles" in out and "--author-url" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--max-articles", "0"],
        ["--delay", "-1"],
        ["--timeout", "0"],
        ["--bogus"],
        ["--since", "last tuesday"],
        ["--profile", "no-such-site"],
        ["--profile", "missing/profile.toml"],
        ["--author-url", "ftp://example.com/author/x"],
        ["--author", "  "],
        ["-c", "missing-config.toml"],
    ],
)
def test_bad_input_exits_2_with_one_line(args, capsys):
    assert cli(*args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]


def test_bad_out_config_and_profile_files_exit_2(tmp_path, capsys):
    assert cli("--out", str(tmp_path)) == 2
    config = tmp_path / "c.toml"
    config.write_text('[scrape]\nmax_articles = "many"\n')
    assert cli("-c", str(config)) == 2
    for body in ('name = "x"\nhosts = ["a.test"]\n[discovery]\narticle_patterns = ["("]\n',
                 'name = "x"\ncolour = "blue"\n',
                 'name = "x"\n[selectors]\nbody = "div[["\n',
                 'name = "x"\nhosts = ["a.test"]\n[discovery]\nlistings = ["https://b.test/author/x"]\n',
                 "not = [toml\n"):
        profile = tmp_path / "p.toml"
        profile.write_text(body)
        assert cli("--profile", str(profile)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 7 and all(line.startswith("morris scrape: error:") for line in errors)
    assert "is a folder" in errors[0] and "must be an integer" in errors[1]
    assert "not a valid regex" in errors[2] and "unknown key" in errors[3] and "not valid CSS" in errors[4]
    assert "not on one of the profile's hosts" in errors[5] and "not valid TOML" in errors[6]


def test_bad_input_in_a_real_process_prints_one_line():
    result = subprocess.run([sys.executable, "-m", "morris_mlx", "scrape", "--since", "2024-13-45"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--since" in result.stderr


def test_a_cli_run_writes_articles_summary_and_config(site, tmp_path, capsys):
    for slug in ("first-story-here", "second-story-here", "third-story-here"):
        site.add(f"/news/{slug}", article_html(slug))
    site.add("/news/other-story-here", article_html("other", author="Mike Dano"))
    site.add("/author/iain-morris", listing_html(["/news/first-story-here", "/news/other-story-here",
                                                  "/news/second-story-here", "/news/third-story-here"]))
    profile = write_profile(tmp_path, site)
    config = tmp_path / "scrape.toml"
    config.write_text("[scrape]\nmax_articles = 1\ndelay = 0.0\ntimeout = 2.0\n")
    out = tmp_path / "raw" / "articles.jsonl"
    rc = cli("-c", str(config), "--profile", str(profile), "--out", str(out), "--max-articles", "2",
             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0
    lines = out.read_text().splitlines()
    assert [json.loads(line)["title"] for line in lines] == ["first-story-here", "second-story-here"]
    printed = capsys.readouterr().out
    assert "scrape summary" in printed and "1 × other author" in printed
    stored = json.loads((out.parent / "articles.jsonl.config.json").read_text())
    assert stored["scrape"]["max_articles"] == 2 and stored["scrape"]["delay"] == 0.0  # CLI > file > defaults
    assert stored["_meta"]["summary"]["written"] == 2 and stored["_meta"]["author"] == "Iain Morris"


def test_author_flag_picks_another_writer(site, tmp_path):
    site.add("/news/mine-story-here", article_html("mine"))
    site.add("/news/theirs-story-here", article_html("theirs", author="Mike Dano"))
    site.add("/author/iain-morris", listing_html(["/news/mine-story-here", "/news/theirs-story-here"]))
    out = tmp_path / "dano.jsonl"
    assert cli("--profile", str(write_profile(tmp_path, site)), "--author", "Mike Dano", "--out", str(out),
               "--delay", "0", "--cache-dir", str(tmp_path / "cache"), "--no-progress") == 0
    assert [json.loads(line)["title"] for line in out.read_text().splitlines()] == ["theirs"]


def test_nothing_reachable_exits_1(site, tmp_path, capsys):
    out = tmp_path / "none.jsonl"
    assert cli("--profile", str(write_profile(tmp_path, site)), "--out", str(out), "--delay", "0",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress") == 1
    assert "listing: HTTP 404" in capsys.readouterr().out


def test_lightreading_profile_is_the_default_and_valid():
    profile = load_profile("lightreading")
    assert profile.author == "Iain Morris" and "www.lightreading.com" in profile.hosts
    assert profile.listings[0] == "https://www.lightreading.com/author/iain-morris"
    assert profile.is_article_url("https://www.lightreading.com/5g/ericsson-swings-the-axe-again")
    assert profile.is_article_url("https://www.lightreading.com/open-ran/the-open-ran-dream-dies/d/d-id/781234")
    for not_article in ("https://www.lightreading.com/author/iain-morris",
                        "https://www.lightreading.com/keyword/morris-lore",
                        "https://www.lightreading.com/5g",
                        "https://www.darkreading.com/5g/some-story",
                        "https://www.lightreading.com/5g/story-here?page=2"):
        assert not profile.is_article_url(not_article), not_article


def test_author_url_on_a_profile_host_keeps_its_selectors():
    profile = resolve_profile("lightreading", "https://www.lightreading.com/author/mike-dano", None)
    assert profile.name == "lightreading" and profile.author == "Mike Dano"
    assert profile.hosts == ("www.lightreading.com",) and profile.selectors.body
    column = resolve_profile("lightreading", "https://www.lightreading.com/keyword/morris-lore", None)
    assert column.author == "Iain Morris"
    with pytest.raises(MorrisError, match="not an http"):
        resolve_profile("lightreading", "not a url", None)
