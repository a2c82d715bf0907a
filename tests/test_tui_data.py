"""The data screen: stats.json of any reasonable shape, measured stats when it is missing, a broken one
reported, and browsing sample examples."""

from __future__ import annotations

import asyncio
import json

from textual.widgets import Input, Markdown
from tui_fakes import FakeBackend, make_model_dir, record_notifications, svg_text, wait_until

from morris_mlx.tui.app import create_app
from morris_mlx.tui.data_view import measure_splits, read_examples, stats_sections
from morris_mlx.tui.screens.data import DataScreen

SIZE = (150, 44)

STATS = {
    "articles": 24,
    "seed": 42,
    "counts": {"train": 16, "valid": 4, "test": 4},
    "dropped": {"too_short": 3, "duplicate": 1},
    "tokens": {"train": {"min": 310, "median": 812.5, "max": 1024}, "valid": {"min": 402, "max": 990}},
    "sources": ["lightreading", "bundled"],
}


def run(scenario):
    asyncio.run(scenario())


async def open_data(pilot, folder) -> DataScreen:
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, DataScreen), what="data screen")
    screen = pilot.app.screen
    screen.query_one("#data-dir", Input).value = str(folder)
    screen.query_one("#data-dir", Input).focus()
    await pilot.press("enter")
    return screen


def make_app(tmp_path):
    return create_app(backend_factory=lambda name: FakeBackend(), model_dir=make_model_dir(tmp_path))


def test_stats_and_examples_are_shown(tmp_path, tiny_data):
    (tiny_data / "stats.json").write_text(json.dumps(STATS))
    app = make_app(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_data(pilot, tiny_data)
            await wait_until(pilot, lambda: len(screen.examples) == 16, what="examples")
            await pilot.pause()
            text = svg_text(app.export_screenshot())
            for expected in ("articles", "24", "counts", "too_short", "812.5", "1,024", "lightreading, bundled",
                             "Example 1 of 16", "The grim truth about 5G"):
                assert expected in text, expected
            await pilot.press("ctrl+n")
            await pilot.press("ctrl+n")
            sample = screen.query_one("#data-sample", Markdown).source
            assert "Example 3 of 16" in sample and "open RAN" in sample
            await pilot.press("ctrl+b")
            assert "Example 2 of 16" in screen.query_one("#data-sample", Markdown).source

    run(scenario)


def test_missing_stats_are_measured_and_broken_stats_reported(tmp_path, tiny_data):
    app = make_app(tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_data(pilot, tiny_data)
            await wait_until(pilot, lambda: len(screen.examples) == 16, what="examples")
            await pilot.pause()
            assert "no stats.json" in svg_text(app.export_screenshot())
            (tiny_data / "stats.json").write_text("{not json")
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: notes and notes[-1][1] == "error", what="error")
            assert "is not valid JSON" in notes[-1][0] and screen.examples == []
            await open_data(pilot, tmp_path / "empty")
            await wait_until(pilot, lambda: "holds no train/valid/test.jsonl" in notes[-1][0], what="no data")

    run(scenario)


def test_stats_sections_handle_any_shape():
    sections = {s.title: s for s in stats_sections(STATS)}
    assert sections["summary"].rows == [["articles", "24"], ["seed", "42"], ["sources", "lightreading, bundled"]]
    assert sections["counts"].rows == [["train", "16"], ["valid", "4"], ["test", "4"]]
    tokens = sections["tokens"]
    assert tokens.columns == ["", "min", "median", "max"]
    assert tokens.rows[1] == ["valid", "402", "", "990"]
    mixed = {s.title: s for s in stats_sections({"odd": {"a": 1, "b": {"c": 2}}, "rows": [{"x": 1}]})}
    assert mixed["odd"].rows == [["a", "1"], ["b", "{1 keys}"]]
    assert mixed["summary"].rows == [["rows", "[1 items]"]]
    hist = {"bin_width": 128, "counts": [0, 2, 4]}
    real = {s.title: s for s in stats_sections({"dropped": {}, "tokens": {"train": {"min": 3, "histogram": hist}}})}
    assert real["summary"].rows == [["dropped", "none"]]
    assert real["tokens"].rows == [["train", "3", " ▄█ (bins of 128)"]]


def test_examples_and_measures_skip_bad_lines(tiny_data):
    path = tiny_data / "train.jsonl"
    path.write_text(path.read_text() + "not json\n" + json.dumps({"messages": "nope"}) + "\n")
    examples = read_examples(path)
    assert len(examples) == 16 and examples[0].topic == "5G"
    measured = measure_splits(tiny_data)
    assert measured["examples"] == {"train": 16, "valid": 4, "test": 4}
