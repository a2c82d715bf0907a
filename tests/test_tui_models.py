"""The models screen on the fake backend: adapters from the registry with provenance and metrics,
picking an adapter and a base model, and comparing two adapters side by side."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.widgets import Input, Markdown, OptionList
from tui_fakes import (
    FakeBackend,
    make_adapter,
    make_model_dir,
    record_notifications,
    svg_text,
    type_text,
    wait_until,
)

from morris_mlx.tui.app import create_app
from morris_mlx.tui.screens.models import ModelsScreen

SIZE = (150, 48)


def setup(tmp_path, backend: FakeBackend):
    adapters = Path(os.environ["MORRIS_ADAPTERS"])
    first = make_adapter(adapters, "morris-r16", val_loss=1.25)
    second = make_adapter(adapters, "morris-r8-mlp", val_loss=1.5)
    model = make_model_dir(tmp_path)
    app = create_app(backend_factory=lambda name: backend, model_dir=model)
    return app, model, first, second


async def open_models(pilot) -> ModelsScreen:
    await pilot.press("f2")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ModelsScreen), what="models screen")
    await pilot.pause()
    return pilot.app.screen


def row_of(screen: ModelsScreen, path: Path | None) -> int:
    if path is None:
        return 0
    return 1 + [a.path for a in screen.adapters].index(path)


def test_adapters_listed_with_provenance_and_picked(tmp_path):
    backend = FakeBackend()
    app, _, first, second = setup(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_models(pilot)
            assert {a.name for a in screen.adapters} == {"morris-r16", "morris-r8-mlp"}
            adapters = screen.query_one("#adapters", OptionList)
            adapters.focus()
            adapters.highlighted = row_of(screen, first)
            await pilot.pause()
            text = svg_text(app.export_screenshot())
            for expected in ("morris-r16", "best val loss", "1.25", "rank 16, scale 2.0", "q_proj, v_proj",
                             "64 iterations", "Compare A", "base model, no adapter"):
                assert expected in text, expected
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.session.adapter_path == first, what="adapter chosen")
            assert "morris-r16" in app.sub_title
            await pilot.pause()
            assert "● morris-r16" in svg_text(app.export_screenshot())
            # Back on the write screen, the next article uses the picked adapter.
            await pilot.press("f1")
            await pilot.pause()
            write = app.screen
            write.query_one("#topic", Input).value = "edge computing"
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: write.article is not None, what="article")
            assert backend.loads == [(app.session.resolve_model_dir(), first)]

    run(scenario)


def test_base_model_picked_by_path_and_bad_path_refused(tmp_path):
    app, model, _, _ = setup(tmp_path, FakeBackend())
    other = make_model_dir(tmp_path, "other-model")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_models(pilot)
            path_input = screen.query_one("#model-path", Input)
            path_input.focus()
            path_input.value = str(tmp_path / "missing")
            await pilot.press("enter")
            await pilot.pause()
            assert notes[-1][1] == "error" and "does not exist" in notes[-1][0]
            assert app.session.model_dir == model
            path_input.value = str(other)
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.session.model_dir == other, what="model chosen")
            assert "other-model" in app.sub_title
            # The default row hands the choice back to the configured base / embedded default.
            base = screen.query_one("#base-models", OptionList)
            base.focus()
            base.highlighted = 0
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.session.model_dir is None, what="default model")

    run(scenario)


def test_compare_two_adapters_side_by_side(tmp_path):
    backend = FakeBackend(tag=True)
    app, _, first, second = setup(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_models(pilot)
            adapters = screen.query_one("#adapters", OptionList)
            adapters.focus()
            adapters.highlighted = row_of(screen, None)
            await pilot.press("a")
            adapters.highlighted = row_of(screen, second)
            await pilot.press("b")
            assert screen.compare_paths == {"a": None, "b": second}
            screen.query_one("#compare-topic", Input).focus()
            await type_text(pilot, "6G")
            await pilot.press("enter")
            await wait_until(pilot, lambda: set(screen.results) == {"a", "b"}, what="both sides")
            await pilot.pause()
            a = screen.query_one("#compare-a", Markdown).source
            b = screen.query_one("#compare-b", Markdown).source
            assert a.startswith("# [base] Open RAN") and b.startswith("# [morris-r8-mlp] Open RAN")
            # Same prompt and the same (fixed) seed on both sides; only the adapter differs.
            assert [c["adapter"] for c in backend.calls] == [None, second]
            assert backend.calls[0]["messages"] == backend.calls[1]["messages"]
            assert backend.calls[0]["settings"].seed == backend.calls[1]["settings"].seed == 0
            text = svg_text(app.export_screenshot())
            assert "A: base model" in text and "B: morris-r8-mlp" in text
            assert len(backend.loads) == 1  # the adapter was swapped, the base loaded once

    run(scenario)


def test_compare_can_be_stopped(tmp_path):
    backend = FakeBackend(endless=True, delay=0.03)
    app, _, first, _ = setup(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_models(pilot)
            screen.compare_paths = {"a": first, "b": None}
            screen.query_one("#compare-topic", Input).value = "layoffs"
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: len(backend.calls) == 1, what="side A streaming")
            await pilot.press("escape")
            await wait_until(pilot, lambda: not screen.worker.is_running, what="stopped")
            await pilot.pause()
            assert screen.results["a"].finish_reason == "stopped"
            assert "b" not in screen.results and len(backend.calls) == 1

    run(scenario)


def run(scenario):
    asyncio.run(scenario())
