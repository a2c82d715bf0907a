"""The TUI's plain parts: parameter validation, the article's Markdown and attribution, the history
store, the model session's lazy loading, and the `morris tui` command's argument checks."""

from __future__ import annotations

import json

import pytest
from tui_fakes import FakeBackend, make_model_dir

from morris_mlx.cli import main as cli_main
from morris_mlx.config import Config, GenerateConfig
from morris_mlx.tui.article import Article, default_save_path, save_markdown, to_markdown, writer_name
from morris_mlx.tui.history import History, history_path
from morris_mlx.tui.params import ParamError, ParamText, parse_params
from morris_mlx.tui.session import Cancelled, ModelLoadError, ModelSession


def text(**kw) -> ParamText:
    base = {"temp": "0.7", "top_p": "0.9", "max_tokens": "400", "seed": "", "system_prompt": ""}
    return ParamText(**{**base, **kw})


def test_params_parse_and_name_the_bad_field():
    settings = parse_params(text(temp="0", seed="7", system_prompt="  Be brief.  "), GenerateConfig())
    assert settings.temp == 0.0 and settings.seed == 7 and settings.system_prompt == "Be brief."
    assert parse_params(text(), GenerateConfig()).seed is None
    for field, value, message in [
        ("temp", "hot", "Temperature: 'hot' is not a number"),
        ("top_p", "0", "Top-p must be in (0, 1]"),
        ("max_tokens", "1.5", "Max tokens: '1.5' is not a whole number"),
        ("seed", "-1", "Seed must be between 0 and"),
    ]:
        with pytest.raises(ParamError) as info:
            parse_params(text(**{field: value}), GenerateConfig())
        assert info.value.field == field and message in str(info.value)
    round_trip = ParamText.from_settings(GenerateConfig(temp=0.25, seed=3))
    assert (round_trip.temp, round_trip.seed, round_trip.system_prompt) == ("0.25", "3", "")


def test_markdown_carries_the_attribution(tmp_path):
    article = Article(topic="Open RAN", text="# Title\n\nBody.  \n", model="SmolLM2", adapter="morris-r16",
                      backend="torch", finish_reason="stopped", created="2026-03-01T10:00:00+00:00")
    doc = to_markdown(article, "Iain Morris")
    assert doc.startswith("# Title\n\nBody.\n\n---\n\n")
    assert ("*AI-generated in the style of Iain Morris by morris_mlx (SmolLM2 with adapter morris-r16) "
            "on 2026-03-01 (stopped before the end). Not written by Iain Morris.*") in doc
    first = default_save_path(article)
    assert first.name == "2026-03-01-open-ran.md"
    save_markdown(article, "Iain Morris", first)
    assert default_save_path(article).name == "2026-03-01-open-ran-2.md"  # never overwrites
    assert first.read_text() == doc
    assert writer_name("no-such-profile") == "Iain Morris"
    profile = tmp_path / "site.toml"
    profile.write_text('author = "Jane Doe"\n')
    assert writer_name(str(profile)) == "Jane Doe"


def test_history_appends_searches_and_skips_bad_lines():
    history = History()
    assert history.path == history_path() and history.entries() == []
    history.add(Article(topic="fibre", text="Copper is dead.", model="m", adapter=None, backend="mlx"))
    history.add(Article(topic="5G", text="A flop, again.", model="m", adapter="r16", backend="mlx"))
    with open(history.path, "a") as fh:
        fh.write('{"cut in half by a cra\n' + json.dumps({"no": "text"}) + "\n")
    history.add(Article(topic="6G", text="Here we go again.", model="m", adapter="r16", backend="mlx"))
    assert [e.article.topic for e in history.entries()] == ["6G", "5G", "fibre"]
    assert [e.article.topic for e in history.search("AGAIN r16")] == ["6G", "5G"]
    assert [e.article.topic for e in history.search("copper")] == ["fibre"]
    assert history.search("satellite") == []


def test_session_loads_lazily_swaps_adapters_and_cancels(tmp_path):
    backend = FakeBackend()
    model = make_model_dir(tmp_path)
    states = []
    session = ModelSession(lambda name: backend, Config(), model_dir=model, report=lambda *s: states.append(s))
    assert backend.loads == []
    with session.use(lambda: False) as generator:
        assert generator.adapter_path is None
    adapter = tmp_path / "adapter-a"
    session.choose_adapter(adapter)
    with session.use(lambda: False) as again:
        assert again is generator and generator.adapter_path == adapter  # swapped, not reloaded
    assert len(backend.loads) == 1
    assert states[0] == ("loading", "loading fake-model") and states[-1][0] == "ready"
    with pytest.raises(Cancelled):
        with session.use(lambda: True):
            pass
    session.choose_model(tmp_path / "missing")
    with pytest.raises(Exception, match="does not exist"):
        with session.use(lambda: False):
            pass
    backend.load_errors = [RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")]
    session.choose_model(make_model_dir(tmp_path, "other"))
    with pytest.raises(ModelLoadError, match="out of memory while loading other"):
        with session.use(lambda: False):
            pass
    assert states[-1][0] == "error"


def test_command_refuses_bad_paths_before_starting(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["tui", "--help"])
    assert info.value.code == 0
    assert "morris tui --adapter-path" in capsys.readouterr().out
    assert cli_main(["tui", "--model", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["tui", "--model", str(make_model_dir(tmp_path)), "--adapter-path", "ghost"]) == 2
    assert "no adapter named 'ghost'" in capsys.readouterr().err
