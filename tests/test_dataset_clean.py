"""Cleaning and de-duplication rules of `morris prepare`, one test per rule."""

from __future__ import annotations

import unicodedata

import pytest

from morris_mlx.dataset.article import Article
from morris_mlx.dataset.clean import clean_article, clean_paragraphs, line_reason, normalize, normalize_line
from morris_mlx.dataset.dedupe import dedupe, jaccard, shingles

PROSE = (
    "Like a ship sinking in slow motion, the operator has bet the balance sheet on network slicing. "
    "Its chief executive calls it the future. Investors call it something else, usually after lunch. "
    "The numbers are grim: capex up a fifth, revenue flat, and customers who cannot name a single "
    "slice they would pay for. What could possibly go wrong?"
)
OTHER_PROSE = (
    "The council's parking app went live in the autumn with the usual fanfare. Sensors in four thousand "
    "bays would report which were free, drivers would be guided to them, and congestion would fall by a "
    "quarter. Instead the sensors mistook puddles for cars, the helpline charged by the minute, and the "
    "pensioners of Brackenford learnt to circle the block and swear."
)


def article(
    text: str,
    *,
    id: str = "a1",
    title: str = "Slicing is dead",
    standfirst: str = "It never lived.",
    author: str = "",
    kind: str = "telecom",
) -> Article:
    return Article(
        id=id,
        title=title,
        standfirst=standfirst,
        topic="network slicing",
        kind=kind,
        published="2024-01-01",
        text=text,
        origin=f"test:{id}",
        author=author,
    )


def test_normalize_nfc_invisible_and_whitespace():
    decomposed = "Cafe\u0301\u00a0society\u200b and\tits  discontents\r\nnext\u2028line"
    out = normalize(decomposed)
    assert out == "Café society and its discontents\nnext\nline"
    assert unicodedata.is_normalized("NFC", out)
    assert normalize_line("  # The   headline\n") == "The headline"


def test_paragraphs_kept_and_hard_wraps_joined():
    text = "First line of a paragraph\nwrapped here.\n\n\n\nSecond paragraph.\n\n## A subhead\nand its text."
    paragraphs, removed = clean_paragraphs(text)
    assert paragraphs == [
        "First line of a paragraph wrapped here.",
        "Second paragraph.",
        "## A subhead\nand its text.",
    ]
    assert not removed


def test_one_paragraph_per_line_when_there_are_no_blank_lines():
    paragraphs, _ = clean_paragraphs("One sentence here.\nAnother paragraph there.\nA third one.")
    assert paragraphs == ["One sentence here.", "Another paragraph there.", "A third one."]


@pytest.mark.parametrize(
    "line",
    [
        "Related: Why 5G failed",
        "Read more",
        "Advertisement",
        "Share this article",
        "Subscribe to our newsletter",
        "Click here to download the report",
        "Copyright © 2024 Informa",
        "(Source: Ericsson)",
        "Want to know more about 5G? Check out our dedicated 5G content channel here.",
        "Published: 12 May 2024",
        "12/3/2024 | 8:00 AM",
        "Tags: 5G, open RAN",
        "All rights reserved.",
    ],
)
def test_boilerplate_lines(line):
    assert line_reason(line) == "boilerplate"


@pytest.mark.parametrize(
    "line",
    [
        "By Iain Morris",
        "— Iain Morris, International Editor, Light Reading",
        "Iain Morris, International Editor, Light Reading",
        "Written by Jane Smith | Light Reading",
    ],
)
def test_byline_lines(line):
    assert line_reason(line, author="Iain Morris") == "byline"


@pytest.mark.parametrize(
    "line",
    [
        "More on that later.",
        "By the way, it failed.",
        "Related problems abound.",
        "Vodafone, meanwhile, is doing fine.",
        "Read more carefully and the rot in every balance sheet the operator "
        "has published since 2019 becomes plain to anyone with a calculator and a strong stomach.",
    ],
)
def test_prose_is_not_furniture(line):
    assert line_reason(line, author="Iain Morris") is None


def test_clean_article_removes_furniture_and_counts_it():
    text = (
        "Slicing is dead\n\nBy Iain Morris\n\n" + PROSE + "\n\nRelated: Open RAN's wake\n\n"
        "https://example.com/a-link\n\n| Year | Capex |\n|---|---|\n| 2024 | 9.1 |\n\n"
        + OTHER_PROSE
        + "\n\n— Iain Morris, International Editor, Light Reading"
    )
    cleaned, reason = clean_article(article(text, author="Iain Morris"), min_words=20)
    assert reason is None
    assert cleaned.paragraphs == (PROSE, OTHER_PROSE)
    assert cleaned.removed == {"repeated_heading": 1, "byline": 2, "boilerplate": 1, "non_prose": 2}


@pytest.mark.parametrize(
    ("text", "min_words", "expected"),
    [
        ("", 10, "empty"),
        ("Advertisement\n\nRead more", 10, "empty"),
        (PROSE, 500, "too_short"),
        ("\n\n".join(f"Item {i}: see https://example.com/{i}" for i in range(40)), 10, "not_prose"),
        (" ".join(["word"] * 200), 10, "not_prose"),
    ],
)
def test_article_drops_have_reasons(text, min_words, expected):
    cleaned, reason = clean_article(article(text), min_words=min_words)
    assert cleaned is None
    assert reason == expected


def test_article_without_title_is_dropped():
    assert clean_article(article(PROSE, title="  "), min_words=10) == (None, "no_title")


def test_shingles_and_jaccard():
    a, b = shingles(PROSE), shingles(OTHER_PROSE)
    assert jaccard(a, a) == 1.0
    assert jaccard(a, b) < 0.05


def _clean(text: str, id: str) -> Article:
    cleaned, _ = clean_article(article(text, id=id), min_words=10)
    assert cleaned is not None
    return cleaned


def test_exact_duplicates_by_text_or_id_keep_the_first():
    first = _clean(PROSE, "a")
    same_text = _clean(PROSE.upper().replace(".", " ."), "b")  # case and punctuation do not matter
    same_id = _clean(OTHER_PROSE, "a")
    kept, dropped = dedupe([first, same_text, same_id])
    assert kept == [first]
    assert [(d.id, reason, o.id) for d, reason, o in dropped] == [
        ("b", "duplicate", "a"),
        ("a", "duplicate", "a"),
    ]


def test_near_duplicate_is_dropped_but_distinct_articles_stay():
    base = PROSE + "\n\n" + OTHER_PROSE
    edited = base.replace("usually after lunch", "usually after a long lunch")
    first, near, other = _clean(base, "a"), _clean(edited, "b"), _clean(OTHER_PROSE + " " + PROSE[:40], "c")
    assert jaccard(shingles(first.body), shingles(near.body)) >= 0.8
    kept, dropped = dedupe([first, near, other])
    assert [a.id for a in kept] == ["a", "c"]
    assert [(d.id, reason) for d, reason, _ in dropped] == [("b", "near_duplicate")]
