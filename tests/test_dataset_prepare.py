"""`morris prepare` end to end with the tiny model's tokenizer: outputs, parts, determinism, errors."""

from __future__ import annotations

import hashlib
import json
import types
from collections import Counter
from pathlib import Path

import pytest

from morris_mlx import cli
from morris_mlx.config import Config, load_config
from morris_mlx.dataset import load_split
from morris_mlx.dataset.chat import split_sentences
from morris_mlx.dataset.corpus import CORPUS_DIR
from morris_mlx.dataset.prepare import OUTPUT_FILES, prepare, write_prepared
from morris_mlx.dataset.tokens import load_token_counter
from morris_mlx.errors import MorrisError
from morris_mlx.prompts import load_system_prompt

ARTICLES = {
    "t01": (
        "telecom",
        "network slicing",
        "Slicing is the zombie that will not lie down",
        "Operators keep promising paid slices; customers keep not paying.",
        [
            "Like a corpse propped up at its own wake, network slicing keeps being wheeled out at trade "
            "shows. The operators insist it is alive. The guests glance at the canapés and say nothing.",
            "The pitch has not changed in six years. A factory, a stadium or a hospital will pay extra for a "
            "guaranteed lane through the mobile network (who would not?). The trouble is that nobody has "
            "been able to say how much extra, or why Wi-Fi would not do.",
            "What could possibly go wrong? Plenty, if the capex has already been spent on a standalone core "
            "that nobody is using.",
        ],
    ),
    "t02": (
        "telecom",
        "open RAN",
        "Open RAN's mourners gather early",
        "The vendor revolution ended with the old vendors in charge.",
        [
            "The funeral of open RAN has been held several times, each attended by the same analysts in the "
            "same black suits. It was supposed to break the grip of three big kit makers on the radio "
            "network. Instead one of them now sells most of it.",
            "Europe's operators talked up interfaces and interoperability while quietly signing renewals. "
            "The start-ups ran out of cash, one after another, like candles in a draughty chapel.",
            "The lesson, if there is one, is that nobody ever got fired for buying from a giant. They just "
            "got older.",
        ],
    ),
    "t03": (
        "telecom",
        "6G",
        "6G arrives before anyone wanted it",
        "The industry is planning its next generation while the last one still loses money.",
        [
            "Standards bodies have begun work on 6G with the enthusiasm of a gambler who has just lost the "
            "house and spotted another casino. The slides promise holograms, sensing and a digital twin of "
            "everything.",
            "Operators have heard this before. Five years ago 5G was meant to transform industry, and most "
            "of them are still waiting for the transformation to show up in the accounts.",
            "The sensible course would be to skip a generation. The industry has never knowingly taken the "
            "sensible course.",
        ],
    ),
    "t04": (
        "telecom",
        "tower sales",
        "Selling the towers to pay for the towers",
        "Telcos flog their masts and then rent them back at a premium.",
        [
            "There is a particular logic to selling your house to a landlord and then paying him rent for "
            "the privilege of living in it. Telcos across Europe have discovered it with gusto.",
            "The towers fetch a handsome multiple on the day. The lease payments then run for decades, rising "
            "with inflation, like ivy up the side of a crumbling manor.",
            "Shareholders get a special dividend. The next chief executive gets the bill, and a network that "
            "someone else owns.",
        ],
    ),
    "g01": (
        "general",
        "smart parking",
        "The parking app that ate a city",
        "A council's sensors mistook puddles for cars.",
        [
            "There is a silence that settles over a car park at dusk when the barrier refuses to lift and the "
            "queue behind resembles a funeral cortege. Everyone stares at an app, waiting to be told they "
            "exist.",
            "The council promised that sensors in four thousand bays would end the hunt for a space. After "
            "heavy rain the app reported no free spaces at all, while the real car parks sat empty.",
            "The contract runs for seven years. Drivers have gone back to circling the block and swearing, "
            "which at least works offline.",
        ],
    ),
    "g02": (
        "general",
        "self-checkout",
        "Self-checkout and the unexpected item in the bagging area",
        "Supermarkets turned shoppers into unpaid staff and called it convenience.",
        [
            "Somewhere in a supermarket a machine is accusing a pensioner of theft. The unexpected item in the "
            "bagging area is, as ever, her handbag.",
            "The tills were sold as a way to shorten queues. They have mostly shortened the payroll, while "
            "the queue has moved to the one harassed assistant who can approve a bottle of wine.",
            "The shops now say they will bring back staffed tills. Progress, in retail, is a circle with a "
            "loyalty card.",
        ],
    ),
}


def write_article(
    directory: Path, stem: str, kind: str, topic: str, title: str, standfirst: str, paragraphs: list[str]
) -> Path:
    path = directory / f"{stem}.md"
    front = f"---\ntitle: {title}\nstandfirst: {standfirst}\ntopic: {topic}\nkind: {kind}\npublished: 2024-03-01\n---\n"
    path.write_text(front + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def corpus_dir(tmp_path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    for stem, fields in ARTICLES.items():
        write_article(directory, stem, *fields)
    return directory


def config(tmp_path: Path, **data) -> Config:
    return load_config(
        None,
        {
            "data.out": str(tmp_path / "out"),
            "data.min_words": 40,
            **{f"data.{k}": v for k, v in data.items()},
        },
    )


def run(corpus_dir: Path, tiny_model: Path, out: Path, *extra: str) -> int:
    return cli.main(
        [
            "prepare",
            "--corpus",
            str(corpus_dir),
            "--model",
            str(tiny_model),
            "--out",
            str(out),
            "--min-words",
            "40",
            *extra,
        ]
    )


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def raw_line(url: str, title: str, body: str, **extra) -> str:
    record = {
        "url": url,
        "title": title,
        "standfirst": "",
        "author": "Iain Morris",
        "published": "2024-01-01",
        "body": body,
        "source": "lightreading",
        "fetched_at": "2024-01-02T00:00:00Z",
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
        **extra,
    }
    return json.dumps(record) + "\n"


def test_cli_writes_splits_that_mlx_lm_reads(corpus_dir, tiny_model, tmp_path, capsys):
    out = tmp_path / "processed"
    assert run(corpus_dir, tiny_model, out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    summary = capsys.readouterr().out
    assert "prepared 6 of 6 articles" in summary and "train" in summary and "dropped: none" in summary

    stats = json.loads((out / "stats.json").read_text())
    assert stats["articles"] == {"train": 4, "valid": 1, "test": 1}
    assert stats["tokens"]["all"]["count"] == sum(stats["examples"].values())
    split_ids = [a["id"] for s in ("train", "valid", "test") for a in stats["split_articles"][s]]
    assert sorted(split_ids) == sorted(ARTICLES)

    from mlx_lm.tuner.datasets import load_local_dataset
    from mlx_lm.utils import load_tokenizer as mlx_load_tokenizer

    tokenizer = mlx_load_tokenizer(tiny_model)
    train, valid, test = load_local_dataset(out, tokenizer, types.SimpleNamespace(mask_prompt=True))
    for dataset in (train, valid, test):
        assert len(dataset) >= 1
        for i in range(len(dataset)):
            tokens, offset = dataset.process(dataset[i])
            assert 0 < offset < len(tokens) <= stats["settings"]["max_seq_length"]

    system = load_system_prompt()
    for split in ("train", "valid", "test"):
        for example in load_split(out, split):
            system_turn, user, reply = example["messages"]
            assert system_turn == {"role": "system", "content": system}
            _, topic, title, standfirst, _ = next(
                a for a in ARTICLES.values() if f"# {a[2]}\n" in reply["content"]
            )
            assert user["role"] == "user"
            assert topic in user["content"] or title in user["content"] or standfirst in user["content"]
            assert reply["content"].startswith(f"# {title}\n\n")


def test_rerun_is_byte_identical_and_other_seed_differs(corpus_dir, tiny_model, tmp_path):
    assert run(corpus_dir, tiny_model, tmp_path / "a", "--seed", "5") == 0
    first = digests(tmp_path / "a")
    assert run(corpus_dir, tiny_model, tmp_path / "a", "--seed", "5") == 0  # over its own output
    assert digests(tmp_path / "a") == first
    assert run(corpus_dir, tiny_model, tmp_path / "b", "--seed", "5") == 0
    other = digests(tmp_path / "b")
    del first["morris_config.json"], other["morris_config.json"]  # it records the --out folder
    assert other == first
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.old"))
    others = []
    for seed in (6, 7, 8):
        assert run(corpus_dir, tiny_model, tmp_path / f"s{seed}", "--seed", str(seed)) == 0
        others.append((tmp_path / f"s{seed}" / "test.jsonl").read_bytes())
    assert any(o != (tmp_path / "a" / "test.jsonl").read_bytes() for o in others)


def test_long_articles_are_cut_into_parts_at_paragraphs(corpus_dir, tiny_model, tmp_path):
    counter = load_token_counter(tiny_model)
    cfg = config(tmp_path, max_seq_length=560)
    prepared = prepare(cfg, corpus_dir=corpus_dir, counter=counter)
    assert prepared.stats["cut_articles"] >= 3
    for split, examples in prepared.examples.items():
        by_article: dict[str, list] = {}
        for example in examples:
            assert example.tokens == counter.chat(example.messages) <= 560, split
            by_article.setdefault(example.article_id, []).append(example)
        for article_id, parts in by_article.items():
            assert [p.part for p in parts] == list(range(1, len(parts) + 1))
            kind, _, title, _, paragraphs = ARTICLES[article_id]
            replies = [p.messages[2]["content"] for p in parts]
            assert replies[0].startswith(f"# {title}\n\n")
            bodies = [replies[0].split("\n\n", 1)[1]] + replies[1:]
            if len(parts) > 1:
                for n, part in enumerate(parts, start=1):
                    assert f"part {n} of {len(parts)}" in part.messages[1]["content"]
                assert not any(r.startswith("#") for r in replies[1:])
            # nothing lost or reordered, and every part ends where a sentence ends
            assert " ".join(" ".join(bodies).split()) == " ".join(" ".join(paragraphs).split())
            assert all(b.rstrip().endswith((".", "?", "!")) for b in bodies)


def test_train_parts_add_parts_beside_whole_training_articles(corpus_dir, tiny_model, tmp_path):
    counter = load_token_counter(tiny_model)
    whole = prepare(config(tmp_path, max_seq_length=4096), corpus_dir=corpus_dir, counter=counter)
    both = prepare(config(tmp_path, max_seq_length=4096, train_parts=560), corpus_dir=corpus_dir, counter=counter)
    # validation and test, and every whole training example, are untouched
    for split in ("valid", "test"):
        assert both.examples[split] == whole.examples[split]
    assert [e for e in both.examples["train"] if not e.extra] == whole.examples["train"]
    extras = [e for e in both.examples["train"] if e.extra]
    long_ids = {e.article_id for e in whole.examples["train"] if e.tokens > 560}
    assert long_ids and {e.article_id for e in extras} == long_ids
    assert both.stats["train_parts_beside"] == len(extras)
    assert both.stats["examples"]["train"] == len(whole.examples["train"]) + len(extras)
    assert both.stats["cut_articles"] == whole.stats["cut_articles"]
    assert both.stats["settings"]["train_parts"] == 560
    for article_id in long_ids:
        parts = [e for e in extras if e.article_id == article_id]
        assert [p.part for p in parts] == list(range(1, len(parts) + 1)) and len(parts) > 1
        assert all(p.tokens == counter.chat(p.messages) <= 560 for p in parts)
        assert all(f"part {p.part} of {len(parts)}" in p.messages[1]["content"] for p in parts)
        # the parts hold the whole article's text, in order
        title = ARTICLES[article_id][2]
        bodies = [p.messages[2]["content"].removeprefix(f"# {title}\n\n") for p in parts]
        assert " ".join(" ".join(bodies).split()) == " ".join(" ".join(ARTICLES[article_id][4]).split())


def test_parts_per_article_keeps_that_many_parts_of_each_article_picked_by_seed(corpus_dir, tiny_model, tmp_path):
    counter = load_token_counter(tiny_model)
    for n in range(4):  # long training articles, so that each has several parts to pick from
        paragraphs = [f"{text} {text}" for text in ARTICLES["t04"][4] * 3]
        write_article(corpus_dir, f"t9{n}", "telecom", "towers", f"Towers, again {n}", "More.", paragraphs)

    def extras(**settings: int) -> list:
        cfg = config(tmp_path, max_seq_length=4096, train_parts=560, test_fraction=0.01, **settings)
        return [e for e in prepare(cfg, corpus_dir=corpus_dir, counter=counter).examples["train"] if e.extra]

    every = extras()
    one = extras(parts_per_article=1)
    counts = Counter(e.article_id for e in every)
    assert max(counts.values()) > 2, "the corpus must hold articles of several parts for this test"
    # one part of every article that had parts, and each is one of that article's parts, labels kept
    assert sorted(e.article_id for e in one) == sorted(counts)
    assert all(e in every for e in one)
    two = extras(parts_per_article=2)
    assert Counter(e.article_id for e in two) == {a: min(n, 2) for a, n in counts.items()}
    assert all([p.part for p in two if p.article_id == a] == sorted(p.part for p in two if p.article_id == a)
               for a in counts)
    # picked at random, not the opening every time, and the same parts on a rerun
    assert {e.part for e in one} != {1}
    assert extras(parts_per_article=1) == one
    assert extras(parts_per_article=max(counts.values())) == every


def test_parts_per_article_needs_train_parts(tmp_path):
    with pytest.raises(MorrisError, match="data.parts_per_article"):
        load_config(None, {"data.parts_per_article": 1})
    with pytest.raises(MorrisError, match="data.parts_per_article"):
        load_config(None, {"data.parts_per_article": -1, "data.train_parts": 512})


def test_train_parts_skip_an_article_that_cannot_be_cut_but_keep_it_whole(
    corpus_dir, tiny_model, tmp_path, caplog
):
    endless = "The operator said " + ", and then ".join(f"it would invest in thing {i}" for i in range(80)) + "."
    write_article(corpus_dir, "t08", "telecom", "waffle", "Waffle", "Endless.", ["It began well. Then it went on. And on.", endless])
    cfg = config(tmp_path, max_seq_length=4096, train_parts=560, valid_fraction=0.01, test_fraction=0.01)
    prepared = prepare(cfg, corpus_dir=corpus_dir, counter=load_token_counter(tiny_model))
    mine = [e for split in prepared.examples.values() for e in split if e.article_id == "t08"]
    assert "t08" in [a["id"] for a in prepared.stats["split_articles"]["train"]]
    assert [(e.parts, e.extra) for e in mine] == [(1, False)]
    assert "no parts beside the whole" in caplog.text
    assert prepared.stats["train_parts_beside"] > 0


def test_train_parts_too_small_for_the_prompt_names_the_flag(corpus_dir, tiny_model, tmp_path):
    with pytest.raises(MorrisError, match="--train-parts 64 leaves no room"):
        prepare(config(tmp_path, train_parts=64), corpus_dir=corpus_dir, counter=load_token_counter(tiny_model))


def test_train_parts_are_written_and_summarised(corpus_dir, tiny_model, tmp_path, capsys):
    assert run(corpus_dir, tiny_model, tmp_path / "p", "--train-parts", "560", "--max-seq-length", "4096") == 0
    stats = json.loads((tmp_path / "p" / "stats.json").read_text())
    assert stats["train_parts_beside"] > 0
    assert len(load_split(tmp_path / "p", "train")) == stats["examples"]["train"]
    assert f"train also holds {stats['train_parts_beside']} part(s)" in capsys.readouterr().out
    assert run(corpus_dir, tiny_model, tmp_path / "q", "--train-parts", "560", "--max-seq-length", "4096",
               "--parts-per-article", "1") == 0
    one = json.loads((tmp_path / "q" / "stats.json").read_text())
    assert one["settings"]["parts_per_article"] == 1
    assert 0 < one["train_parts_beside"] <= one["articles"]["train"]
    assert "tokens each, 1 per article" in capsys.readouterr().out


def test_open_parts_mark_every_part_but_an_articles_last(corpus_dir, tiny_model, tmp_path, capsys):
    assert run(corpus_dir, tiny_model, tmp_path / "open", "--max-seq-length", "560", "--open-parts") == 0
    assert "trained without an ending (open_parts)" in capsys.readouterr().out
    assert run(corpus_dir, tiny_model, tmp_path / "closed", "--max-seq-length", "560") == 0
    assert "without an ending" not in capsys.readouterr().out
    stats = json.loads((tmp_path / "open" / "stats.json").read_text())
    assert stats["settings"]["open_parts"] is True and stats["cut_articles"] >= 3
    cut = sum(a["parts"] - 1 for s in ("train", "valid", "test") for a in stats["split_articles"][s])
    opened = 0
    for split in ("train", "valid", "test"):
        open_rows, closed_rows = load_split(tmp_path / "open", split), load_split(tmp_path / "closed", split)
        # the same examples in the same order; only the marker differs
        assert [r["messages"] for r in open_rows] == [r["messages"] for r in closed_rows]
        assert not any("continues" in r for r in closed_rows)
        for row, following in zip(open_rows, [*open_rows[1:], None], strict=True):
            # a part continues exactly when the next example is the same article's next part
            next_part = following is not None and "part " in following["messages"][1]["content"] and not (
                following["messages"][2]["content"].startswith("# ")
            )
            assert row.get("continues", False) is next_part
            opened += row.get("continues", False)
    assert opened == cut > 0


def test_paragraph_too_long_is_cut_between_sentences(corpus_dir, tiny_model, tmp_path):
    sentences = [f"Sentence number {i} says the operator lost money again in quarter {i}." for i in range(40)]
    write_article(corpus_dir, "t09", "telecom", "losses", "Losses", "More losses.", [" ".join(sentences)])
    prepared = prepare(
        config(tmp_path, max_seq_length=560), corpus_dir=corpus_dir, counter=load_token_counter(tiny_model)
    )
    parts = [e for s in prepared.examples.values() for e in s if e.article_id == "t09"]
    assert len(parts) >= 2
    for part in parts:
        assert part.tokens <= 560
        body = part.messages[2]["content"].removeprefix("# Losses\n\n")
        assert split_sentences(body) == [s for s in sentences if s in body]


def test_single_sentence_over_the_limit_drops_the_article(corpus_dir, tiny_model, tmp_path):
    endless = (
        "The operator said " + ", and then ".join(f"it would invest in thing {i}" for i in range(80)) + "."
    )
    write_article(
        corpus_dir,
        "t08",
        "telecom",
        "waffle",
        "Waffle",
        "Endless.",
        ["It began well. Then it went on. And on.", endless],
    )
    prepared = prepare(
        config(tmp_path, max_seq_length=560), corpus_dir=corpus_dir, counter=load_token_counter(tiny_model)
    )
    assert prepared.stats["dropped"] == {"sentence_too_long": 1}
    assert prepared.stats["dropped_items"][0]["id"] == "t08"


def test_limit_too_small_for_the_prompt_is_an_error(corpus_dir, tiny_model, tmp_path):
    with pytest.raises(MorrisError, match="raise --max-seq-length"):
        prepare(
            config(tmp_path, max_seq_length=64), corpus_dir=corpus_dir, counter=load_token_counter(tiny_model)
        )


def test_no_general_drops_general_pieces(corpus_dir, tiny_model, tmp_path, capsys):
    assert run(corpus_dir, tiny_model, tmp_path / "out", "--no-general") == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["dropped"] == {"general_excluded": 2}
    assert all(a["kind"] == "telecom" for s in stats["split_articles"].values() for a in s)
    assert "general_excluded 2" in capsys.readouterr().out


def test_raw_jsonl_is_cleaned_and_deduplicated(corpus_dir, tiny_model, tmp_path):
    raw = tmp_path / "raw.jsonl"
    lines = []
    for stem, (_, _, title, _, paragraphs) in ARTICLES.items():
        body = "\n\n".join(["By Iain Morris", *paragraphs, "Related: more doom", "Advertisement"])
        lines.append(raw_line(f"https://example.com/{stem}", title, body))
    _, _, title, _, paragraphs = ARTICLES["t01"]
    lines.append(raw_line("https://example.com/t01-copy", title, "\n\n".join(paragraphs)))
    near = "\n\n".join(paragraphs).replace("say nothing", "say absolutely nothing")
    lines.append(raw_line("https://example.com/t01-edited", title, near))
    lines.append(raw_line("https://example.com/stub", "A stub", "Too short to train on."))
    lines.append("\n")
    raw.write_text("".join(lines))
    prepared = prepare(config(tmp_path, raw=[str(raw)]), counter=load_token_counter(tiny_model))
    stats = prepared.stats
    assert stats["dropped"] == {"duplicate": 1, "near_duplicate": 1, "too_short": 1}
    assert stats["removed_paragraphs"] == {"boilerplate": 12, "byline": 6}
    assert sum(stats["articles"].values()) == 6
    user_turns = [e.messages[1]["content"] for s in prepared.examples.values() for e in s]
    assert all("Standfirst" not in u for u in user_turns)  # the raw items have no standfirst


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ('{"url": "u", "title": "t", "body": "b"}\nnot json\n', "line 2: not valid JSON"),
        ('{"url": "u", "title": "t"}\n', "line 1: missing field 'body'"),
        ('["a list"]\n', "line 1: expected a JSON object"),
        ('{"url": "u", "title": 3, "body": "b"}\n', "line 1: field 'title' must be a string"),
        ('{"url": "u", "title": "t", "body": "b", "kind": "sport"}\n', "line 1: field 'kind'"),
    ],
)
def test_bad_raw_files_fail_naming_file_and_line(tmp_path, tiny_model, content, message, capsys):
    raw = tmp_path / "bad.jsonl"
    raw.write_text(content)
    out = tmp_path / "out"
    assert cli.main(["prepare", "--raw", str(raw), "--model", str(tiny_model), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(raw) in err and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_missing_raw_file_and_unknown_model(tmp_path, corpus_dir, capsys):
    assert cli.main(["prepare", "--raw", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.jsonl does not exist" in capsys.readouterr().err
    assert run(corpus_dir, tmp_path / "no-model", tmp_path / "o") == 2
    assert "no-model does not exist" in capsys.readouterr().err
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    with pytest.raises(MorrisError, match="cannot load a tokenizer from .*empty-model"):
        load_token_counter(not_a_model)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("title: x\n", "line 1: expected '---'"),
        (
            "---\ntitle: T\nstandfirst: S\ntopic: t\nkind: telecom\npublished: 2024-01-01\n",
            "line 7: expected 'key: value'",
        ),
        (
            "---\ntitle: T\nstandfirst: S\nkind: telecom\npublished: 2024-01-01\n---\n",
            "line 6: front matter is missing 'topic'",
        ),
        ("---\ntitle: T\nstandfirst: S\ntopic: t\nkind: sport\npublished: 2024-01-01\n---\n", "kind must be"),
        (
            "---\ntitle: T\nstandfirst: S\ntopic: t\nkind: telecom\npublished: May 1\n---\n",
            "published must be",
        ),
        ("---\ntitle T\n---\n", "line 2: expected 'key: value'"),
    ],
)
def test_bad_corpus_files_fail_naming_file_and_line(corpus_dir, tiny_model, tmp_path, front, message, capsys):
    (corpus_dir / "t05.md").write_text(front + "Body text that is fine.\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.jsonl").write_text("old\n")
    assert run(corpus_dir, tiny_model, out) == 2
    err = capsys.readouterr().err
    assert "t05.md" in err and message in err
    assert [p.name for p in out.iterdir()] == ["train.jsonl"] and (out / "train.jsonl").read_text() == "old\n"


def test_output_folder_with_other_files_keeps_them(corpus_dir, tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o2770)  # a group-shared folder stays one
    (out / "notes.txt").write_text("mine")
    (out / "stats.json").write_text("{}")
    inode = (out / "notes.txt").stat().st_ino
    prepared = prepare(config(tmp_path), corpus_dir=corpus_dir, counter=load_token_counter(tiny_model))
    write_prepared(prepared, out, config(tmp_path))
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "notes.txt").stat().st_ino == inode  # the same file, linked over, not a copy
    assert out.stat().st_mode & 0o7777 == 0o2770
    assert json.loads((out / "stats.json").read_text())["articles_read"] == 6
    assert sorted(p.name for p in out.iterdir()) == sorted((*OUTPUT_FILES, "notes.txt"))


def test_a_failed_write_into_a_shared_folder_leaves_the_old_set_whole(
    corpus_dir, tiny_model, tmp_path, monkeypatch
):
    """The folder holds other files, and the write dies after the first split: the old splits and stats
    stay as they were (never a new train beside an old test), and the other files are untouched."""
    import morris_mlx.dataset.prepare as prepare_module

    out = tmp_path / "out"
    (out / "raw").mkdir(parents=True)
    (out / "raw" / "articles.jsonl").write_text("mine\n")
    (out / ".DS_Store").write_text("finder")
    cfg = config(tmp_path)
    prepared = prepare(cfg, corpus_dir=corpus_dir, counter=load_token_counter(tiny_model))
    write_prepared(prepared, out, cfg)
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    real_write = prepare_module.write_jsonl

    def die_after_first(path, rows):
        real_write(path, rows)
        if Path(path).name == "train.jsonl":
            raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "write_jsonl", die_after_first)
    other_cfg = config(tmp_path, seed=7)
    other = prepare(other_cfg, corpus_dir=corpus_dir, counter=load_token_counter(tiny_model))
    assert other.examples["train"] != prepared.examples["train"]
    with pytest.raises(KeyboardInterrupt):
        write_prepared(other, out, other_cfg)
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and before["raw/articles.jsonl"] == b"mine\n" and ".DS_Store" in before
    assert not (tmp_path / "out.partial").exists() and not (tmp_path / "out.old").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("{bad\n", "line 2: not valid JSON"),
        ('{"text": "x"}\n', "line 2: missing a non-empty 'messages'"),
        ('{"messages": [{"role": "user", "content": "hi"}]}\n', "last message must be the assistant"),
        ('{"messages": [{"role": "robot", "content": "hi"}]}\n', "has role 'robot'"),
        ('{"messages": [{"role": "assistant"}]}\n', "no text 'content'"),
        ('{"messages": [{"role": "assistant", "content": "x"}], "continues": "yes"}\n', "'continues' must be"),
    ],
)
def test_load_split_validates(tmp_path, tiny_data, content, message):
    (tiny_data / "valid.jsonl").write_text("\n" + content if content else "")
    assert len(load_split(tiny_data, "train")) == 16
    with pytest.raises(MorrisError, match=message):
        load_split(tiny_data, "valid")
    with pytest.raises(MorrisError, match="does not exist"):
        load_split(tmp_path / "nowhere", "train")


def test_bundled_corpus_prepares_cleanly(tiny_model, tmp_path):
    assert len(list(CORPUS_DIR.glob("*.md"))) >= 30  # the issue asks for at least 30 bundled articles
    cfg = load_config(None, {"data.out": str(tmp_path / "out"), "data.max_seq_length": 2048})
    prepared = prepare(cfg, counter=load_token_counter(tiny_model))
    stats = prepared.stats
    assert stats["dropped"] == {}, stats["dropped_items"]
    assert stats["articles"]["valid"] >= 3 and stats["articles"]["test"] >= 3
    assert stats["kinds"]["train"].keys() == {"telecom", "general"}
    assert all(e.tokens <= 2048 for s in prepared.examples.values() for e in s)
