"""The whole TUI path on each real backend and the tiny random model,
driven by keys only: train an adapter and watch it, pick it on the models screen, write an article with
it, save it. Marked slow: real training and generation, tens of seconds on 2 cores."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList
from tui_fakes import record_notifications, wait_until

from morris_mlx.backends import choose
from morris_mlx.config import load_config
from morris_mlx.errors import MorrisError
from morris_mlx.tui.app import create_app
from morris_mlx.tui.screens.models import ModelsScreen
from morris_mlx.tui.screens.save import SaveScreen
from morris_mlx.tui.screens.train import TrainScreen
from morris_mlx.tui.screens.write import WriteScreen


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_train_pick_write_save_on_a_real_backend(backend, tiny_model, tiny_data, tmp_path):
    try:
        choose(backend)
    except MorrisError as exc:
        pytest.skip(str(exc))
    cfg = load_config(None, {"model.backend": backend, "train.grad_accumulation": 2, "train.steps_per_eval": 4, "train.save_every": 4,
                             "train.max_seq_length": 256, "lora.rank": 4})
    app = create_app(model_dir=tiny_model, config=cfg)
    target = tmp_path / "article.md"

    async def scenario():
        async with app.run_test(size=(140, 44)) as pilot:
            notes = record_notifications(app)
            await pilot.press("f3")
            await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen), what="train screen")
            train = app.screen
            train.query_one("#train-adapter", Input).value = "tui-e2e"
            train.query_one("#train-data", Input).value = str(tiny_data)
            train.query_one("#train-iters", Input).value = "8"
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: train.mode is None, timeout=300, what="training")
            assert not [n for n in notes if n[1] == "error"], notes
            assert train.progress.done is not None and train.progress.step == 8
            assert train.progress.train_points and train.progress.val_points and train.progress.checkpoints
            adapter = Path(os.environ["MORRIS_ADAPTERS"]) / "tui-e2e"

            await pilot.press("f2")
            await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen), what="models screen")
            models = app.screen
            await wait_until(pilot, lambda: [a.path for a in models.adapters] == [adapter], what="listed")
            listed = models.query_one("#adapters", OptionList)
            listed.focus()
            await pilot.press("down", "enter")
            await wait_until(pilot, lambda: app.session.adapter_path == adapter, what="adapter picked")

            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, WriteScreen), what="write screen")
            write = app.screen
            write.query_one("#max_tokens", Input).value = "24"
            write.query_one("#seed", Input).value = "3"
            write.query_one("#topic", Input).focus()
            await pilot.press("5", "G", "enter")
            await wait_until(pilot, lambda: write.worker is not None and not write.generating, timeout=300,
                             what="generation")
            assert not [n for n in notes if n[1] == "error"], notes
            assert write.article is not None and write.article.adapter == "tui-e2e"
            assert write.article.tokens > 0
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, SaveScreen), what="save dialog")
            app.screen.query_one("#save-path", Input).value = str(target)
            await pilot.press("enter")
            await wait_until(pilot, lambda: target.exists(), what="saved")

    asyncio.run(scenario())
    assert "AI-generated in the style of" in target.read_text()
