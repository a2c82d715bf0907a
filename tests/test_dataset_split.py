"""Splitting by article and the varied instructions of `morris prepare`."""

from __future__ import annotations

from collections import Counter

import pytest

from morris_mlx.dataset.article import Article
from morris_mlx.dataset.instructions import INSTRUCTIONS_FILE, load_instructions
from morris_mlx.dataset.split import split_articles, split_sizes
from morris_mlx.errors import MorrisError
from morris_mlx.prompts import GENERATE_INSTRUCTION


def make(i: int, kind: str = "telecom", standfirst: str = "A standfirst.") -> Article:
    return Article(
        id=f"{kind[0]}{i:02d}",
        title=f"Headline {i}",
        standfirst=standfirst,
        topic=f"topic {i}",
        kind=kind,
        published="2024-01-01",
        text="",
        origin=f"test {i}",
    )


def corpus(n_telecom: int = 17, n_general: int = 16) -> list[Article]:
    return [make(i) for i in range(n_telecom)] + [make(i, "general") for i in range(n_general)]


def ids(splits: dict[str, list[Article]]) -> dict[str, list[str]]:
    return {name: [a.id for a in articles] for name, articles in splits.items()}


def test_corpus_sized_split_gives_valid_and_test_three_articles_each():
    splits = split_articles(corpus(), seed=42, valid_fraction=0.1, test_fraction=0.1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 27, "valid": 3, "test": 3}


def test_split_is_a_partition_and_deterministic_for_a_seed():
    articles = corpus()
    first = ids(split_articles(articles, 7, 0.1, 0.1))
    assert ids(split_articles(list(reversed(articles)), 7, 0.1, 0.1)) == first  # input order is irrelevant
    everything = first["train"] + first["valid"] + first["test"]
    assert sorted(everything) == sorted(a.id for a in articles)
    assert len(set(everything)) == len(everything)


def test_other_seeds_give_other_splits():
    articles = corpus()
    held_out = {seed: set(ids(split_articles(articles, seed, 0.1, 0.1))["test"]) for seed in range(6)}
    assert len({frozenset(v) for v in held_out.values()}) > 1


def test_split_is_stratified_by_kind():
    articles = corpus(n_telecom=40, n_general=20)
    for seed in range(5):
        splits = split_articles(articles, seed, 0.1, 0.1)
        for name in ("valid", "test"):
            kinds = Counter(a.kind for a in splits[name])
            assert kinds == {"telecom": 4, "general": 2}, (seed, name, kinds)


def test_adding_an_article_moves_few_others():
    base = ids(split_articles(corpus(), 3, 0.1, 0.1))
    grown = ids(split_articles(corpus() + [make(99)], 3, 0.1, 0.1))
    assert len(set(base["train"]) & set(grown["train"])) >= len(base["train"]) - 3


@pytest.mark.parametrize(
    ("n", "valid", "test", "expected"),
    [
        (3, 0.1, 0.1, (1, 1, 1)),
        (10, 0.1, 0.1, (8, 1, 1)),
        (20, 0.1, 0.1, (14, 3, 3)),
        (100, 0.1, 0.2, (70, 10, 20)),
        (4, 0.49, 0.49, (1, 1, 2)),
    ],
)
def test_split_sizes(n, valid, test, expected):
    assert split_sizes(n, valid, test) == expected


@pytest.mark.parametrize(("n_telecom", "n_general"), [(13, 12), (17, 16), (4, 3)])
def test_every_fold_allowed_holds_out_its_own_articles(n_telecom, n_general):
    articles = corpus(n_telecom, n_general)
    n_test = len(split_articles(articles, seed=1, valid_fraction=0.1, test_fraction=0.1)["test"])
    folds = len(articles) // n_test
    held: set[str] = set()
    for fold in range(folds):
        test = set(ids(split_articles(articles, 1, 0.1, 0.1, fold=fold))["test"])
        assert len(test) == n_test and not test & held
        held |= test
    with pytest.raises(MorrisError, match=f"make {folds} folds; pass --fold 0 to {folds - 1}"):
        split_articles(articles, 1, 0.1, 0.1, fold=folds)


def test_too_few_articles_is_an_error():
    with pytest.raises(MorrisError, match="only 2 article"):
        split_articles(corpus(2, 0), 0, 0.1, 0.1)


def test_instruction_file_has_the_generation_prompt_for_telecom():
    instructions = load_instructions()
    texts = [t.text for t in instructions.templates["telecom"]]
    assert GENERATE_INSTRUCTION in texts
    assert max(instructions.templates["telecom"], key=lambda t: t.weight).text == GENERATE_INSTRUCTION
    assert "Write a column about: {topic}" in [t.text for t in instructions.templates["general"]]


def test_instruction_choice_is_deterministic_and_varied():
    instructions = load_instructions()
    articles = corpus(40, 0)
    chosen = [instructions.choose(a, seed=42) for a in articles]
    assert chosen == [instructions.choose(a, seed=42) for a in articles]
    families = Counter(
        next(
            t.text
            for t in instructions.templates["telecom"]
            if t.text.format(topic=a.topic, headline=a.title, standfirst=a.standfirst) == c
        )
        for a, c in zip(articles, chosen, strict=True)
    )
    assert len(families) >= 3
    assert families.most_common(1)[0][0] == GENERATE_INSTRUCTION
    assert chosen != [instructions.choose(a, seed=43) for a in articles]


def test_templates_needing_a_missing_field_are_skipped():
    instructions = load_instructions()
    for i in range(30):
        text = instructions.choose(make(i, standfirst=""), seed=1)
        assert "Standfirst:" not in text and "audience: " not in text


def test_part_instructions_say_which_part():
    instructions = load_instructions()
    article = make(1)
    assert instructions.for_part("Write it.", article, 1, 1) == "Write it."
    assert "part 1 of 3" in instructions.for_part("Write it.", article, 1, 3)
    later = instructions.for_part("Write it.", article, 2, 3)
    assert later.startswith("Write it.") and "part 2 of 3" in later and "Headline 1" in later


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[[telecom]]\ntext = "About {subject}"\n', "unknown placeholder"),
        ('[[telecom]]\ntext = "About {topic"\n', "bad template"),
        ('[[telecom]]\ntext = "About {topic}"\nweight = 0\n', "weight"),
        ("telecom = 3\n", r"\[\[telecom\]\]"),
        ("[[telecom\n", "not valid TOML"),
    ],
)
def test_bad_instruction_files_are_refused(tmp_path, text, match):
    path = tmp_path / "instructions.toml"
    good_rest = INSTRUCTIONS_FILE.read_text().split("[[general]]", 1)[1]
    path.write_text(text + "\n[[general]]" + good_rest)
    with pytest.raises(MorrisError, match=match):
        load_instructions(path)
