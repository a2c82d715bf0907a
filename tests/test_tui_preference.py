"""The train screen's preference stage: the objective and its beta reach the run's config (and the adapter's
provenance, on the real torch backend and the tiny model), Build pairs turns a chat data folder into
`<data>-pairs` in a worker and points the form at it, and bad input is a notification, never a run."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Label, Select
from tui_fakes import FakeBackend, FakeGenerator, make_model_dir, record_notifications, wait_until

from morris_mlx.backends.base import BatchResult
from morris_mlx.config import load_config
from morris_mlx.dataset.pairs import load_pairs, pair_from_example
from morris_mlx.pairs import PairSettings
from morris_mlx.tui.app import create_app
from morris_mlx.tui.preference import data_kind, pairs_dir_for, parse_beta
from morris_mlx.tui.screens.train import TrainScreen

SIZE = (140, 48)
REAL_S = 300  # real training or generation on 2 busy cores: generous, it only bounds a hang


def run(scenario) -> None:
    asyncio.run(scenario())


class BatchGenerator(FakeGenerator):
    """The fake generator with batched replies for make_pairs; after `owner.hold_after` replies it waits
    for `owner.hold` to be set, so a test can act mid-build without racing the worker."""

    def generate_batch(self, conversations, settings, batch_size):
        for i, _ in enumerate(conversations):
            if i >= self.owner.hold_after:
                self.owner.hold.wait(30)
            time.sleep(self.owner.delay)
            yield i, BatchResult(f"We are delighted to announce reply {i}.", "length", 10, 6)


class BatchBackend(FakeBackend):
    def __init__(self, hold_after: int = 10**9) -> None:
        super().__init__()
        self.hold_after = hold_after
        self.hold = threading.Event()

    def load(self, model_dir, adapter_path=None, fuse=True):
        self.loads.append((model_dir, adapter_path))
        generator = BatchGenerator(self, Path(model_dir), adapter_path)
        self.generators.append(generator)
        return generator


def write_pairs(chat_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True)
    for split in ("train", "valid"):
        rows = [json.loads(line) for line in (chat_dir / f"{split}.jsonl").read_text().splitlines()]
        pairs = [
            pair_from_example(row, f"Record growth in item {i}, customers love it.")
            for i, row in enumerate(rows)
        ]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return out


async def open_train(pilot, adapter: str, data: Path, objective: str, beta: str = "", iters: str = "4"):
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen), what="train screen")
    screen = pilot.app.screen
    screen.query_one("#train-adapter", Input).value = adapter
    screen.query_one("#train-data", Input).value = str(data)
    screen.query_one("#train-iters", Input).value = iters
    screen.query_one("#train-objective", Select).value = objective
    if beta:
        screen.query_one("#train-beta", Input).value = beta
    await pilot.pause()
    return screen


async def press_build_pairs(pilot, screen: TrainScreen) -> None:
    """Press Build pairs from the keyboard (focus, Enter): a mouse click aimed while the sidebar's layout
    settles (a scrollbar appearing re-wraps it) can land a row off. A Button ignores presses for 0.2 s
    after one, so wait that out first."""
    button = screen.query_one("#train-build-pairs", Button)

    def ready() -> bool:
        return shown(screen, "#train-pairs-row") and not button.has_class("-active")

    await wait_until(pilot, ready, what="Build pairs offered")
    button.focus()
    await pilot.press("enter")


async def next_notification(pilot, notes: list[tuple[str, str]], key: str) -> tuple[str, str]:
    """Press `key` and wait for the notification it brings."""
    before = len(notes)
    await pilot.press(key)
    await wait_until(pilot, lambda: len(notes) > before, what=f"a notification after {key}")
    return notes[-1]


def shown(screen: TrainScreen, selector: str) -> bool:
    return bool(screen.query_one(selector).display)


def label_text(screen: TrainScreen, selector: str) -> str:
    return str(screen.query_one(selector, Label).render())


def real_config(**extra):
    pytest.importorskip("torch")
    return load_config(
        None,
        {
            "model.backend": "torch",
            "train.grad_accumulation": 1,
            "train.steps_per_eval": 2,
            "train.save_every": 2,
            "train.max_seq_length": 256,
            "lora.rank": 4,
            **extra,
        },
    )


# -- on the real backend and the tiny model --------------------------------------------------------


def test_orpo_on_pairs_trains_an_adapter_that_records_its_objective(tiny_model, tiny_data, tmp_path):
    pairs = write_pairs(tiny_data, tmp_path / "pairs")
    app = create_app(model_dir=tiny_model, config=real_config())

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "tui-orpo", pairs, "orpo", beta="0.25")
            assert shown(screen, "#train-beta-row") and not shown(screen, "#train-pairs-row")
            assert "Lambda (ORPO" in label_text(screen, "#train-beta-label")
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: screen.mode is None, timeout=REAL_S, what="training")
            assert not [n for n in notes if n[1] == "error"], notes
            assert screen.progress.done is not None and screen.progress.step == 4

    run(scenario)
    provenance = json.loads(
        (Path(os.environ["MORRIS_ADAPTERS"]) / "tui-orpo" / "morris_adapter.json").read_text()
    )
    assert provenance["config"]["train"]["objective"] == "orpo"
    assert provenance["config"]["train"]["beta"] == 0.25


def test_dpo_on_chat_data_builds_pairs_and_trains_on_them(tiny_model, tiny_data):
    app = create_app(model_dir=tiny_model, config=real_config())
    out = tiny_data.with_name("data-pairs")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "tui-dpo", tiny_data, "dpo")
            assert shown(screen, "#train-pairs-row") and str(out) in label_text(screen, "#train-pairs-hint")
            assert "Beta (DPO" in label_text(screen, "#train-beta-label")
            screen.pair_settings = PairSettings(max_tokens=8)
            await press_build_pairs(pilot, screen)
            await wait_until(
                pilot, lambda: out.exists() and not screen.building, timeout=REAL_S, what="pairs"
            )
            await pilot.pause()
            assert not [n for n in notes if n[1] == "error"], notes
            assert "training will use them" in notes[-1][0]
            assert screen.query_one("#train-data", Input).value == str(out)
            assert not shown(screen, "#train-pairs-row")
            record = json.loads((out / "pairs.json").read_text())
            assert record["settings"]["max_tokens"] == 8 and record["adapter"] is None
            for split in ("train", "valid"):
                assert len(load_pairs(out, split)) == record["pairs"][split] > 0

            await pilot.press("ctrl+g")  # and the pairs train, as DPO
            await wait_until(pilot, lambda: screen.mode is None, timeout=REAL_S, what="training")
            assert not [n for n in notes if n[1] == "error"], notes

            # Building again from the chat data keeps the pairs already built, and points the form at them.
            screen.query_one("#train-data", Input).value = str(tiny_data)
            await press_build_pairs(pilot, screen)
            await wait_until(pilot, lambda: "already exists" in notes[-1][0], what="existing pairs")
            assert screen.query_one("#train-data", Input).value == str(out) and not screen.building

    run(scenario)
    provenance = json.loads(
        (Path(os.environ["MORRIS_ADAPTERS"]) / "tui-dpo" / "morris_adapter.json").read_text()
    )
    assert provenance["config"]["train"]["objective"] == "dpo"


# -- on the fake backend --------------------------------------------------------------------------


def test_bad_beta_or_the_wrong_data_is_a_notification_and_nothing_trains(tmp_path, tiny_data):
    pairs = write_pairs(tiny_data, tmp_path / "pairs")
    backend = FakeBackend()
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "bad-beta", pairs, "orpo")
            for text, expected in (
                ("0", "must be a positive number"),
                ("-1", "must be a positive number"),
                ("abc", "is not a number"),
                ("inf", "must be a positive number"),
            ):
                screen.query_one("#train-beta", Input).value = text
                message, severity = await next_notification(pilot, notes, "ctrl+g")
                assert expected in message and "lambda" in message and severity == "error", text
            screen.query_one("#train-beta", Input).value = "0.5"
            screen.query_one("#train-data", Input).value = str(tiny_data)
            message, _ = await next_notification(pilot, notes, "ctrl+g")
            assert "holds chat examples" in message and "press Build pairs" in message
            screen.query_one("#train-data", Input).value = str(pairs)
            screen.query_one("#train-objective", Select).value = "sft"
            await wait_until(pilot, lambda: not shown(screen, "#train-beta-row"), what="beta hidden for sft")
            message, _ = await next_notification(pilot, notes, "ctrl+g")
            assert "holds preference pairs; choose a preference objective" in message
            assert backend.trained == [] and screen.mode is None
            # A good beta on pairs trains, with both in the run's config.
            screen.query_one("#train-objective", Select).value = "dpo"
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: backend.trained and screen.mode is None, what="run")
            cfg = backend.trained[0]["cfg"]
            assert (cfg.train.objective, cfg.train.beta) == ("dpo", 0.5)
            assert app.config.train.objective == "sft"  # the app's own config is left alone

    run(scenario)


def test_building_pairs_can_be_stopped_and_failures_are_notifications(tmp_path, tiny_data):
    backend = BatchBackend(hold_after=3)
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))
    out = pairs_dir_for(tiny_data)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "fake-pairs", tiny_data, "orpo")
            await press_build_pairs(pilot, screen)
            await wait_until(
                pilot,
                lambda: "rejected replies: 3 / 20" in label_text(screen, "#pairs-status"),
                what="progress",
            )
            assert shown(screen, "#pairs-progress") and screen.building
            await pilot.press("ctrl+g")  # no training while the pairs are built
            assert "being built" in notes[-1][0] and backend.trained == []
            await pilot.press("escape")
            assert "stopping" in label_text(screen, "#pairs-status")
            backend.hold.set()  # the next reply arrives, and the build stops there
            await wait_until(pilot, lambda: not screen.building, what="stopped")
            assert "stopped" in notes[-1][0] and not out.exists()
            assert screen.query_one("#train-data", Input).value == str(tiny_data)

            (tiny_data / "valid.jsonl").write_text('{"messages": "oops"}\n')
            await press_build_pairs(pilot, screen)
            await wait_until(pilot, lambda: not screen.building and notes[-1][1] == "error", what="failure")
            assert "valid.jsonl line 1" in notes[-1][0] and not out.exists()

            (tiny_data / "valid.jsonl").write_text((tiny_data / "test.jsonl").read_text())
            await press_build_pairs(pilot, screen)  # the screen is usable after both
            await wait_until(pilot, lambda: not screen.building and out.exists(), what="built")
            await pilot.pause()
            assert screen.query_one("#train-data", Input).value == str(out)
            assert [len(load_pairs(out, s)) for s in ("train", "valid")] == [16, 4]
            assert backend.loads[-1][1] is None  # the base model's replies are the rejected ones

    run(scenario)


def test_pairs_from_other_writers_need_no_model_and_go_to_a_folder_of_their_own(tmp_path, tiny_data):
    from conftest import TOPICS

    backend = BatchBackend()
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))
    others = tmp_path / "others.jsonl"
    others.write_text("".join(
        json.dumps({"body": f"The {topic} figures were published on Tuesday, a spokesperson said."}) + "\n"
        for topic in TOPICS
    ))
    out = pairs_dir_for(tiny_data, others=True)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "others", tiny_data, "orpo")
            assert "base model's replies" in label_text(screen, "#train-pairs-hint")
            screen.query_one("#train-pairs-others", Input).value = str(tmp_path / "nowhere.jsonl")
            await pilot.pause()
            assert str(out) in label_text(screen, "#train-pairs-hint")
            await press_build_pairs(pilot, screen)
            await wait_until(pilot, lambda: notes and notes[-1][1] == "error", what="missing others refused")
            assert "nowhere.jsonl does not exist" in notes[-1][0] and not out.exists()

            screen.query_one("#train-pairs-others", Input).value = str(others)
            await press_build_pairs(pilot, screen)
            await wait_until(pilot, lambda: not screen.building and out.exists(), what="pairs built")
            await pilot.pause()
            assert not [n for n in notes[1:] if n[1] == "error"], notes
            assert screen.query_one("#train-data", Input).value == str(out)
            assert backend.loads == []  # no model was loaded for them

    run(scenario)
    record = json.loads((out / "pairs.json").read_text())
    assert record["rejected_from"] == str(others.resolve()) and record["pairs"] == {"train": 16, "valid": 4}
    assert not pairs_dir_for(tiny_data).exists()
    rejected = load_pairs(out, "train")[0]["rejected"][0]["content"]
    assert rejected.startswith("The ") and "spokesperson" in rejected


def test_preference_helpers(tmp_path, tiny_data):
    assert parse_beta(" 0.1 ", "dpo") == 0.1
    with pytest.raises(Exception, match="beta must be a positive number"):
        parse_beta("0", "dpo")
    assert data_kind(tiny_data) == "chat" and data_kind(tmp_path / "nowhere") is None
    assert data_kind(write_pairs(tiny_data, tmp_path / "p")) == "pairs"
    assert pairs_dir_for(Path("data/processed/")) == Path("data/processed-pairs")
    assert pairs_dir_for(Path("data/processed"), others=True) == Path("data/processed-pairs-others")
    assert pairs_dir_for(Path(".")).name == Path.cwd().name + "-pairs"
