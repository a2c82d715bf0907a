"""The bundled voices and the contrast corpus: one topic set, three different voices, and the voice an
adapter was trained on is the one it is asked in."""

from __future__ import annotations

import json
import re

import pytest

from morris_mlx import cli
from morris_mlx.adapter_format.provenance import trained_system_prompt
from morris_mlx.config import load_config
from morris_mlx.dataset.corpus import read_corpus
from morris_mlx.dataset.prepare import prepare
from morris_mlx.dataset.tokens import load_token_counter
from morris_mlx.paths import CONTRAST_DIR, bundled_voices, voice_dir
from morris_mlx.prompts import load_system_prompt


def topics(directory) -> dict[str, str]:
    return {a.topic: a.kind for a in read_corpus(directory)}


def test_two_voices_and_a_contrast_set_cover_the_same_topics():
    assert bundled_voices() == ["ledger", "morris"]
    morris = topics(voice_dir("morris"))
    for directory in (voice_dir("ledger"), CONTRAST_DIR):
        articles = read_corpus(directory)
        assert len(articles) >= 25
        assert topics(directory) == morris  # every bundled topic, telecom and general, once each
        assert all(120 <= len(a.text.split()) for a in articles)


def test_the_contrast_set_has_no_columnist_tics():
    for article in read_corpus(CONTRAST_DIR):
        assert "?" not in article.text and "!" not in article.text, article.id
        assert "could possibly go wrong" not in article.text.lower()
        narration = re.sub(r"[\"“][^\"”]*[\"”]", "", article.text)  # people quoted may say "I"; the writer not
        assert not re.search(r"\b(I|my|me)\b", narration), article.id


def test_the_second_voice_is_first_person_american_and_numbers_first():
    for article in read_corpus(voice_dir("ledger")):
        first = article.text.split(".")[0]
        assert re.search(r"\d|[Oo]ne|[Tt]wo|[Tt]hree|[Ff]our|[Ff]ive|[Ss]ix|[Ss]even|[Ee]ight|[Nn]ine|[Tt]en|"
                         r"[Ee]leven|[Tt]welve|[Tt]wenty|[Tt]hirty|[Ff]orty|[Ff]ifty|[Hh]undred|[Mm]illion", first)
        assert re.search(r"\bI\b", article.text), article.id
        assert "per cent" not in article.text and "colour" not in article.text
    assert "first person" in load_system_prompt(voice="ledger")
    assert load_system_prompt(voice="ledger") != load_system_prompt(voice="morris")


def test_prepare_takes_the_voice_with_one_setting(tiny_model, tmp_path):
    cfg = load_config(overrides={"data.voice": "ledger", "data.out": str(tmp_path / "out")})
    prepared = prepare(cfg, counter=load_token_counter(tiny_model))
    system = {ex.messages[0]["content"] for split in prepared.examples.values() for ex in split}
    assert system == {load_system_prompt(voice="ledger")}
    assert prepared.stats["settings"]["sources"] == ["bundled/voices/ledger"]


def test_an_unknown_voice_is_a_one_line_error(tiny_model, tmp_path, capsys):
    code = cli.main(["prepare", "--voice", "nobody", "--model", str(tiny_model), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "unknown voice 'nobody'" in err and "ledger, morris" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("voice", ["ledger", "morris"])
def test_an_adapter_is_asked_in_the_voice_it_was_trained_on(voice, tiny_model, tmp_path):
    from morris_mlx.training.records import write_provenance

    data = tmp_path / "data"
    assert cli.main(["prepare", "--voice", voice, "--model", str(tiny_model), "--out", str(data)]) == 0
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    write_provenance(adapter, load_config(), tiny_model, data, "torch", "peft", None, {})
    assert trained_system_prompt(adapter) == load_system_prompt(voice=voice)
    (adapter / "morris_adapter.json").write_text(json.dumps({"system_prompt": " "}))
    assert trained_system_prompt(adapter) is None  # nothing usable recorded: the default prompt applies


def test_folds_hold_out_disjoint_articles(tiny_model, tmp_path):
    counter = load_token_counter(tiny_model)
    held = []
    for fold in range(3):
        cfg = load_config(overrides={"data.fold": fold, "data.out": str(tmp_path / str(fold))})
        prepared = prepare(cfg, counter=counter)
        ids = {ex.article_id for ex in prepared.examples["test"]}
        train = {ex.article_id for ex in prepared.examples["train"]}
        assert ids and not ids & train
        held.append(ids)
    assert not (held[0] & held[1] or held[1] & held[2] or held[0] & held[2])
    with pytest.raises(Exception, match="fold 40 is out of range"):
        prepare(load_config(overrides={"data.fold": 40}), counter=counter)
