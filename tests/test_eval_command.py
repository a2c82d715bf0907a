"""`morris eval` end to end on a fake backend, and the report it writes."""

from __future__ import annotations

import json
import os
import random
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from morris_mlx.backends.base import BatchResult, Chunk
from morris_mlx.cli import main as cli
from morris_mlx.evaluation import report as rep
from morris_mlx.evaluation import run as run_module
from morris_mlx.evaluation import summarise
from morris_mlx.evaluation.run import build_prompts

VOCAB = 128
WRITER = [
    "Like a corpse in a ditch, the operator sank (and who could blame it?) without a murmur.",
    "What could possibly go wrong?",
    "Colour me sceptical, but the organisation's fibre plans look grim.",
    "The vendors, needless to say, were already counting the money.",
    "It is a bit like rearranging deckchairs on a sinking ship, only with more PowerPoint.",
    "Nobody, it seems, asked the customers.",
    "The analysts, whose forecasts have the shelf life of milk, were upbeat.",
]
GENERIC = [
    "The company announced a new partnership today to deliver innovative solutions.",
    "Customers will benefit from faster speeds and improved reliability across the network.",
    "The initiative is expected to drive growth and create value for stakeholders.",
    "Executives said they were excited about the opportunities ahead.",
    "The program will be rolled out in several markets over the coming year.",
    "Analysts expect the market to grow steadily as demand increases.",
]


def article(bank: list[str], n: int, seed: int, title: str = "") -> str:
    rng = random.Random(seed)
    body = " ".join(rng.choice(bank) for _ in range(n))
    return f"# {title}\n\n{body}" if title else body


def encode(text: str) -> list[int]:
    return [min(ord(c), VOCAB - 1) for c in text]


class FakeGenerator:
    """Base: uniform logits and bland corporate prose. Adapter: a character bigram model of the writer's
    corpus and prose from the writer's sentence bank. Sampling depends only on the seed."""

    backend = "fake"

    def __init__(self, model_dir: Path, corpus: list[str], base_bank: list[str]) -> None:
        self.model_dir, self.adapter_path, self.base_bank = model_dir, None, base_bank
        counts = np.ones((VOCAB, VOCAB))
        for text in corpus:
            ids = encode(text)
            for a, b in zip(ids, ids[1:], strict=False):
                counts[a, b] += 1
        self.bigram = np.log(counts / counts.sum(axis=1, keepdims=True))
        self.adapter_calls: list[Path | None] = []
        self.base_streams = 0

    def encode_chat(self, messages, add_generation_prompt):
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return encode(text + ("<assistant>" if add_generation_prompt else "|"))

    def encode_text(self, text):
        return encode(text)

    def logits(self, token_ids):
        if self.adapter_path is None:
            return np.zeros((len(token_ids), VOCAB), dtype=np.float32)
        return self.bigram[np.asarray(token_ids)].astype(np.float32)

    def set_adapter(self, adapter_path, fuse=True):
        self.adapter_path = adapter_path
        self.adapter_calls.append(adapter_path)

    def stream(self, messages, settings):
        bank = WRITER if self.adapter_path else self.base_bank
        self.base_streams += self.adapter_path is None
        text = article(bank, 40, settings.seed, title=messages[-1]["content"][:30])
        pieces = text.split(" ")[: settings.max_tokens]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            yield Chunk(text=piece + ("" if last else " "), generation_tokens=i + 1,
                        finish_reason="length" if last else None)

    def generate_batch(self, conversations, settings, batch_size):
        for index in reversed(range(len(conversations))):  # out of order, as continuous batching may finish
            chunks = list(self.stream(conversations[index], settings[index]))
            yield index, BatchResult("".join(c.text for c in chunks), chunks[-1].finish_reason, 0,
                                     chunks[-1].generation_tokens)


class FakeBackend:
    name = "fake"

    def __init__(self, corpus: list[str]) -> None:
        self.corpus = corpus
        self.base_bank = GENERIC
        self.generators: list[FakeGenerator] = []

    def load(self, model_dir, adapter_path=None, fuse=True):
        gen = FakeGenerator(Path(model_dir), self.corpus, self.base_bank)
        if adapter_path is not None:
            gen.set_adapter(adapter_path)
        self.generators.append(gen)
        return gen


def write_split(path: Path, texts: list[str], topics: list[str]) -> None:
    rows = [
        {"messages": [
            {"role": "system", "content": "You are a gloomy British telecom columnist."},
            {"role": "user", "content": f"Write a telecom industry news article about: {topic}"},
            {"role": "assistant", "content": text},
        ]}
        for text, topic in zip(texts, topics, strict=True)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    splits = {"train": range(0, 20), "valid": range(20, 23), "test": range(23, 27)}
    corpus = []
    for split, ids in splits.items():
        texts = [article(WRITER, 14, i, title=f"Grim news number {i}") for i in ids]
        write_split(data / f"{split}.jsonl", texts, [f"topic {i}" for i in ids])
        if split == "train":
            corpus = texts
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    adapter = tmp_path / "adapters" / "voice"
    adapter.mkdir(parents=True)
    (adapter / "adapters.safetensors").write_bytes(b"")
    (adapter / "adapter_config.json").write_text("{}")
    backend = FakeBackend(corpus)
    monkeypatch.setattr("morris_mlx.backends.get_backend", lambda name="auto", announce=True, trust_remote_code=False: backend)
    return {"data": data, "model": model, "adapter": adapter, "backend": backend, "tmp": tmp_path}


def run(setup, *extra: str) -> int:
    return cli(["eval", "--adapter-path", str(setup["adapter"]), "--data", str(setup["data"]),
                "--model", str(setup["model"]), "--prompts", "6", "--max-tokens", "80", *extra])


def test_eval_writes_a_readable_report(setup, capsys):
    out = setup["tmp"] / "reports" / "r1"
    assert run(setup, "--out", str(out)) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    markdown = out.with_suffix(".md").read_text()
    svg = ET.fromstring(out.with_suffix(".svg").read_text())
    assert svg.tag.endswith("svg")

    verdicts = {m["key"]: m["verdict"] for m in report["measures"]}
    assert verdicts["ppl_writer"] == "better"
    assert verdicts["delta"] == "better"
    assert verdicts["char_distance"] == "better"
    assert verdicts["attributed"] == "better"
    assert verdicts["british_spelling"] == "better"
    assert report["perplexity"]["writer"]["base"] == pytest.approx(VOCAB)  # uniform logits
    assert report["perplexity"]["writer"]["change"] < -0.5
    assert report["attribution"]["cv_accuracy"] >= 0.9

    meta = report["meta"]
    assert (meta["prompts"], meta["heldout_prompts"], meta["offtopic_prompts"]) == (6, 5, 1)
    assert report["attribution"]["scored"] == 5  # the off-topic reply is not counted in the shares
    assert "Off-topic replies given to the writer, not counted" in markdown
    assert len(report["samples"]) == 6
    gen = setup["backend"].generators[0]
    assert gen.adapter_calls == [setup["adapter"]]
    assert len(setup["backend"].generators) == 1  # the base weights were loaded once

    for m in report["measures"]:
        assert m["label"] in markdown
    assert "Perplexity on the writer's held-out articles went from 128" in markdown
    assert "specificity" in markdown and report["voice"]["writer_change"] < report["voice"]["contrast_change"]
    bars = [e for e in svg.iter() if e.tag.endswith("rect")]
    assert len(bars) >= 2 * len(report["measures"])

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-3:] == [str(out.with_suffix(s)) for s in (".json", ".md", ".svg")]
    assert any(line.startswith("Writer's held-out articles") and "✓ better" in line for line in printed)


def test_eval_is_deterministic_for_a_seed(setup):
    assert run(setup, "--out", str(setup["tmp"] / "a"), "--seed", "3") == 0
    assert run(setup, "--out", str(setup["tmp"] / "b"), "--seed", "3", "--no-cache") == 0
    assert run(setup, "--out", str(setup["tmp"] / "c"), "--seed", "4") == 0
    a, b, c = (json.loads((setup["tmp"] / f"{n}.json").read_text()) for n in "abc")
    assert a["measures"] == b["measures"] and a["samples"] == b["samples"] and a["style"] == b["style"]
    assert a["samples"] != c["samples"]


def base_streams(setup) -> int:
    """How many texts the base model has generated so far, over every generator the backend loaded."""
    return sum(g.base_streams for g in setup["backend"].generators)


def test_a_second_eval_reuses_the_base_models_half(setup, capsys):
    out = setup["tmp"]
    assert run(setup, "--out", str(out / "a")) == 0
    computed = base_streams(setup)
    assert computed > 0
    assert run(setup, "--out", str(out / "b")) == 0  # another adapter could be here: same base work
    assert base_streams(setup) == computed
    a, b = (json.loads((out / f"{n}.json").read_text()) for n in "ab")
    assert (a["meta"]["base_cached"], b["meta"]["base_cached"]) == (False, True)
    assert "from an earlier eval" in (out / "b.md").read_text() and "from an earlier eval" not in (out / "a.md").read_text()
    for part in ("measures", "samples", "style", "perplexity", "voice"):
        assert a[part] == b[part], part

    assert run(setup, "--out", str(out / "c"), "--max-tokens", "60") == 0  # other settings: other base replies
    assert base_streams(setup) == 2 * computed
    entries = sorted((setup["tmp"] / "morris_home" / "eval-cache").glob("*.json"))
    assert len(entries) == 2
    for entry in entries:
        entry.write_text(json.dumps({**json.loads(entry.read_text()), "marked": True}))
    assert run(setup, "--out", str(out / "d"), "--no-cache") == 0  # recomputed, and kept in place of the old
    assert base_streams(setup) == 3 * computed
    assert sorted("marked" in json.loads(e.read_text()) for e in entries) == [False, True]
    for entry in entries:
        entry.write_text('{"key": "trunc')  # a damaged entry is recomputed and replaced
    assert run(setup, "--out", str(out / "e")) == 0
    assert base_streams(setup) == 4 * computed
    assert "unreadable" in capsys.readouterr().err
    assert json.loads((out / "e.json").read_text())["samples"] == a["samples"]
    assert run(setup, "--out", str(out / "f")) == 0
    assert base_streams(setup) == 4 * computed


def touch_model(setup):
    weights = setup["model"] / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten, same size


def other_test_split(setup):
    test = setup["data"] / "test.jsonl"
    test.write_text(test.read_text().replace("Grim news", "Bleak news"))


@pytest.mark.parametrize("change", [touch_model, other_test_split])
def test_another_model_or_data_is_not_answered_from_the_cache(setup, change):
    assert run(setup, "--out", str(setup["tmp"] / "a")) == 0
    computed = base_streams(setup)
    change(setup)
    assert run(setup, "--out", str(setup["tmp"] / "b")) == 0
    assert base_streams(setup) == 2 * computed


def test_an_entry_of_another_shape_or_an_unwritable_cache_costs_only_time(setup, capsys):
    assert run(setup, "--out", str(setup["tmp"] / "a")) == 0
    computed = base_streams(setup)
    cache = setup["tmp"] / "morris_home" / "eval-cache"
    (entry,) = cache.glob("*.json")
    entry.write_text(json.dumps({"key": entry.stem, "replies": []}))
    assert run(setup, "--out", str(setup["tmp"] / "b")) == 0
    assert base_streams(setup) == 2 * computed and "another shape" in capsys.readouterr().err
    assert json.loads(entry.read_text())["replies"]  # replaced by the recomputed results

    shutil.rmtree(cache)
    cache.write_text("")  # a file where the folder should be: nothing can be kept
    assert run(setup, "--out", str(setup["tmp"] / "c")) == 0
    assert "could not keep" in capsys.readouterr().err
    assert json.loads((setup["tmp"] / "c.json").read_text())["samples"] == \
        json.loads((setup["tmp"] / "a.json").read_text())["samples"]


def test_a_classifier_that_cannot_tell_gives_no_verdict(setup):
    setup["backend"].base_bank = WRITER  # the base model already writes like the writer, and so do the
    contrast = setup["tmp"] / "alike.jsonl"  # "other writers": nothing tells the two sides apart
    contrast.write_text("".join(json.dumps({"body": article(WRITER, 30, 700 + i)}) + "\n" for i in range(4)))
    out = setup["tmp"] / "weak"
    assert run(setup, "--out", str(out), "--contrast", str(contrast)) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["attribution"]["reliable"] is False
    attributed = next(m for m in report["measures"] if m["key"] == "attributed")
    assert (attributed["better"], attributed["verdict"]) == ("info", "n/a")
    assert "Too weak to judge by" in out.with_suffix(".md").read_text()


def test_default_report_lands_in_the_adapter_dir(setup):
    assert run(setup) == 0
    assert sorted(p.name for p in (setup["adapter"] / "eval").iterdir()) == ["report.json", "report.md", "report.svg"]


def test_model_and_data_default_to_what_the_adapter_was_trained_on(setup):
    provenance = {"base_model": {"path": str(setup["model"])}, "data": {"path": str(setup["data"])}}
    (setup["adapter"] / "morris_adapter.json").write_text(json.dumps(provenance))
    assert cli(["eval", "--adapter-path", str(setup["adapter"]), "--prompts", "2", "--max-tokens", "20"]) == 0
    report = json.loads((setup["adapter"] / "eval" / "report.json").read_text())
    assert report["meta"]["model_dir"] == str(setup["model"])
    assert report["meta"]["data_dir"] == str(setup["data"])


def test_contrast_corpus_joins_the_generic_side(setup):
    contrast = setup["tmp"] / "others.jsonl"
    contrast.write_text("".join(json.dumps({"body": article(GENERIC, 30, 500 + i)}) + "\n" for i in range(4)))
    out = setup["tmp"] / "with-contrast"
    assert run(setup, "--contrast", str(contrast), "--out", str(out)) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert "contrast passages" in report["attribution"]["generic_sources"]
    # The base model's voice is learned from more replies than the few scored prompts (cycling the train
    # split when it is smaller), each drawn with its own seed.
    assert report["attribution"]["generic_sources"].startswith(f"{run_module.VOICE_REPLIES} base-model replies")
    assert "contrast" in report["perplexity"]
    assert any(m["key"] == "ppl_contrast" for m in report["measures"])


@pytest.mark.parametrize(
    "change, message",
    [
        ("missing-adapter", "does not exist"),
        ("no-test-split", "no test.jsonl"),
        ("bad-contrast", "line 2: not valid JSON"),
        ("bad-train-line", "train.jsonl line 1"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(setup, capsys, change, message):
    out = setup["tmp"] / "never"
    extra: list[str] = ["--out", str(out)]
    if change == "missing-adapter":
        setup["adapter"] = setup["tmp"] / "nope"
    elif change == "no-test-split":
        (setup["data"] / "test.jsonl").unlink()
    elif change == "bad-contrast":
        bad = setup["tmp"] / "bad.jsonl"
        bad.write_text('{"body": "fine text here"}\n{oops\n')
        extra += ["--contrast", str(bad)]
    elif change == "bad-train-line":
        (setup["data"] / "train.jsonl").write_text('{"messages": "no"}\n')
    assert run(setup, *extra) == 2
    assert message in capsys.readouterr().err
    assert not list(setup["tmp"].glob("never*"))


# --- report pieces ---------------------------------------------------------------------------------

def test_verdicts():
    assert rep.verdict("lower", 10.0, 8.0) == "better"
    assert rep.verdict("lower", 8.0, 10.0) == "worse"
    assert rep.verdict("higher", 0.2, 0.6) == "better"
    assert rep.verdict("closer", 1.0, 4.0, target=5.0) == "better"
    assert rep.verdict("closer", 4.0, 7.0, target=5.0) == "worse"
    assert rep.verdict("closer", 4.0, 7.0) == "n/a"
    assert rep.verdict("lower", 3.0, 3.0) == "same"
    assert rep.verdict("info", 3.0, 1.0) == "n/a"
    assert rep.verdict("lower", float("nan"), 1.0) == "n/a"


def small_report() -> dict:
    return {
        "meta": {"adapter_name": "a<b>&c"},
        "measures": [
            rep.measure("ppl_writer", "Perplexity", "Writer", "ppl", 40.0, 30.0, "lower"),
            rep.measure("attributed", "Stylometry", "Attributed", "share", 0.25, 0.75, "higher", 0.9,
                        "held-out", unit="share"),
            rep.measure("asides", "Style markers", "Asides", "rate", 1.0, float("nan"), "closer", 3.0,
                        "corpus", unit="per 1k words"),
        ],
    }


def test_summarise_rows():
    rows = summarise(small_report())
    assert rows[0] == ("Writer", "40.00", "30.00", "", "↓ 25.0%", "✓ better")
    assert rows[1] == ("Attributed", "25%", "75%", "90%", "↑ 50 pts", "✓ better")
    assert rows[2] == ("Asides (per 1k words)", "1.00", "n/a", "3.00", "", "")


def test_svg_is_well_formed_and_escaped():
    svg = rep.to_svg(small_report())
    root = ET.fromstring(svg)
    assert "a<b>&c: base vs adapter" in "".join(root.itertext())


def test_nan_is_written_as_null(tmp_path):
    report = {**small_report(), "extra": {"x": float("nan"), "y": [float("inf"), 1.0]}}
    report["meta"].update(adapter_path="a", model_dir="m", data_dir="d", backend="fake", train_articles=1,
                          test_articles=1, prompts=1, heldout_prompts=1, offtopic_prompts=0, max_tokens=1,
                          temp=0.7, top_p=0.9, seed=0, created="now", seconds=1.0)
    paths = rep.write_report(report, tmp_path / "r.json")
    assert [p.name for p in paths] == ["r.json", "r.md", "r.svg"]
    text = paths[0].read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["extra"] == {"x": None, "y": [None, 1.0]}


def test_build_prompts_mixes_held_out_and_off_topic():
    held = [[{"role": "system", "content": "S"}, {"role": "user", "content": f"u{i}"},
             {"role": "assistant", "content": "a"}] for i in range(10)]
    off = ["o1", "o2", "o3", "o4"]
    prompts = build_prompts(held, off, 12)
    assert [p.kind for p in prompts].count("off-topic") == 3
    assert [p.label for p in prompts[:2]] == ["u0", "u1"]
    assert prompts[-1].messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "o3"}]
    # Small held-out splits are asked again rather than topped up with off-topic prompts: the classifier
    # scores the held-out replies.
    # Each held-out prompt is asked the same number of times (not u0 more often than u1).
    few = build_prompts(held[:2], off, 9)
    assert [p.kind for p in few] == ["held-out"] * 6 + ["off-topic"] * 3
    assert [p.label for p in few[:6]] == ["u0", "u1"] * 3
    assert [p.label for p in build_prompts(held[:6], off, 12)] == [f"u{i}" for i in range(6)] + ["o1", "o2", "o3"]
    greedy = build_prompts(held[:2], off, 9, repeat=False)  # the same prompt would give the same reply
    assert [p.kind for p in greedy] == ["held-out"] * 2 + ["off-topic"] * 3
    assert [p.kind for p in build_prompts(held, off, 2)] == ["held-out"] * 2
    assert [p.kind for p in build_prompts([], off, 5)] == ["off-topic"] * 4


def test_read_report_round_trip(setup):
    out = setup["tmp"] / "rt"
    assert run(setup, "--out", str(out)) == 0
    report = rep.read_report(out)
    assert report is not None and summarise(report) == summarise(rep.read_report(out.with_suffix(".json")))
    assert rep.read_report(setup["tmp"] / "absent") is None


def test_attribution_shares_count_replies_to_held_out_prompts_only():
    """The classifier learns only on-topic text, so an off-topic reply's side says little; its shares
    are reported apart and the headline shares are the held-out replies'."""
    corpus = [article(WRITER, 40, i) for i in range(12)]
    contrast = [article(GENERIC, 40, 100 + i) for i in range(12)]
    base = [article(GENERIC, 20, 200), article(GENERIC, 20, 201), article(WRITER, 20, 202)]
    adapter = [article(WRITER, 20, 300), article(WRITER, 20, 301), article(GENERIC, 20, 302)]
    out = run_module._attribution(corpus, corpus[:2], base, adapter, contrast, [], 20, 0, [True, True, False])
    assert out["scored"] == 2
    assert (out["base_share"], out["adapter_share"]) == (0.0, 1.0)
    assert (out["offtopic_base_share"], out["offtopic_adapter_share"]) == (1.0, 0.0)
    assert len(out["base_prob"]) == 3  # every reply's probability stays in the report


def test_small_held_out_splits_are_asked_again_with_other_seeds(setup):
    out = setup["tmp"] / "twice"
    assert run(setup, "--out", str(out), "--prompts", "20") == 0  # 7 held-out articles, 3 off-topic asks
    report = json.loads(out.with_suffix(".json").read_text())
    meta = report["meta"]
    assert (meta["heldout_prompts"], meta["heldout_distinct"], meta["offtopic_prompts"]) == (14, 7, 3)
    assert report["attribution"]["scored"] == 14
    first, again = report["samples"][0], report["samples"][7]
    assert first["prompt"] == again["prompt"] and first["adapter"] != again["adapter"]
    assert "14 asking 7 held-out instructions" in out.with_suffix(".md").read_text()


def test_a_distribution_found_twice_does_not_change_the_key(monkeypatch):
    """Run as `python -m` from a source checkout, the checkout's egg-info is found besides the installed
    dist-info; the evaluation is the same, so the key must be too."""
    from importlib import metadata

    from morris_mlx.evaluation import base_cache

    class Dist:
        def __init__(self, name: str, version: str) -> None:
            self.metadata, self.version = {"Name": name}, version

    installed = [Dist("numpy", "2.1.0"), Dist("morris-mlx", "0.1.0")]
    monkeypatch.setattr(metadata, "distributions", lambda: iter(installed))
    once = base_cache._installed()
    monkeypatch.setattr(metadata, "distributions", lambda: iter([*installed, Dist("morris_mlx", "0.1.0")]))
    assert base_cache._installed() == once
    monkeypatch.setattr(metadata, "distributions", lambda: iter([Dist("numpy", "2.2.0"), installed[1]]))
    assert base_cache._installed() != once
