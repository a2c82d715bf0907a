"""The one training loop. The CLI, the TUI and every rank of a distributed run train through
`train_adapter`, whatever the backend; a backend only supplies the steps (training/trainer.py).

Order of work: refuse what would overwrite a finished adapter or an unfinished run, pick the checkpoint
to resume from, load and check the input (nothing is written before), plan, then loop: validation and
checkpoints at the plan's global steps, early stopping and stop requests on whole optimizer updates,
the best-validation adapter kept as the result, the provenance file written last.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from morris_mlx.adapter_format.checks import model_layout
from morris_mlx.atomic import remove_stale_temps
from morris_mlx.config import CONFIG_FILENAME, Config, write_config
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_WEIGHTS, BACKEND_OF_FORMAT, CHECKPOINTS_DIRNAME, PROVENANCE_FILENAME
from morris_mlx.models.fingerprint import fingerprint_model
from morris_mlx.training.checkpoints import CheckpointStore, checkpoints
from morris_mlx.training.events import TrainCallback, TrainEvent, TrainResult
from morris_mlx.training.plan import (
    EarlyStopping,
    TrainPlan,
    check_global_batch,
    corpus_warning,
    learning_rate_at,
    make_plan,
)
from morris_mlx.training.preference import describe as describe_objective
from morris_mlx.training.progress import ProgressBar, Stopwatch, format_duration
from morris_mlx.training.records import MetricsLog, write_provenance
from morris_mlx.training.trainer import StepTrainer

log = logging.getLogger("morris")


@dataclass
class LoopState:
    """Everything besides tensors that a resumed run needs to continue as if never stopped."""

    best_val: float | None = None  # as early stopping judges it (smoothed with train.val_smoothing)
    best_val_raw: float | None = None  # the validation loss measured at best_step
    best_step: int | None = None
    since_best: int = 0  # validations without improvement, for early stopping
    early_stopped: bool = False  # early stopping fired (a stop the user asked for does not count)
    smoothed_val: float | None = None  # the moving average of validation losses (train.val_smoothing)
    trained_tokens: int = 0
    last_train_loss: float | None = None
    report_loss: float = 0.0  # sums since the last train report
    report_tokens: int = 0
    report_steps: int = 0
    report_seconds: float = 0.0
    base_fingerprint: str = ""
    seconds_before: float = 0.0  # training time of the runs this one resumes, up to their checkpoint

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> LoopState:
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})


def refuse_to_overwrite(adapter_dir: Path, weights: str, resume: bool) -> None:
    if resume:
        return
    if (adapter_dir / weights).exists() and (adapter_dir / PROVENANCE_FILENAME).exists():
        raise MorrisError(
            f"{adapter_dir} already holds a finished adapter; pass --resume to continue it, "
            "or choose another --adapter-path"
        )
    if checkpoints(adapter_dir):
        raise MorrisError(
            f"{adapter_dir} holds checkpoints of an unfinished run; pass --resume to continue it, "
            "or choose another --adapter-path"
        )


def no_checkpoint_to_resume(adapter_dir: Path, trainer: StepTrainer) -> str:
    """Why --resume found nothing to continue, and the way out: checkpoints of the other backend are
    unreadable to this one, and starting afresh would then be refused because checkpoints exist."""
    found = checkpoints(adapter_dir)
    if not found:
        return f"--resume: {adapter_dir} has no usable checkpoint; start without --resume"
    for adapter_format, weights in ADAPTER_WEIGHTS.items():
        if adapter_format != trainer.adapter_format and (found[-1] / weights).exists():
            backend = BACKEND_OF_FORMAT[adapter_format]
            return (
                f"--resume: the checkpoints in {adapter_dir} were written by the {backend} backend, and this "
                f"run uses {trainer.backend}; resume with --backend {backend}"
            )
    return (
        f"--resume: none of the {len(found)} checkpoints in {adapter_dir} reads back (warnings above); "
        "start afresh in another --adapter-path"
    )


# What a resumed run must share with its start: the loss, and the shape and scale of the adapter (MLX
# loads a checkpoint without checking shapes, so another rank or module list would fail obscurely or
# silently adapt other layers).
RESUME_KEYS = (
    ("train", "objective"),
    ("train", "beta"),
    ("lora", "rank"),
    ("lora", "alpha"),
    ("lora", "target_modules"),
    ("lora", "num_layers"),
)


def model_depth(model_dir: Path) -> int | None:
    """The number of transformer blocks of the model, or None where its folder does not say (loading the
    model, next, then says what is wrong with it)."""
    try:
        return model_layout(model_dir).num_layers
    except MorrisError:
        return None


def _comparable(key: str, value: Any, depth: int | None) -> Any:
    if isinstance(value, list):
        return sorted(value)
    if key == "num_layers" and depth is not None and value == depth:
        return -1  # the last N blocks of an N-block model are all of them
    return value


def check_same_recipe(adapter_dir: Path, cfg: Config, model_dir: Path) -> None:
    """A resumed run keeps the loss and adapter shape it started with: another would make one adapter of
    two trainings, and the config written beside it would hide the first."""
    try:
        saved = json.loads((adapter_dir / CONFIG_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no readable record of the start: nothing to compare with
    defaults, depth = Config(), model_depth(model_dir)
    for section, key in RESUME_KEYS:
        table = saved.get(section) if isinstance(saved, dict) else None
        now = getattr(getattr(cfg, section), key)
        was = table.get(key, getattr(getattr(defaults, section), key)) if isinstance(table, dict) else now
        if _comparable(key, was, depth) != _comparable(key, now, depth):
            flag = "--" + key.replace("_", "-")
            raise MorrisError(
                f"{adapter_dir} was trained with {section}.{key} = {was!r}, not {now!r}; resume with the "
                f"same {flag}, or start afresh in another --adapter-path"
            )


def clear_leftovers(adapter_dir: Path) -> None:
    """Temp files of a killed earlier run in this adapter's folders (only rank 0 writes there)."""
    for folder in (adapter_dir, adapter_dir / CHECKPOINTS_DIRNAME):
        if removed := remove_stale_temps(folder):
            log.info("removed %d leftover temp file(s) of an interrupted run in %s", len(removed), folder)


class Run:
    """One training run of `trainer` into `adapter_dir`; `train_adapter` drives it."""

    def __init__(
        self,
        trainer: StepTrainer,
        cfg: Config,
        adapter_dir: Path,
        plan: TrainPlan,
        state: LoopState,
        start_step: int,
        resumed: bool,
        callback: TrainCallback | None,
        quiet: bool,
    ) -> None:
        self.trainer, self.cfg, self.adapter_dir, self.plan = trainer, cfg, adapter_dir, plan
        self.state, self.start_step, self.resumed, self.callback = state, start_step, resumed, callback
        self.primary = trainer.rank == 0
        self.store = CheckpointStore(adapter_dir, trainer)
        self.metrics = MetricsLog(adapter_dir, start_step if resumed else None) if self.primary else None
        self.clock = Stopwatch(plan, start_step)
        self.bar = ProgressBar(f"train ({trainer.backend})", plan.iters, start_step, quiet or not self.primary)
        self.estimated = False
        # A checkpoint on a validation step was saved after that validation: the loop does not repeat it.
        validated = start_step if resumed and start_step % plan.steps_per_eval == 0 else -1
        self.done = {"validated": validated, "saved": -1}
        # A run killed after early stopping fired but before it ended stops where it was, as it would have
        # (unless the patience asked for now is longer). A stop the user asked for is theirs to resume from.
        patience = cfg.train.patience
        self.stop_requested = state.early_stopped = (
            resumed and state.early_stopped and bool(patience) and state.since_best >= patience
        )

    def emit(self, event: TrainEvent) -> None:
        if self.metrics is not None:
            self.metrics.write(event)
        if self.callback is not None and self.callback(event):
            self.stop_requested = True

    def validate(self, step: int) -> None:
        if self.done["validated"] == step:
            return
        self.done["validated"] = step
        tic = time.perf_counter()
        val_loss = self.trainer.evaluate()
        state = self.state
        judged = self.smoothed(val_loss)
        early = EarlyStopping(
            self.cfg.train.patience, math.inf if state.best_val is None else state.best_val, state.since_best
        )
        improved, should_stop = early.update(judged) if not math.isnan(judged) else (False, False)
        state.since_best = early.since_best
        if improved:
            state.best_val, state.best_val_raw, state.best_step = judged, val_loss, step
            if self.primary:
                self.trainer.save_adapter(self.adapter_dir)
        if should_stop and step < self.plan.iters and not self.stop_requested:
            if self.primary:
                log.info("validation loss has not improved for %d validations; stopping early", early.patience)
            self.stop_requested = state.early_stopped = True
        self.clock.add("val", time.perf_counter() - tic)
        self.bar.show(val=val_loss)
        self.emit(TrainEvent("val", step, {"val_loss": val_loss, "best": improved}))

    def smoothed(self, val_loss: float) -> float:
        """The validation loss early stopping judges: with train.val_smoothing s, an exponential moving
        average s * previous + (1 - s) * this one, so one lucky validation on a few articles neither
        stops the run nor picks the adapter."""
        weight, state = self.cfg.train.val_smoothing, self.state
        if weight and not math.isnan(val_loss):
            previous = state.smoothed_val
            state.smoothed_val = val_loss if previous is None else weight * previous + (1 - weight) * val_loss
            return state.smoothed_val
        return val_loss

    def save_checkpoint(self, step: int) -> None:
        if self.done["saved"] == step or not self.primary:
            return
        self.done["saved"] = step
        tic = time.perf_counter()
        saved = {**asdict(self.state), "seconds_before": self.state.seconds_before + self.clock.elapsed()}
        path = self.store.save(step, saved)
        self.clock.add("save", time.perf_counter() - tic)
        self.emit(TrainEvent("checkpoint", step, {"path": str(path)}))

    def step(self, step: int) -> None:
        plan, state = self.plan, self.state
        tic = time.perf_counter()
        update = step // plan.grad_accumulation
        learning_rate = learning_rate_at(self.cfg.train, update, plan.updates)
        apply_update = (step + 1) % plan.grad_accumulation == 0
        loss, tokens = self.trainer.train_step(step, learning_rate, apply_update)
        seconds = time.perf_counter() - tic
        self.clock.add("step", seconds)
        state.report_loss += loss
        state.report_tokens += tokens
        state.report_steps += 1
        state.report_seconds += seconds
        completed = step + 1
        self.bar.advance(self.clock.remaining(completed))
        if not self.estimated and self.clock.ready:
            self.estimated = True
            self.announce_estimate(completed)
        if completed % self.cfg.train.steps_per_report == 0 or completed == plan.iters:
            self.report(completed, learning_rate)

    def announce_estimate(self, completed: int) -> None:
        left = self.clock.remaining(completed)
        per_step = self.clock.mean("step") or math.nan
        if self.primary:
            log.info(
                "measured %.2f s per iteration: about %s left (%d of %d iterations done)",
                per_step,
                format_duration(left),
                completed,
                self.plan.iters,
            )
        self.emit(TrainEvent("estimate", completed, {"seconds_per_step": per_step, "remaining_s": left}))

    def report(self, completed: int, learning_rate: float) -> None:
        state = self.state
        train_loss = state.report_loss / state.report_steps
        tokens_per_second = state.report_tokens / state.report_seconds if state.report_seconds > 0 else 0.0
        state.trained_tokens += state.report_tokens
        state.last_train_loss = train_loss
        peak = self.trainer.peak_memory_gb()
        self.bar.show(train_loss, tokens_per_second, peak)
        data = {
            "loss": train_loss,
            "learning_rate": learning_rate,
            "tokens_per_second": tokens_per_second,
            "trained_tokens": state.trained_tokens,
            "peak_memory_gb": peak,
            "eta_s": self.clock.remaining(completed),
            "update": completed // self.plan.grad_accumulation,
        }
        state.report_loss, state.report_tokens, state.report_steps, state.report_seconds = 0.0, 0, 0, 0.0
        self.emit(TrainEvent("train", completed, data))

    def loop(self) -> int:
        """Train from the start step to the plan's end or a stop; returns the last step."""
        plan = self.plan
        with self.bar:
            for step in range(self.start_step, plan.iters):
                if step % plan.steps_per_eval == 0:
                    self.validate(step)
                if step > self.start_step and step % plan.save_every == 0:
                    self.save_checkpoint(step)
                if self.stop_requested and step % plan.grad_accumulation == 0:
                    return step
                self.step(step)
            return plan.iters


def train_adapter(
    trainer: StepTrainer,
    cfg: Config,
    model_dir: Path,
    data_dir: Path,
    adapter_dir: Path,
    resume: bool = False,
    callback: TrainCallback | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train a LoRA adapter into `adapter_dir` with `trainer`'s backend; `callback` sees every event and
    may return True to stop cleanly at the next optimizer update."""
    model_dir, data_dir, adapter_dir = Path(model_dir), Path(data_dir), Path(adapter_dir)
    weights = ADAPTER_WEIGHTS[trainer.adapter_format]
    refuse_to_overwrite(adapter_dir, weights, resume)
    trainer.join(cfg)
    check_global_batch(cfg.train.batch_size, trainer.world_size)
    if trainer.rank == 0:
        clear_leftovers(adapter_dir)
    store = CheckpointStore(adapter_dir, trainer)
    resume_from = store.latest() if resume else None
    if resume and resume_from is None:
        raise MorrisError(no_checkpoint_to_resume(adapter_dir, trainer))
    if resume_from is not None:
        check_same_recipe(adapter_dir, cfg, model_dir)

    data = trainer.load(cfg, model_dir, data_dir)  # every check on the input, before any file is written
    plan = make_plan(cfg.train, data.examples, data.tokens)
    fingerprint = fingerprint_model(model_dir)
    trainer.build(plan)
    state, start_step = LoopState(base_fingerprint=fingerprint), 0
    if resume_from is not None:
        saved = store.restore(resume_from)
        if saved.get("base_fingerprint") != fingerprint:
            raise MorrisError(f"{adapter_dir} was trained on another base model; pass the same --model to resume")
        start_step, state = saved["step"], LoopState.from_saved(saved)
        log.info("resuming from %s (step %d of %d)", resume_from.name, start_step, plan.iters)

    primary = trainer.rank == 0
    adapter_dir.mkdir(parents=True, exist_ok=True)
    if primary:
        # A resumed run is unfinished until it ends: the old provenance (with its file hashes) must not
        # vouch for an adapter that training is about to replace.
        (adapter_dir / PROVENANCE_FILENAME).unlink(missing_ok=True)
        write_config(cfg, adapter_dir)
    run = Run(trainer, cfg, adapter_dir, plan, state, start_step, resume_from is not None, callback, quiet)
    announce_plan(run, trainer)
    final_step = run.loop()
    run.validate(final_step)
    run.save_checkpoint(final_step)
    if primary and not (adapter_dir / weights).exists():  # every validation was NaN: keep the last
        trainer.save_adapter(adapter_dir)
    trainer.finish(adapter_dir if primary else None)
    result = {
        "best_val_loss": state.best_val_raw if state.best_val_raw is not None else state.best_val,
        "best_judged_val_loss": state.best_val,
        "best_step": state.best_step,
        "final_train_loss": state.last_train_loss,
        "steps": final_step,
        "stopped_early": final_step < plan.iters,
        "trained_tokens": state.trained_tokens,
        "train_seconds": state.seconds_before + run.clock.elapsed(),  # a resumed run counts its past
    }
    if primary:
        write_provenance(adapter_dir, cfg, model_dir, data_dir, trainer.backend, trainer.adapter_format, plan, result)
    run.emit(TrainEvent("done", final_step, result))
    return TrainResult(adapter_dir, final_step, result["best_val_loss"], state.last_train_loss, final_step < plan.iters)


def announce_plan(run: Run, trainer: StepTrainer) -> None:
    plan = run.plan
    run.emit(
        TrainEvent(
            "plan",
            run.start_step,
            {**asdict(plan), "resumed": run.resumed, "world_size": trainer.world_size},
        )
    )
    if trainer.rank != 0:
        return
    log.info(plan.describe() + "; the time estimate follows the first timed iterations")
    if run.cfg.train.objective != "sft":
        log.info("preference stage: %s", describe_objective(run.cfg.train.objective, run.cfg.train.beta))
    if trainer.world_size > 1:
        log.info("data parallel over %d processes; global batch %d", trainer.world_size, run.cfg.train.batch_size)
    if warning := corpus_warning(plan):
        log.warning(warning)
