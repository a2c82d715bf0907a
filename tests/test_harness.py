"""The training harness with a scripted backend: which validation it keeps and when it stops, without a
model. A trainer here only counts steps and returns the validation losses it is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morris_mlx.config import load_config
from morris_mlx.training import TrainingData, train_adapter

# A lucky dip at the second validation (a split of three articles), then a slow real improvement.
VAL_LOSSES = [3.0, 2.0, 2.6, 2.4, 2.3, 2.2, 2.25, 2.3, 2.35, 2.4, 2.45]


class ScriptedTrainer:
    backend, adapter_format, rank, world_size = "scripted", "peft", 0, 1

    def __init__(self, losses: list[float]) -> None:
        self.losses, self.validations, self.step = list(losses), 0, 0

    def join(self, cfg) -> None: ...

    def load(self, cfg, model_dir: Path, data_dir: Path) -> TrainingData:
        return TrainingData(examples=40, tokens=40_000)

    def build(self, plan) -> None: ...

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        self.step = step + 1
        return 1.0, 100

    def evaluate(self) -> float:
        loss = self.losses[min(self.validations, len(self.losses) - 1)]
        self.validations += 1
        return loss

    def save_adapter(self, adapter_dir: Path) -> None:
        (Path(adapter_dir) / "adapter_model.safetensors").write_text(json.dumps({"step": self.step}))

    def save_state(self, folder: Path) -> None:
        self.save_adapter(folder)

    def check_state(self, folder: Path) -> None: ...

    def load_state(self, folder: Path) -> None: ...

    def peak_memory_gb(self) -> float:
        return 0.0

    def finish(self, adapter_dir: Path | None) -> None: ...


def run(tiny_model: Path, tmp_path: Path, **overrides):
    cfg = load_config(overrides={"train.iters": 100, "train.steps_per_eval": 10, "train.patience": 3, **overrides})
    (tmp_path / "data").mkdir(exist_ok=True)
    out = tmp_path / f"adapter-{len(list(tmp_path.iterdir()))}"
    result = train_adapter(ScriptedTrainer(VAL_LOSSES), cfg, tiny_model, tmp_path / "data", out, quiet=True)
    kept = json.loads((out / "adapter_model.safetensors").read_text())["step"]
    return result, kept


def test_without_smoothing_a_lucky_validation_stops_the_run_and_is_kept(tiny_model, tmp_path):
    result, kept = run(tiny_model, tmp_path)
    assert kept == 10 and result.best_val_loss == 2.0
    assert result.stopped_early and result.steps == 40


def test_smoothing_judges_the_trend_instead(tiny_model, tmp_path):
    result, kept = run(tiny_model, tmp_path, **{"train.val_smoothing": 0.5})
    # Moving averages 3.0, 2.5, 2.55, 2.475, 2.3875, 2.29375, 2.271875, 2.2859, ...: best at step 60.
    assert kept == 60 and result.best_val_loss == 2.25  # the loss measured there, not the average
    assert result.stopped_early and result.steps == 90


def test_smoothing_must_leave_weight_on_the_present(tiny_model, tmp_path):
    from morris_mlx.errors import MorrisError

    with pytest.raises(MorrisError, match="val_smoothing"):
        load_config(overrides={"train.val_smoothing": 1.0})


def test_weight_decay_is_bounded_by_what_it_does_to_each_update():
    from morris_mlx.errors import MorrisError

    # At LoRA's learning rate a decay of 10 takes 0.2% off the weights per update: allowed.
    assert load_config(overrides={"train.weight_decay": 10.0}).train.weight_decay == 10.0
    with pytest.raises(MorrisError, match="learning_rate x weight_decay under 1"):
        load_config(overrides={"train.weight_decay": 10.0, "train.learning_rate": 0.1})


class Killed(Exception):
    pass


class KilledAt(ScriptedTrainer):
    """Dies (as a kill would) when it reaches step `die_at`."""

    def __init__(self, losses: list[float], die_at: int) -> None:
        super().__init__(losses)
        self.die_at = die_at

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        if step == self.die_at:
            raise Killed
        return super().train_step(step, learning_rate, apply_update)


def test_a_resumed_run_counts_the_training_time_before_its_checkpoint(tiny_model, tmp_path, monkeypatch):
    from morris_mlx.training.progress import Stopwatch

    monkeypatch.setattr(Stopwatch, "elapsed", lambda self: 100.0)  # every process has trained 100 s so far
    cfg = load_config(overrides={"train.iters": 60, "train.steps_per_eval": 10, "train.patience": 0})
    (tmp_path / "data").mkdir()
    out = tmp_path / "adapter"

    with pytest.raises(Killed):
        train_adapter(KilledAt(VAL_LOSSES, 35), cfg, tiny_model, tmp_path / "data", out, quiet=True)
    train_adapter(ScriptedTrainer(VAL_LOSSES), cfg, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    provenance = json.loads((out / "morris_adapter.json").read_text())
    assert provenance["metrics"]["train_seconds"] == 200.0  # 100 s up to the checkpoint, 100 s after


def test_a_run_killed_after_early_stopping_fired_stops_there_when_resumed(tiny_model, tmp_path, monkeypatch):
    """Early stopping fires at the validation of step 40 and that step's checkpoint is written; a kill
    before the run ends must not make the resumed run train on."""
    from morris_mlx.training import harness

    uninterrupted, _ = run(tiny_model, tmp_path)
    assert uninterrupted.stopped_early and uninterrupted.steps == 40

    cfg = load_config(overrides={"train.iters": 100, "train.steps_per_eval": 10, "train.patience": 3})
    out = tmp_path / "killed"
    save_checkpoint = harness.Run.save_checkpoint

    def save_then_die(self, step: int) -> None:
        save_checkpoint(self, step)
        if step == 40:
            raise Killed

    monkeypatch.setattr(harness.Run, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_adapter(ScriptedTrainer(VAL_LOSSES), cfg, tiny_model, tmp_path / "data", out, quiet=True)
    monkeypatch.setattr(harness.Run, "save_checkpoint", save_checkpoint)
    trainer = ScriptedTrainer(VAL_LOSSES)
    trainer.validations = 4  # the validations the first process made
    resumed = train_adapter(trainer, cfg, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    assert resumed.stopped_early and resumed.steps == 40 and trainer.validations == 4
    assert json.loads((out / "adapter_model.safetensors").read_text())["step"] == 10


def test_a_run_the_user_stopped_trains_on_when_resumed(tiny_model, tmp_path):
    """Stopped by the user at step 35, its last validation reaches the patience by chance: resuming still
    continues, since early stopping never fired."""
    cfg = load_config(overrides={"train.iters": 100, "train.steps_per_eval": 10, "train.patience": 3})
    (tmp_path / "data").mkdir()
    out = tmp_path / "adapter"
    stopped = train_adapter(
        ScriptedTrainer([3.0, 2.0, 2.6, 2.4, 2.3]), cfg, tiny_model, tmp_path / "data", out, quiet=True,
        callback=lambda event: event.kind == "train" and event.step >= 35,
    )
    assert stopped.steps == 35
    resumed = train_adapter(ScriptedTrainer([1.0 - i / 20 for i in range(10)]), cfg, tiny_model, tmp_path / "data", out,
                            resume=True, quiet=True)
    assert resumed.steps == 100 and not resumed.stopped_early


def test_resuming_checkpoints_of_the_other_backend_names_it(tiny_model, tmp_path):
    from morris_mlx.errors import MorrisError

    cfg = load_config(overrides={"train.iters": 60, "train.steps_per_eval": 10, "train.patience": 0})
    (tmp_path / "data").mkdir()
    out = tmp_path / "adapter"

    class MlxKilledAt(KilledAt):
        backend, adapter_format = "mlx", "mlx"

        def save_adapter(self, adapter_dir: Path) -> None:
            (Path(adapter_dir) / "adapters.safetensors").write_text(json.dumps({"step": self.step}))

    class Torch(ScriptedTrainer):
        backend = "torch"

        def check_state(self, folder: Path) -> None:
            raise FileNotFoundError(folder / "adapter_model.safetensors")

    with pytest.raises(Killed):
        train_adapter(MlxKilledAt(VAL_LOSSES, 25), cfg, tiny_model, tmp_path / "data", out, quiet=True)
    with pytest.raises(MorrisError, match="written by the mlx backend, and this run uses torch; resume with --backend mlx"):
        train_adapter(Torch(VAL_LOSSES), cfg, tiny_model, tmp_path / "data", out, resume=True, quiet=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lora.rank": 8}, "lora.rank = 32, not 8; resume with the same --rank"),
        ({"lora.target_modules": ["q_proj"]}, "resume with the same --target-modules"),
        ({"train.objective": "orpo"}, "resume with the same --objective"),
    ],
)
def test_a_resumed_run_keeps_the_adapter_shape_and_loss_it_started_with(tiny_model, tmp_path, change, message):
    from morris_mlx.errors import MorrisError

    settings = {"train.iters": 60, "train.steps_per_eval": 10, "train.patience": 0}
    (tmp_path / "data").mkdir()
    out = tmp_path / "adapter"

    with pytest.raises(Killed):
        train_adapter(KilledAt(VAL_LOSSES, 25), load_config(overrides=settings), tiny_model, tmp_path / "data", out, quiet=True)
    changed = load_config(overrides={**settings, **change})
    with pytest.raises(MorrisError, match=message.replace(".", r"\.").replace("[", r"\[")):
        train_adapter(ScriptedTrainer(VAL_LOSSES), changed, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    same = load_config(overrides=settings)
    same.lora.target_modules = list(reversed(same.lora.target_modules))  # the same modules, listed otherwise
    result = train_adapter(ScriptedTrainer(VAL_LOSSES), same, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    assert result.steps == 60


def test_all_layers_by_count_resumes_a_run_started_with_all_layers(tiny_model, tmp_path):
    from morris_mlx.errors import MorrisError

    settings = {"train.iters": 60, "train.steps_per_eval": 10, "train.patience": 0}
    (tmp_path / "data").mkdir()
    out = tmp_path / "adapter"
    depth = json.loads((tiny_model / "config.json").read_text())["num_hidden_layers"]
    with pytest.raises(Killed):
        train_adapter(KilledAt(VAL_LOSSES, 25), load_config(overrides=settings), tiny_model, tmp_path / "data", out, quiet=True)
    with pytest.raises(MorrisError, match="lora.num_layers = -1, not 1; resume with the same --num-layers"):
        fewer = load_config(overrides={**settings, "lora.num_layers": depth - 1})
        train_adapter(ScriptedTrainer(VAL_LOSSES), fewer, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    every = load_config(overrides={**settings, "lora.num_layers": depth})  # the same blocks, counted
    result = train_adapter(ScriptedTrainer(VAL_LOSSES), every, tiny_model, tmp_path / "data", out, resume=True, quiet=True)
    assert result.steps == 60
