"""The content review's checks, one kind at a time, on small texts written to exercise each rule."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from morris_mlx.errors import MorrisError
from morris_mlx.review import KINDS, Flag, make_reviewer, review_text
from morris_mlx.review.checklist import to_json, to_markdown
from morris_mlx.review.copied import ShingleIndex
from morris_mlx.review.dates import find_dates
from morris_mlx.review.document import article_region
from morris_mlx.review.names import find_names
from morris_mlx.review.numbers import find_numbers
from morris_mlx.review.quotes import find_quotes
from morris_mlx.review.sentences import split_sentences
from morris_mlx.review.sources import load_corpus
from morris_mlx.review.terms import parse_terms

REVIEW_DIR = Path(__file__).resolve().parent.parent / "morris_mlx" / "review"


def texts(flags: list[Flag]) -> list[str]:
    return [f.text for f in flags]


def test_every_flag_is_the_text_at_its_offsets():
    text = (
        '# Vodafone\'s bet\n\nVodafone cut €2bn in May 2024. "It hurts," said Margherita Della Valle.'
        "\n\nWhat could possibly go wrong?"
    )
    flags = review_text(text)
    assert flags and all(text[f.start : f.end] == f.text for f in flags)
    assert all(f.kind in KINDS for f in flags)


def test_numbers_money_percentages_and_units_but_not_terms_or_dates():
    text = (
        "Vodafone cut €2bn, or EUR2 billion, and 1,200 jobs (4.5%) by 2026. 5G, COVID-19 and 3GPP are "
        "not figures. It paid $3.5 million for 3.5GHz at 100 Mbps; two billion euros; ten per cent; 30-40% "
        "of £19,000; an H100 costs 30,000 dollars."
    )
    found = texts(find_numbers(text, find_dates(text)))
    assert found == [
        "€2bn", "EUR2 billion", "1,200 jobs", "4.5%", "$3.5 million", "3.5GHz", "100 Mbps",
        "two billion euros", "ten per cent", "30-40%", "£19,000", "30,000 dollars",
    ]


def test_dates_months_years_quarters_and_relative_dates():
    text = (
        "On 1 May 2024 and May 5, 2023, in Q3 2024 and the first quarter of 2025, since March, in the 1990s, "
        "in 2019-20, last year and three weeks ago. It may rain; the H100 is no date."
    )
    assert texts(find_dates(text)) == [
        "1 May 2024", "May 5, 2023", "Q3 2024", "the first quarter of 2025", "March", "the 1990s", "2019-20",
        "last year", "three weeks ago",
    ]


def test_quotes_with_their_speakers_and_scare_quotes_left_alone():
    text = (
        'Margherita Della Valle, the chief executive, said the move was "necessary for the business". '
        '"We are not cutting jobs," said Börje Ekholm. “We will never cut prices,” according to a spokesperson '
        "for BT. Its customers call it 'a scam dressed up as a reward', and the operators' margins shrink. "
        'A "refreshed" scheme. "This one never ends and goes on'
    )
    flags = find_quotes(text, split_sentences(text))
    assert texts(flags) == [
        '"necessary for the business"', '"We are not cutting jobs,"', "“We will never cut prices,”",
        "'a scam dressed up as a reward'", '"This one never ends and goes on',
    ]
    details = [f.detail for f in flags]
    assert "Margherita Della Valle" in details[0] and "Börje Ekholm" in details[1]
    assert "a spokesperson for BT" in details[2] and "Its customers" in details[3]
    assert details[4].startswith("no speaker named") and "never closed" in details[4]


def test_names_skip_sentence_starts_places_and_terms_and_keep_organisations_and_people():
    text = (
        "# Vodafone Cuts Its Spending Again\n\nAnalysts at MoffettNathanson were unimpressed. Telecom "
        "operators in Europe struggle. Deutsche Telekom, T-Mobile US, AT&T and Bank of America watched, "
        "said Börje Ekholm of Ericsson. Ursula von der Leyen shrugged. Open RAN is dead in the UK. According to Ofcom, nobody cares. "
        "Nokia's Pekka Lundmark was quiet."
    )
    vocabulary = load_corpus().vocabulary
    flags = find_names(text, split_sentences(text), vocabulary)
    assert texts(flags) == [
        "Vodafone", "MoffettNathanson", "Deutsche Telekom", "T-Mobile US", "AT&T", "Bank of America",
        "Börje Ekholm", "Ericsson", "Ursula von der Leyen", "Ofcom", "Nokia", "Pekka Lundmark",
    ]
    kinds = {f.text: f.detail.split(":")[0] for f in flags}
    assert kinds["Deutsche Telekom"] == kinds["AT&T"] == kinds["Bank of America"] == "organisation"
    assert kinds["Börje Ekholm"] == "person"


def test_claims_need_a_named_party_and_something_asserted():
    text = (
        "Vodafone has cut its budget. Could Nokia survive? Ericsson might win, perhaps. BT paid £1bn in 2020. "
        "The weather was grim."
    )
    claims = [f for f in review_text(text) if f.kind == "claim"]
    assert texts(claims) == ["Vodafone has cut its budget.", "BT paid £1bn in 2020."]
    assert claims[1].detail.startswith("about BT")


def test_copied_spans_are_maximal_runs_of_twelve_or_more_shared_words():
    source = (
        "Every cult eventually changes the rules. The devoted, who gave up their weekends and their savings, "
        "are told one day that the path to enlightenment has moved."
    )
    index = ShingleIndex()
    index.add(source, "corpus/cult.md")
    # 14 words copied (with different case, quotes and punctuation), then 11 words copied: only the first.
    article = (
        "Like it or not: THE DEVOTED who gave up their weekends, and their ‘savings’ are told one day. "
        "Then again every cult eventually changes the rules the devoted who gave up and then stops."
    )
    flags = index.find(article)
    assert len(flags) == 1
    assert flags[0].text == "THE DEVOTED who gave up their weekends, and their ‘savings’ are told one day"
    assert flags[0].detail.startswith("14 words also in corpus/cult.md")
    assert ShingleIndex().find(article) == []


def test_copied_span_from_the_bundled_corpus_is_found_by_the_reviewer():
    from morris_mlx.paths import voice_dir

    corpus = voice_dir("morris") / "g10-airline-loyalty.md"
    body = corpus.read_text().split("---", 2)[2]
    span = " ".join(body.split()[40:60])
    flags = [f for f in make_reviewer().review(f"Our own opening line. {span} Our own ending.") if f.kind == "copied"]
    assert len(flags) == 1 and " ".join(flags[0].text.split()) == span
    assert "bundled/voices/morris/g10-airline-loyalty.md" in flags[0].detail


def test_training_data_from_the_adapters_provenance_is_searched(tmp_path):
    data = tmp_path / "processed"
    data.mkdir()
    secret = "the quick brown fox of Lower Wibbleton jumped over seventeen extremely lazy dogs at dawn"
    row = {"messages": [{"role": "user", "content": "write"}, {"role": "assistant", "content": secret}]}
    (data / "train.jsonl").write_text(json.dumps(row) + "\n")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapters.safetensors").write_bytes(b"")  # the registry needs weights to call it an adapter
    (adapter / "morris_adapter.json").write_text(json.dumps({"data": {"path": str(data)}}))
    reviewer = make_reviewer(adapter)
    copied = [f for f in reviewer.review(f"Well: {secret}.") if f.kind == "copied"]
    assert len(copied) == 1 and "train.jsonl line 1" in copied[0].detail
    assert any("training data" in c for c in reviewer.compared_with) and not reviewer.notes
    # Data that is gone is a note (and the bundled corpus is still searched), never an error.
    (adapter / "morris_adapter.json").write_text(json.dumps({"data": {"path": str(tmp_path / "gone")}}))
    gone = make_reviewer(adapter)
    assert [f for f in gone.review(secret) if f.kind == "copied"] == []
    assert "not on this machine" in gone.notes[0]


def test_term_list_flags_matches_and_explains_bad_lists():
    terms = parse_terms(
        'words = ["world-first", "guaranteed returns"]\n'
        'names = ["Jane Doe", { text = "Acme Telecom", reason = "a client" }]\n'
    )
    text = "A world-first with Guaranteed  returns, says Jane Doe's friend at Acme Telecom; worldfirst is fine."
    flags = terms.find(text)
    assert sorted(texts(flags)) == sorted(["world-first", "Guaranteed  returns", "Jane Doe's", "Acme Telecom"])
    assert any(f.detail.endswith(": a client") for f in flags)
    assert parse_terms('case_sensitive = true\nwords = ["BT"]').find("bt and BT") == [Flag(
        "term", "BT", 7, 9, "on your do-not-publish words list")]
    for bad, message in [
        ("words = [", "not valid TOML"),
        ('word = ["x"]', "unknown key 'word'"),
        ("words = []", "lists no terms"),
        ('words = "x"', "must be a list"),
        ('words = [""]', "words entry 1 must be a non-empty string"),
        ('names = [{ text = "x", why = "y" }]', "unknown key 'why'"),
        ('case_sensitive = "no"\nwords = ["x"]', "true or false"),
    ]:
        with pytest.raises(MorrisError, match=message):
            parse_terms(bad)


def test_default_term_list_in_morris_home_is_used_when_present(isolated_home):
    assert make_reviewer().terms is None  # off by default
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "review-terms.toml").write_text('words = ["synergy"]\n')
    assert [f.kind for f in make_reviewer().review("Pure synergy.")] == ["term"]


def test_front_matter_footer_and_checklist_are_not_reviewed():
    article = 'Vodafone cut €2bn. "It hurts," he said.'
    saved = (
        f"---\ntitle: Vodafone in 2024\n---\n{article}\n\n---\n\n*AI-generated in the style of Iain Morris by "
        "morris_mlx (m) on 2026-01-01. Not written by Iain Morris.*\n\n## Review checklist\n\n- [ ] 1:1 x\n"
    )
    start, end = article_region(saved)
    assert saved[start:end].strip() == article
    shifted = [(f.kind, f.text) for f in review_text(saved)]
    assert shifted == [(f.kind, f.text) for f in review_text(article)]
    assert all(saved[f.start : f.end] == f.text for f in review_text(saved))


def test_checklist_markdown_and_json():
    text = 'Vodafone cut €2bn.\n"It hurts," said Ekholm.'
    flags = review_text(text)
    md = to_markdown(flags, text, ticked=[i == 0 for i in range(len(flags))], title="a.md")
    assert md.startswith("## Review checklist: a.md\n")
    assert "### Quotes (who said it, and did they?)\n\n- [x] 2:1 \"It hurts,\"" in md
    assert md.count("- [ ]") == len(flags) - 1
    data = to_json(flags, text)
    assert data["needs_review"] and data["counts"]["quote"] == 1
    quote = data["flags"][0]
    assert (quote["line"], quote["column"], quote["kind"]) == (2, 1, "quote")
    empty = to_markdown([], "All quiet.")
    assert "Nothing flagged" in empty and "- [" not in empty


def test_the_review_package_imports_no_command_tui_or_server_code():
    for path in REVIEW_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("morris_mlx.commands", "morris_mlx.tui", "morris_mlx.serve")), (
                    f"{path.name} imports {name}"
                )
