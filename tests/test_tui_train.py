"""The train screen on the fake trainer (start, stop cleanly, resume, fail) and attached to a run by
tailing its metrics.jsonl; plus the chart and the progress fold as plain functions."""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

from textual.widgets import Input, Switch
from tui_fakes import FakeBackend, make_model_dir, record_notifications, svg_text, wait_until

from morris_mlx.training import MetricsLog, TrainEvent
from morris_mlx.tui.app import create_app
from morris_mlx.tui.screens.train import TrainScreen
from morris_mlx.tui.train_progress import TrainProgress, format_eta
from morris_mlx.tui.widgets.loss_chart import Series, plot

SIZE = (140, 44)


def run(scenario):
    asyncio.run(scenario())


async def open_train(pilot, adapter: str, data: Path | None = None, iters: str = "") -> TrainScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen), what="train screen")
    screen = pilot.app.screen
    screen.query_one("#train-adapter", Input).value = adapter
    if data is not None:
        screen.query_one("#train-data", Input).value = str(data)
    screen.query_one("#train-iters", Input).value = iters
    return screen


def test_start_training_and_watch_it(tmp_path, tiny_data):
    backend = FakeBackend()
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "morris-test", tiny_data, iters="12")
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: screen.mode is None and screen.progress.done, what="run end")
            await pilot.pause()
            p = screen.progress
            assert p.total_steps == 12 and p.step == 12
            assert [s for s, _ in p.train_points] == list(range(1, 13))
            assert [s for s, _ in p.val_points] == [4, 8, 12]
            assert [s for s, _ in p.checkpoints] == [4, 8, 12]
            assert p.best_val_loss == 3.5 / 12
            assert "finished at step 12" in screen.state
            assert any("finished at step 12" in m for m, _ in notes)
            text = svg_text(app.export_screenshot())
            for expected in ("12 / 12", "0.2500", "1,234", "1.50 GB", "◆", "•", "checkpoints/step_0000012", "step 12"):
                assert expected in text, expected
        trained = backend.trained[0]
        assert trained["adapter"] == Path(os.environ["MORRIS_ADAPTERS"]) / "morris-test"
        assert trained["cfg"].train.iters == 12 and trained["resume"] is False
        assert trained["data_dir"] == tiny_data

    run(scenario)


def test_stop_training_cleanly_then_resume(tmp_path, tiny_data):
    backend = FakeBackend(train_steps=400, train_delay=0.05)
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "stoppable", tiny_data)
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: screen.progress.step >= 5, what="a few steps")
            await pilot.press("ctrl+q")  # quitting mid-run asks first
            assert "training is running" in notes[-1][0] and app.is_running and screen.mode == "train"
            await pilot.press("escape")
            await wait_until(pilot, lambda: screen.mode is None, what="clean stop")
            stopped_at = backend.trained[0]["stopped_at"]
            assert stopped_at is not None and stopped_at < 400
            assert "stopped early" in screen.state
            # Starting again without Resume would clobber the run: refused, nothing started.
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert "turn Resume on" in notes[-1][0] and len(backend.trained) == 1
            screen.query_one("#train-resume", Switch).value = True
            backend.train_steps, backend.train_delay = 8, 0.0
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: len(backend.trained) == 2 and screen.mode is None, what="resumed run")
            assert backend.trained[1]["resume"] is True

    run(scenario)


def test_bad_requests_and_failures_are_notifications(tmp_path, tiny_data):
    backend = FakeBackend(train_error=MemoryError())
    app = create_app(backend_factory=lambda name: backend, model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await open_train(pilot, "fresh", tmp_path / "nowhere")
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert "has no train.jsonl" in notes[-1][0]
            screen.query_one("#train-data", Input).value = str(tiny_data)
            screen.query_one("#train-resume", Switch).value = True
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert "no checkpoint to resume from" in notes[-1][0]
            screen.query_one("#train-resume", Switch).value = False
            screen.query_one("#train-adapter", Input).value = "run.partial"
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert "reserved suffix" in notes[-1][0] and backend.trained == []
            screen.query_one("#train-adapter", Input).value = "fresh"
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: screen.state == "failed", what="failure")
            assert "out of memory while training" in notes[-1][0] and notes[-1][1] == "error"
            assert screen.mode is None  # usable again

    run(scenario)


def test_attach_to_a_run_by_its_metrics_file(tmp_path, monkeypatch):
    monkeypatch.setattr(TrainScreen, "FOLLOW_POLL_S", 0.02)
    run_dir = Path(os.environ["MORRIS_ADAPTERS"]) / "elsewhere"
    log = MetricsLog(run_dir)
    log.write(TrainEvent("plan", 0, {"iters": 20}))
    for step in (1, 2, 3):
        log.write(TrainEvent("train", step, {"loss": 2.0 / step, "tokens_per_second": 99.0, "eta_s": 60.0}))
    app = create_app(backend_factory=lambda name: FakeBackend(), model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_train(pilot, "elsewhere")
            await pilot.press("ctrl+f")
            await wait_until(pilot, lambda: screen.progress.step == 3, what="existing records")
            assert screen.mode == "follow" and screen.progress.total_steps == 20
            assert "1m00s" in svg_text(app.export_screenshot())
            log.write(TrainEvent("val", 4, {"val_loss": 0.9}))
            log.write(TrainEvent("checkpoint", 4, {"path": str(run_dir / "checkpoints" / "step_0000004")}))
            await wait_until(pilot, lambda: screen.progress.checkpoints, what="new records")
            assert screen.progress.val_points == [(4, 0.9)]
            # A resume rewrites the log shorter: the picture starts over from the file.
            MetricsLog(run_dir, truncate_after_step=2)
            log.write(TrainEvent("plan", 2, {"iters": 20, "resumed": True}))
            await wait_until(pilot, lambda: screen.progress.resumed, what="replay after resume")
            assert screen.progress.val_points == [] and screen.progress.step == 2
            log.write(TrainEvent("done", 20, {"best_val_loss": 0.8}))
            await wait_until(pilot, lambda: screen.mode is None, what="run finished")
            assert "run finished at step 20" in screen.state

    run(scenario)


def test_detach_leaves_the_run_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(TrainScreen, "FOLLOW_POLL_S", 0.02)
    run_dir = Path(os.environ["MORRIS_ADAPTERS"]) / "longrun"
    MetricsLog(run_dir).write(TrainEvent("plan", 0, {"iters": 100}))
    app = create_app(backend_factory=lambda name: FakeBackend(), model_dir=make_model_dir(tmp_path))

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_train(pilot, "longrun")
            await pilot.press("ctrl+f")
            await wait_until(pilot, lambda: screen.progress.total_steps == 100, what="attached")
            await pilot.press("escape")
            await wait_until(pilot, lambda: screen.mode is None, what="detached")
            assert "detached" in screen.state
        assert (run_dir / "metrics.jsonl").exists()

    run(scenario)


def test_progress_fold_reads_records_defensively():
    p = TrainProgress()
    p.apply({"kind": "plan", "step": 0, "iters": 8})
    p.apply({"kind": "train", "step": 1, "loss": 2.5, "eta_s": float("nan"), "tokens_per_second": "fast"})
    p.apply({"kind": "train", "step": 2, "loss": 2.0, "eta_s": 30.0})
    p.apply({"kind": "val", "step": 2, "loss": 2.2})  # older logs call it loss
    p.apply({"kind": "val", "step": 4, "val_loss": 1.9})
    p.apply({"kind": "mystery", "step": "x"})
    assert p.eta_s == 30.0 and p.tokens_per_second is None
    assert p.val_points == [(2, 2.2), (4, 1.9)] and p.best_val_loss == 1.9
    assert p.fraction == 0.5
    p.apply({"kind": "plan", "step": 2, "iters": 8, "resumed": True})
    assert p.train_points == [(1, 2.5), (2, 2.0)] and p.val_points == [(2, 2.2)] and p.step == 2
    assert format_eta(3725) == "1h02m" and format_eta(65) == "1m05s" and format_eta(None) == "-"
    assert not math.isnan(p.loss)


def test_chart_places_points_and_labels_axes():
    rows = plot(
        [Series("loss", [(0, 3.0), (10, 1.0)], "•"), Series("val", [(10, 2.0)], "◆")],
        width=30,
        height=7,
        x_max=10,
    )
    lines = ["".join(text for text, _ in row) for row in rows]
    assert len(lines) == 7
    assert lines[0].startswith("       3┤•")  # highest loss, top left
    assert lines[4].rstrip().endswith("•")  # lowest loss, bottom right
    assert lines[2].rstrip().endswith("◆")  # validation in the middle, at the last step
    assert lines[-1].strip().startswith("0") and lines[-1].endswith("step 10")
    empty = plot([Series("loss", [], "•")], width=40, height=3)
    assert "waiting for the first loss" in "".join(t for row in empty for t, _ in row)
