"""`morris review` (exit codes, Markdown and JSON, batch JSONL, bad input) and `morris generate --review`
(the checklist after the article; a "review" field per article with --batch)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from morris_mlx.backends.base import Chunk
from morris_mlx.cli import main
from morris_mlx.review import make_reviewer
from morris_mlx.review.checklist import to_json

ARTICLE = (
    "# Vodafone's gamble\n\nVodafone said it would cut €2bn from its budget in 2025. "
    '"We are not cutting jobs," said Margherita Della Valle, the chief executive.\n'
)
QUIET = "Nothing much happened, and nobody minded at all.\n"


def review(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_flagged_article_exits_1_with_a_markdown_checklist(tmp_path, capsys):
    path = tmp_path / "a.md"
    path.write_text(ARTICLE)
    code, out, _ = review(capsys, str(path))
    assert code == 1
    assert out.startswith("## Review checklist\n")
    assert "### Quotes (who said it, and did they?)" in out
    assert '- [ ] 3:58 "We are not cutting jobs,"' in out and "Margherita Della Valle" in out
    assert "- [ ] 3:28 €2bn" in out and "- [ ] 3:52 2025" in out
    assert "copied spans were looked for in the bundled corpus" in out


def test_nothing_to_flag_exits_0(tmp_path, capsys):
    path = tmp_path / "quiet.txt"
    path.write_text(QUIET)
    code, out, _ = review(capsys, str(path))
    assert code == 0 and "Nothing flagged" in out


def test_json_gives_positions_and_counts(tmp_path, capsys):
    path = tmp_path / "a.md"
    path.write_text(ARTICLE)
    code, out, _ = review(capsys, str(path), "--json")
    data = json.loads(out)
    assert code == 1 and data["needs_review"] and data["source"] == str(path)
    (article,) = data["articles"]
    assert article["counts"]["quote"] == 1 and article["counts"]["number"] == 1
    assert all(ARTICLE[f["start"] : f["end"]] == f["text"] for f in article["flags"])
    assert article == {**article, **to_json(make_reviewer().review(ARTICLE), ARTICLE)}


def test_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(QUIET.encode())))
    code, out, _ = review(capsys, "-")
    assert code == 0 and "Nothing flagged" in out


def test_batch_jsonl_reviews_each_article_with_its_adapters_training_data(tmp_path, capsys):
    data = tmp_path / "processed"
    data.mkdir()
    secret = "the quick brown fox of Lower Wibbleton jumped over seventeen extremely lazy dogs at dawn"
    row = {"messages": [{"role": "assistant", "content": secret}]}
    (data / "train.jsonl").write_text(json.dumps(row) + "\n")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapters.safetensors").write_bytes(b"")  # the registry needs weights to call it an adapter
    (adapter / "morris_adapter.json").write_text(json.dumps({"data": {"path": str(data)}}))
    batch = tmp_path / "articles.jsonl"
    rows = [
        {"topic": "quiet", "text": QUIET, "adapter": None},
        {"topic": "copy", "text": f"So: {secret}.", "adapter": str(adapter)},
    ]
    batch.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, _ = review(capsys, str(batch), "--json")
    articles = json.loads(out)["articles"]
    assert code == 1
    assert [a["line"] for a in articles] == [1, 2] and [a["topic"] for a in articles] == ["quiet", "copy"]
    assert not articles[0]["needs_review"]
    copied = [f for f in articles[1]["flags"] if f["kind"] == "copied"]
    assert len(copied) == 1 and "train.jsonl line 1" in copied[0]["detail"]
    code, out, _ = review(capsys, str(batch))
    assert f"## Review checklist: {batch} line 2 (copy)" in out


def test_terms_list_is_flagged(tmp_path, capsys):
    terms = tmp_path / "terms.toml"
    terms.write_text('words = ["nobody minded"]\n')
    path = tmp_path / "quiet.txt"
    path.write_text(QUIET)
    code, out, _ = review(capsys, str(path), "--terms", str(terms))
    assert code == 1 and "### Terms from your do-not-publish list" in out and "nobody minded" in out


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        (None, ["{dir}/missing.md"], "does not exist"),
        ("", ["{file}"], "is empty"),
        (b"ok\n\xff\n", ["{file}"], "not UTF-8 (line 2)"),
        ('{"text": "fine"}\n{not json\n', ["{file}"], "line 2 is not JSON"),
        ('{"topic": "x"}\n', ["{file}"], 'no "text" string'),
        ("text", ["{file}", "--terms", "{dir}/nope.toml"], "term list"),
        ("text", ["{file}", "--data", "{dir}/nope"], "--data"),
        (None, ["{dir}"], "is a folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, content, argv, message):
    path = tmp_path / ("a.jsonl" if isinstance(content, str) and content.startswith("{") else "a.md")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = review(capsys, *[a.format(dir=tmp_path, file=path) for a in argv])
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_help_has_an_example_and_stays_light():
    code = (
        "import sys\nfrom morris_mlx.cli import main\n"
        "try: main(['review', '--help'])\nexcept SystemExit as e: print('rc', e.code)\n"
        "print([m for m in ('mlx', 'torch', 'textual') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "examples:" in result.stdout and "rc 0" in result.stdout and result.stdout.strip().endswith("[]")


# generate --review -------------------------------------------------------------------------------------


class FakeGenerator:
    """Writes ARTICLE whatever it is asked, like a backend's Generator."""

    backend = "fake"
    model_dir = Path("/models/fake")
    adapter_path = None

    def stream(self, messages, settings):
        yield Chunk(text=ARTICLE[:30], generation_tokens=1, generation_tps=1.0)
        yield Chunk(text=ARTICLE[30:], generation_tokens=2, generation_tps=1.0, finish_reason="stop")

    def generate_batch(self, conversations, settings, batch_size):
        for i, _ in enumerate(conversations):
            yield i, SimpleNamespace(text=ARTICLE if i % 2 == 0 else QUIET, finish_reason="stop",
                                     prompt_tokens=3, generation_tokens=2)


@pytest.fixture
def fake_generator(monkeypatch):
    monkeypatch.setattr("morris_mlx.commands.generate.load_generator", lambda args, cfg: FakeGenerator())


def test_generate_review_appends_the_checklist(fake_generator, capsys):
    assert main(["generate", "Vodafone", "--review"]) == 0
    out = capsys.readouterr().out
    article, _, checklist = out.partition("\n## Review checklist")
    assert article.strip() == ARTICLE.strip()
    assert "### Quotes" in checklist and "Margherita Della Valle" in checklist
    assert main(["generate", "Vodafone"]) == 0
    assert "Review checklist" not in capsys.readouterr().out


def test_generate_batch_review_stores_it_per_article(fake_generator, tmp_path, capsys):
    topics = tmp_path / "topics.txt"
    topics.write_text("one\ntwo\n")
    out = tmp_path / "out.jsonl"
    assert main(["generate", "--batch", str(topics), "--out", str(out), "--review"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["review"] == to_json(make_reviewer().review(ARTICLE), ARTICLE)
    assert records[0]["review"]["needs_review"] and not records[1]["review"]["needs_review"]
    # `morris review` of the batch output agrees, line by line.
    code = main(["review", str(out), "--json"])
    articles = json.loads(capsys.readouterr().out)["articles"]
    assert code == 1 and [a["flags"] for a in articles] == [r["review"]["flags"] for r in records]


def test_generate_terms_without_review_is_refused(fake_generator, tmp_path, capsys):
    assert main(["generate", "x", "--terms", str(tmp_path / "t.toml")]) == 2
    assert "--terms goes with --review" in capsys.readouterr().err


def test_a_bad_term_list_stops_generate_tui_and_serve_before_any_model_loads(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "terms.toml"
    bad.write_text('words = "not a list"\n')
    loaded = []
    monkeypatch.setattr("morris_mlx.commands.generate.load_generator", lambda args, cfg: loaded.append(1))
    for argv in (["generate", "5G", "--review", "--terms", str(bad)], ["tui", "--terms", str(bad)],
                 ["serve", "--terms", str(bad), "--port", "0"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "words must be a list" in err[0], (argv, err)
    assert loaded == []
