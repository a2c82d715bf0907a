"""The write screen on the fake backend: stream, stop, validate, fail and recover, save, copy, history,
command palette, lazy loading, and a screenshot of the screen."""

from __future__ import annotations

import asyncio
import threading

from textual.widgets import Input, Markdown
from tui_fakes import (
    ARTICLE,
    FakeBackend,
    make_model_dir,
    record_notifications,
    svg_text,
    type_text,
    wait_until,
)

from morris_mlx.errors import MorrisError
from morris_mlx.tui.app import create_app
from morris_mlx.tui.article import Article
from morris_mlx.tui.history import History
from morris_mlx.tui.screens.history import HistoryScreen
from morris_mlx.tui.screens.save import SaveScreen
from morris_mlx.tui.screens.train import TrainScreen
from morris_mlx.tui.screens.write import WriteScreen

SIZE = (140, 44)


def make_app(tmp_path, backend: FakeBackend, **kw):
    model = make_model_dir(tmp_path)
    return create_app(backend_factory=lambda name: backend, model_dir=model, **kw)


def run(scenario):
    asyncio.run(scenario())


def write_screen(app) -> WriteScreen:
    assert isinstance(app.screen, WriteScreen)
    return app.screen


async def write(pilot, topic: str) -> WriteScreen:
    screen = write_screen(pilot.app)
    screen.query_one("#topic", Input).focus()
    await type_text(pilot, topic)
    await pilot.press("enter")
    return screen


async def finished(pilot, screen: WriteScreen) -> None:
    await wait_until(pilot, lambda: screen.worker is not None and not screen.generating, what="generation end")
    await pilot.pause()


def test_generate_streams_markdown_and_records_history(tmp_path):
    backend = FakeBackend()
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await write(pilot, "open RAN")
            await finished(pilot, screen)
            expected = "".join(ARTICLE)
            assert screen.article is not None
            assert screen.article.text == expected
            assert screen.article.finish_reason == "length"
            assert screen.query_one("#article", Markdown).source == expected
            status = str(screen.query_one("#gen-status").render())
            assert "42.0 tok/s" in status and "reached max tokens" in status
            # The request carried the topic and the default settings from the fields.
            call = backend.calls[0]
            assert call["messages"][-1]["content"].endswith("about: open RAN")
            assert call["settings"].temp == app.config.generate.temp
            assert call["settings"].max_tokens == app.config.generate.max_tokens
            text = svg_text(app.export_screenshot())
            assert "the industry bet on open RAN" in text
            assert "Temperature" in text and "Max tokens" in text
        entries = History().entries()
        assert [e.article.topic for e in entries] == ["open RAN"]
        assert entries[0].article.model == "fake-model"

    run(scenario)
    assert backend.loads and len(backend.loads) == 1  # loaded lazily, once


def test_stop_returns_the_partial_article(tmp_path):
    backend = FakeBackend(endless=True, delay=0.03)
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write(pilot, "fibre")
            await wait_until(pilot, lambda: len(backend.calls) == 1 and screen.generating, what="streaming")
            await wait_until(
                pilot, lambda: "funeral" in (screen.query_one("#article", Markdown).source or ""), what="text"
            )
            await pilot.press("escape")
            await finished(pilot, screen)
            article = screen.article
            assert article is not None and article.finish_reason == "stopped"
            # Stopped somewhere after "funeral": the partial is exactly what streamed so far, a prefix of
            # the endless stream (how far it got depends on the machine's speed).
            full = "".join(ARTICLE)
            streamed = article.text
            assert "funeral" in streamed
            assert full.startswith(streamed) or (
                streamed.startswith(full) and set(streamed[len(full):].split()) <= {"and", "on"}
            )
            assert screen.query_one("#article", Markdown).source == article.text
            assert backend.generators[0].closed == 1  # the backend's stream was closed, not abandoned
            assert any("partial article is kept" in m for m, _ in notes)
            # The app is still usable: a second article can be written after the stop.
            backend.endless = False
            screen.query_one("#topic", Input).value = ""
            await write(pilot, "towers")
            await finished(pilot, screen)
            assert screen.article.topic == "towers" and screen.article.finish_reason == "length"
        stopped = [e for e in History().entries() if e.article.topic == "fibre"]
        assert stopped and stopped[0].article.finish_reason == "stopped"

    run(scenario)


def test_bad_parameters_are_refused_before_loading(tmp_path):
    backend = FakeBackend()
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = write_screen(app)
            screen.query_one("#temp", Input).value = "11"
            await write(pilot, "5G")
            await pilot.pause()
            assert any("Temperature must be between 0 and 10" in m and s == "error" for m, s in notes)
            assert app.focused is screen.query_one("#temp", Input)
            screen.query_one("#temp", Input).value = "0.5"
            screen.query_one("#max_tokens", Input).value = "0"
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert any(m.startswith("Max tokens") for m, _ in notes)
            assert screen.worker is None

    run(scenario)
    assert backend.loads == [] and backend.calls == []


def test_load_failure_notifies_and_the_app_stays_usable(tmp_path):
    backend = FakeBackend(load_errors=[MemoryError(), MorrisError("model folder is broken; convert it again")])
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write(pilot, "spectrum")
            await wait_until(pilot, lambda: any(s == "error" for _, s in notes), what="error notification")
            await pilot.pause()
            assert "out of memory" in notes[-1][0]
            assert app.model_state[0] == "error"
            assert not screen.generating
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: len([n for n in notes if n[1] == "error"]) == 2, what="2nd error")
            assert "convert it again" in notes[-1][0]
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: screen.article is not None, what="recovery")
            assert app.model_state == ("ready", "fake-model + no adapter (fake)")

    run(scenario)
    assert len(backend.loads) == 3


def test_bad_adapter_is_reported_and_the_last_good_one_kept(tmp_path):
    backend = FakeBackend(tag=True)
    app = make_app(tmp_path, backend)
    bad = tmp_path / "bad-adapter"

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write(pilot, "AI")
            await finished(pilot, screen)
            app.session.choose_adapter(bad)
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: any(s == "error" for _, s in notes), what="adapter error")
            assert "applying adapter bad-adapter" in notes[-1][0]
            assert app.session.adapter_path is None  # back to the last adapter that worked
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: len(backend.calls) == 2 and not screen.generating, what="retry")
            assert backend.calls[-1]["adapter"] is None

    run(scenario)


def test_save_and_copy_carry_the_attribution(tmp_path):
    app = make_app(tmp_path, FakeBackend(), writer="Iain Morris")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write(pilot, "slicing")
            await finished(pilot, screen)
            await pilot.press("ctrl+o")
            assert "AI-generated in the style of Iain Morris" in app.clipboard
            assert app.clipboard.startswith("# Open RAN's slow funeral")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), what="save dialog")
            default = app.screen.query_one("#save-path", Input).value
            assert default.endswith("-slicing.md")
            target = tmp_path / "out" / "slicing.md"
            app.screen.query_one("#save-path", Input).value = str(target)
            await pilot.press("enter")
            await wait_until(pilot, lambda: target.exists(), what="saved file")
            assert any(f"saved to {target}" in m for m, _ in notes)
            # A folder is refused with a notification, and nothing is written.
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), what="save dialog")
            app.screen.query_one("#save-path", Input).value = str(tmp_path)
            await pilot.press("enter")
            await wait_until(pilot, lambda: notes[-1][1] == "error", what="folder refused")
            assert "is a folder" in notes[-1][0]
        saved = target.read_text()
        assert saved.startswith("# Open RAN's slow funeral")
        assert "What could possibly go wrong?" in saved
        assert "*AI-generated in the style of Iain Morris by morris_mlx (fake-model)" in saved

    run(scenario)


def test_history_search_reopens_an_article(tmp_path):
    history = History()
    for topic, text in [("fibre", "Fibre is the new copper."), ("5G", "5G was a flop."), ("towers", "Towers!")]:
        history.add(Article(topic=topic, text=text, model="m", adapter="morris-r16", backend="fake",
                            settings={"temp": 0.3, "top_p": 0.8, "max_tokens": 50, "seed": 7}))
    app = make_app(tmp_path, FakeBackend())

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
            dialog = app.screen
            assert [e.article.topic for e in dialog.results] == ["towers", "5G", "fibre"]
            await type_text(pilot, "copper")
            assert [e.article.topic for e in dialog.results] == ["fibre"]
            assert "1 article matching 'copper'" in svg_text(app.export_screenshot())
            await pilot.press("enter")
            screen = write_screen(app)
            await wait_until(pilot, lambda: screen.article is not None, what="reopened")
            assert screen.query_one("#topic", Input).value == "fibre"
            assert screen.query_one("#article", Markdown).source == "Fibre is the new copper."
            assert screen.query_one("#temp", Input).value == "0.3"
            assert screen.query_one("#seed", Input).value == "7"

    run(scenario)


def test_command_palette_reaches_the_screens(tmp_path):
    app = make_app(tmp_path, FakeBackend())

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await type_text(pilot, "train")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen), what="train screen")
            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, WriteScreen), what="write screen")

    run(scenario)


def test_lazy_loading_shows_progress_and_can_be_waited_out(tmp_path):
    backend = FakeBackend()
    backend.load_gate = threading.Event()
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            assert app.model_state[0] == "unloaded" and backend.loads == []
            await pilot.press("ctrl+l")
            await wait_until(pilot, lambda: app.model_state[0] == "loading", what="loading state")
            status = app.screen.query_one(".model-status")
            await pilot.pause()
            assert status.has_class("-loading")
            assert status.query_one(".model-status-bar").display
            assert "loading fake-model" in svg_text(app.export_screenshot())
            # Writing while the model loads waits for it instead of loading a second copy.
            screen = await write(pilot, "capex")
            backend.load_gate.set()
            await finished(pilot, screen)
            assert screen.article is not None and not status.has_class("-loading")

    run(scenario)
    assert len(backend.loads) == 1
