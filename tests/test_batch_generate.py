"""Batch generation: batched decoding equals one-at-a-time decoding on both backends, the topics file,
the articles JSONL, resume after Ctrl-C, and one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morris_mlx.batch import BatchItem, journal_path, read_batch_file
from morris_mlx.cli import main
from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError

# Different lengths, so the batch is padded (torch) or right-padded then rolled (mlx-lm).
TOPICS = [
    "5G",
    "the long, slow and expensive history of network slicing in European operators",
    "AI",
    "open RAN vendors and their woes",
    "fibre",
]
GREEDY = GenerateConfig(temp=0.0, max_tokens=10)  # the default repetition penalty stays on


def conversation(topic: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a gloomy columnist."},
        {"role": "user", "content": f"Write about: {topic}"},
    ]


def one_at_a_time(generator, topic: str, settings: GenerateConfig) -> tuple[str, str, int]:
    chunks = list(generator.stream(conversation(topic), settings))
    return "".join(c.text for c in chunks), chunks[-1].finish_reason, chunks[-1].generation_tokens


def batched(generator, settings: list[GenerateConfig], batch_size: int) -> dict[int, tuple[str, str, int]]:
    results = generator.generate_batch([conversation(t) for t in TOPICS], settings, batch_size)
    return {i: (r.text, r.finish_reason, r.generation_tokens) for i, r in results}


def load(backend: str, model: Path, adapter: Path | None = None):
    from morris_mlx.backends import get_backend

    return get_backend(backend, announce=False).load(model, adapter)


@pytest.fixture(scope="module", params=["mlx", "torch"])
def generator(request, tiny_model):
    return load(request.param, tiny_model)


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory) -> Path:
    from export_fixtures import make_mlx_adapter

    return make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("adapter") / "lora", seed=3)


def set_eos(generator, token: int, monkeypatch) -> None:
    if generator.backend == "mlx":
        monkeypatch.setattr(generator.tokenizer, "eos_token_ids", generator.tokenizer.eos_token_ids | {token})
    else:
        monkeypatch.setattr(generator, "eos_token_ids", sorted({*generator.eos_token_ids, token}))


def early_eos(generator, monkeypatch) -> dict[int, tuple[str, str, int]]:
    """Make a token that some topics write (and others do not) an extra EOS, so that rows of one batch
    stop at different steps; returns the one-at-a-time results under it. (A random model never
    writes its real EOS in a few tokens.)"""
    for chunk in list(generator.stream(conversation(TOPICS[1]), GREEDY))[1:-1]:
        with monkeypatch.context() as patch:
            set_eos(generator, chunk.token, patch)
            expected = {i: one_at_a_time(generator, t, GREEDY) for i, t in enumerate(TOPICS)}
        if {reason for _, reason, _ in expected.values()} == {"stop", "length"}:
            set_eos(generator, chunk.token, monkeypatch)
            return expected
    raise AssertionError("no token of the greedy output stops only some topics")


def test_batched_greedy_equals_one_at_a_time_with_each_row_stopping_at_its_own_eos(generator, monkeypatch):
    expected = early_eos(generator, monkeypatch)
    assert batched(generator, [GREEDY] * len(TOPICS), batch_size=3) == expected


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_batched_greedy_equals_one_at_a_time_with_an_adapter(backend, tiny_model, adapter):
    generator = load(backend, tiny_model, adapter)
    expected = {i: one_at_a_time(generator, t, GREEDY) for i, t in enumerate(TOPICS)}
    assert batched(generator, [GREEDY] * len(TOPICS), batch_size=4) == expected
    base = load(backend, tiny_model)
    assert one_at_a_time(base, TOPICS[0], GREEDY) != expected[0]  # the adapter is really applied


def test_seeded_sampling_in_a_batch_matches_a_lone_run_and_ignores_the_neighbours(generator):
    settings = [GenerateConfig(temp=0.9, top_p=0.95, max_tokens=8, seed=10 + i) for i in range(len(TOPICS))]
    expected = {i: one_at_a_time(generator, t, settings[i]) for i, t in enumerate(TOPICS)}
    assert batched(generator, settings, batch_size=5) == expected
    assert batched(generator, settings, batch_size=2) == expected


def test_per_article_max_tokens(generator):
    settings = [GenerateConfig(temp=0.0, max_tokens=3 + 2 * i) for i in range(len(TOPICS))]
    got = batched(generator, settings, batch_size=5)
    assert [got[i][2] for i in range(len(TOPICS))] == [3, 5, 7, 9, 11]


# The topics file --------------------------------------------------------------------------------------


def test_plain_text_skips_blanks_and_comments_and_a_bom(tmp_path):
    path = tmp_path / "topics.txt"
    path.write_text("\ufeff# my topics\n5G\n\n  open RAN  \n# done\n", encoding="utf-8")
    assert read_batch_file(path) == [BatchItem("5G"), BatchItem("open RAN")]


def test_jsonl_by_extension_or_by_content(tmp_path):
    rows = [
        '{"topic": "5G", "seed": 3, "max_tokens": 20}',
        "",
        "# comments are skipped here too",
        '{"topic": "AI", "system_prompt": "Be brief."}',
    ]
    for name in ("topics.jsonl", "topics.txt"):
        path = tmp_path / name
        path.write_text("\n".join(rows) + "\n")
        assert read_batch_file(path) == [
            BatchItem("5G", seed=3, max_tokens=20),
            BatchItem("AI", system_prompt="Be brief."),
        ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('["5G"]', "not a JSON object"),
        ('{"title": "5G"}', "unknown key 'title'"),
        ('{"seed": 1}', 'lacks a "topic"'),
        ('{"topic": "5G", "max_tokens": 0}', "positive"),
        ('{"topic": "5G", "seed": true}', "whole number"),
        ("{not json", "not JSON"),
    ],
)
def test_bad_jsonl_lines_name_the_line(tmp_path, line, message):
    path = tmp_path / "topics.jsonl"
    path.write_text('{"topic": "ok"}\n' + line + "\n")
    with pytest.raises(MorrisError, match=message) as info:
        read_batch_file(path)
    assert "line 2" in str(info.value)


# The command ------------------------------------------------------------------------------------------


def run_batch(model: Path, batch: Path, out: Path, *extra: str) -> int:
    return main(
        ["generate", "--batch", str(batch), "--out", str(out), "--model", str(model), "--backend", "mlx"]
        + ["--temp", "0", "--max-tokens", "6", "--batch-size", "2", *extra]
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_writes_one_article_per_topic_in_input_order(tiny_model, tmp_path, isolated_home):
    batch = tmp_path / "topics.jsonl"
    rows = [{"topic": t} for t in TOPICS]
    rows[1].update(max_tokens=3, seed=7)
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "articles.jsonl"
    assert run_batch(tiny_model, batch, out) == 0
    articles = read_jsonl(out)
    assert [a["topic"] for a in articles] == TOPICS
    assert list(articles[0]) == [
        "topic",
        "text",
        "finish_reason",
        "prompt_tokens",
        "generation_tokens",
        "model",
        "adapter",
        "backend",
        "settings",
        "created",
    ]
    first, second = articles[0], articles[1]
    assert first["backend"] == "mlx" and first["adapter"] is None and first["model"] == str(tiny_model)
    assert first["generation_tokens"] == 6 and first["finish_reason"] == "length" and first["text"]
    assert first["settings"]["temp"] == 0.0 and first["settings"]["seed"] is None
    assert second["generation_tokens"] == 3 and second["settings"]["seed"] == 7  # the line's own settings
    assert not journal_path(out).exists()
    summary = (isolated_home / "logs" / "morris.log").read_text().splitlines()[-1]
    assert "5 articles" in summary and "27 tokens" in summary and "tok/s" in summary


def test_ctrl_c_leaves_no_output_and_a_rerun_resumes(tiny_model, tmp_path, monkeypatch, capsys):
    from morris_mlx.backends.mlx_generate import MLXGenerator

    batch = tmp_path / "topics.txt"
    batch.write_text("\n".join(TOPICS) + "\n")
    reference = tmp_path / "reference.jsonl"
    assert run_batch(tiny_model, batch, reference) == 0

    original = MLXGenerator.generate_batch
    asked: list[int] = []

    def interrupted(self, conversations, settings, batch_size):
        asked.append(len(conversations))
        for n, item in enumerate(original(self, conversations, settings, batch_size)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(MLXGenerator, "generate_batch", interrupted)
    out = tmp_path / "articles.jsonl"
    assert run_batch(tiny_model, batch, out) == 2
    assert not out.exists() and len(read_jsonl(journal_path(out))) == 2
    assert "interrupted" in capsys.readouterr().err
    with journal_path(out).open("a") as fh:
        fh.write('{"index": 4, "topic": "fib')  # a line torn by a crash mid-write

    monkeypatch.setattr(MLXGenerator, "generate_batch", original)
    assert run_batch(tiny_model, batch, out) == 0
    assert asked == [5]
    strip = [{k: v for k, v in a.items() if k != "created"} for a in read_jsonl(out)]
    assert strip == [{k: v for k, v in a.items() if k != "created"} for a in read_jsonl(reference)]
    assert not journal_path(out).exists()


def test_ctrl_c_before_the_first_article_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    from morris_mlx.backends.mlx_generate import MLXGenerator

    def interrupted(self, conversations, settings, batch_size):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(MLXGenerator, "generate_batch", interrupted)
    batch = tmp_path / "topics.txt"
    batch.write_text("5G\n")
    out = tmp_path / "articles.jsonl"
    assert run_batch(tiny_model, batch, out) == 2
    assert not out.exists() and not journal_path(out).exists()


def test_a_journal_from_other_settings_is_not_reused(tiny_model, tmp_path, monkeypatch):
    from morris_mlx.backends.mlx_generate import MLXGenerator

    batch = tmp_path / "topics.txt"
    batch.write_text("5G\nAI\n")
    out = tmp_path / "articles.jsonl"
    journal_path(out).write_text(
        json.dumps({"index": 0, "topic": "5G", "text": "stale", "settings": {"max_tokens": 99}}) + "\n"
    )
    asked: list[int] = []
    original = MLXGenerator.generate_batch

    def counting(self, conversations, settings, batch_size):
        asked.append(len(conversations))
        yield from original(self, conversations, settings, batch_size)

    monkeypatch.setattr(MLXGenerator, "generate_batch", counting)
    assert run_batch(tiny_model, batch, out) == 0
    assert asked == [2] and "stale" not in out.read_text()
    # Not used, not lost either: it waits in the journal for a run with its own settings.
    assert [r["text"] for r in read_jsonl(journal_path(out))] == ["stale"]


def test_force_overwrites_and_a_single_topic_still_streams(tiny_model, tmp_path, capsys):
    batch = tmp_path / "topics.txt"
    batch.write_text("5G\n")
    out = tmp_path / "articles.jsonl"
    out.write_text("old\n")
    assert run_batch(tiny_model, batch, out, "--force") == 0
    assert read_jsonl(out)[0]["topic"] == "5G"
    capsys.readouterr()
    args = [
        "generate",
        "5G",
        "--model",
        str(tiny_model),
        "--backend",
        "mlx",
        "--max-tokens",
        "4",
        "--temp",
        "0",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--batch", "{dir}/missing.txt", "--out", "{out}"], "does not exist"),
        ("# only a comment\n\n", ["--batch", "{batch}", "--out", "{out}"], "no topics"),
        (b"5G\n\xff\xfe\n", ["--batch", "{batch}", "--out", "{out}"], "not UTF-8 (line 2)"),
        ('{"topic": "5G"}\n[1]\n', ["--batch", "{batch}", "--out", "{out}"], "not a JSON object"),
        ('{"topic": "5G"}\n{"seed": 2}\n', ["--batch", "{batch}", "--out", "{out}"], 'lacks a "topic"'),
        ("5G\n", ["--batch", "{batch}"], "needs --out"),
        (
            "5G\n",
            ["--batch", "{batch}", "--out", "{out}", "--batch-size", "0"],
            "--batch-size must be positive",
        ),
        ("5G\n", ["5G", "--batch", "{batch}", "--out", "{out}"], "not both"),
        (None, [], "pass a TOPIC"),
        (None, ["5G", "--out", "{out}"], "go with --batch"),
        ("5G\n", ["--batch", "{batch}", "--out", "{batch}", "--force"], "the batch file itself"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, setup, args, message):
    batch = tmp_path / ("topics.jsonl" if isinstance(setup, str) and setup.startswith("{") else "topics.txt")
    if isinstance(setup, bytes):
        batch.write_bytes(setup)
    elif setup is not None:
        batch.write_text(setup)
    out = tmp_path / "articles.jsonl"
    argv = [a.format(dir=tmp_path, out=out, batch=batch) for a in args]
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not journal_path(out).exists()


def test_existing_output_is_refused_without_force(tmp_path, capsys):
    batch = tmp_path / "topics.txt"
    batch.write_text("5G\n")
    out = tmp_path / "articles.jsonl"
    out.write_text("keep me\n")
    assert main(["generate", "--batch", str(batch), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me\n"


def test_time_limit_ends_each_article_with_its_partial_text(generator):
    settings = [GenerateConfig(temp=0.0, max_tokens=50, time_limit=0.0)] * len(TOPICS)
    got = batched(generator, settings, batch_size=2)
    assert sorted(got) == list(range(len(TOPICS)))
    assert all(reason == "time" and 1 <= n < 50 for _, reason, n in got.values())
