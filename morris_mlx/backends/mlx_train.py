"""LoRA training on MLX through mlx-lm's own trainer (`mlx_lm.tuner.trainer.train`).

We do not write a training loop. What we add sits in the two hooks mlx-lm offers, the batch iterator
and the callback, plus a progress UI:
- the batch iterator makes the data order a pure function of (seed, epoch), fast-forwards on resume,
  runs validation at global steps, and writes checkpoints (adapter, optimizer state, step, RNG state)
  between steps, when the trainer has fully evaluated the previous one;
- the callback turns mlx-lm's reports into our metrics JSONL and lets a caller stop cleanly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from morris_mlx.atomic import atomic_dir, atomic_path, verify_manifest, write_json
from morris_mlx.backends.base import TrainCallback, TrainEvent, TrainResult
from morris_mlx.config import Config, write_config
from morris_mlx.errors import MorrisError
from morris_mlx.training import (
    EarlyStopping,
    MetricsLog,
    TrainPlan,
    checkpoint_dir,
    checkpoints,
    corpus_warning,
    estimate_seconds,
    fingerprint_model,
    make_plan,
    prune_checkpoints,
    warmup_updates,
    write_provenance,
)

log = logging.getLogger("morris")

ADAPTER_FILE = "adapters.safetensors"
LAST_ADAPTER_FILE = "last_adapters.safetensors"


def lora_keys(model: Any, target_modules: list[str]) -> list[str]:
    """mlx-lm wants keys relative to a block ("self_attn.q_proj"); we take bare names ("q_proj")."""
    import mlx.nn as nn

    block = model.layers[0]
    names = [
        name for name, module in block.named_modules() if isinstance(module, (nn.Linear, nn.QuantizedLinear))
    ]
    keys = []
    for target in target_modules:
        found = [n for n in names if n == target or n.endswith("." + target)]
        if not found:
            raise MorrisError(
                f"target module {target!r} is not a linear layer of this model; choose from: "
                + ", ".join(sorted({n.rsplit(".", 1)[-1] for n in names}))
            )
        keys.extend(found)
    return keys


def mlx_lora_parameters(cfg: Config, model: Any) -> dict[str, Any]:
    return {
        "rank": cfg.lora.rank,
        "scale": cfg.lora.scale,
        "dropout": cfg.lora.dropout,
        "keys": lora_keys(model, cfg.lora.target_modules),
    }


def adapter_config(
    cfg: Config,
    lora_parameters: dict[str, Any],
    num_layers: int,
    model_dir: Path,
    data_dir: Path,
    plan: TrainPlan,
) -> dict[str, Any]:
    """adapter_config.json with the keys `mlx_lm.tuner.utils.load_adapters` and `mlx_lm lora` use."""
    return {
        "model": str(model_dir),
        "data": str(data_dir),
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": lora_parameters,
        "batch_size": cfg.train.batch_size,
        "iters": plan.iters,
        "learning_rate": cfg.train.learning_rate,
        "grad_accumulation_steps": plan.grad_accumulation,
        "max_seq_length": cfg.train.max_seq_length,
        "mask_prompt": cfg.train.mask_prompt,
        "seed": cfg.train.seed,
        "train": True,
    }


def mlx_schedule(cfg: Config, total_updates: int):
    """The learning rate as a function of the optimizer step, with mx ops so mx.compile can trace it.

    Mirrors morris_mlx.training.learning_rate_at, which the torch backend uses.
    """
    import mlx.core as mx

    peak, warmup = cfg.train.learning_rate, warmup_updates(cfg.train, total_updates)
    span = max(1, total_updates - warmup)
    floor = 0.1 * peak

    def schedule(step):
        step = step.astype(mx.float32)
        if cfg.train.lr_schedule == "cosine":
            progress = mx.minimum(mx.maximum(step - warmup, 0.0) / span, 1.0)
            main = floor + (peak - floor) * 0.5 * (1.0 + mx.cos(math.pi * progress))
        else:
            main = mx.array(peak, dtype=mx.float32)
        if warmup:
            return mx.where(step < warmup, peak * (step + 1.0) / warmup, main)
        return main

    return schedule


def fix_rope_overrides(model_dir: Path) -> dict[str, Any]:
    """Top-level rope keys for configs written by transformers 5 (DESIGN.md's trap), passed to mlx-lm."""
    config = json.loads((model_dir / "config.json").read_text())
    params = config.get("rope_parameters") or {}
    overrides: dict[str, Any] = {}
    if "rope_theta" not in config and "rope_theta" in params:
        overrides["rope_theta"] = params["rope_theta"]
    if "rope_scaling" not in config and params.get("rope_type", "default") != "default":
        overrides["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
    return overrides


def load_model(model_dir: Path, trust_remote_code: bool = False):
    """mlx-lm's load, with our rope fix; errors become one-line MorrisErrors."""
    from mlx_lm.utils import load

    try:
        return load(
            str(model_dir),
            model_config=fix_rope_overrides(model_dir),
            tokenizer_config={"trust_remote_code": trust_remote_code},
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise MorrisError(f"mlx-lm cannot load the model in {model_dir}: {exc}") from None


def load_datasets(data_dir: Path, tokenizer: Any, cfg: Config):
    from mlx_lm.tuner.datasets import CacheDataset, load_local_dataset

    from morris_mlx.dataset.jsonl import load_split

    for split in ("train", "valid"):
        if not (data_dir / f"{split}.jsonl").is_file():
            raise MorrisError(f"{data_dir} has no {split}.jsonl; run `morris prepare --out {data_dir}` first")
        # mlx-lm fails on empty or non-chat files with IndexError/TypeError; the torch backend's
        # reader names the file, the line and the fix.
        load_split(data_dir, split)
    try:
        train, valid, _ = load_local_dataset(
            data_dir, tokenizer, SimpleNamespace(mask_prompt=cfg.train.mask_prompt)
        )
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise MorrisError(f"the training data in {data_dir} is not valid chat JSONL: {exc}") from None
    if len(valid) < cfg.train.batch_size:
        raise MorrisError(
            f"{data_dir}/valid.jsonl has {len(valid)} examples, fewer than the batch size "
            f"{cfg.train.batch_size}; add validation examples or lower --batch-size"
        )

    class TokenLengthDataset(CacheDataset):
        """mlx-lm batches by itemlen(), which for chat records measures the dict, not the tokens; sort by
        tokens as mlx-lm means to (and as the torch backend does), so both backends see the same order."""

        def itemlen(self, idx: int) -> int:
            return len(self[idx][0])

    train_set, valid_set = TokenLengthDataset(train), TokenLengthDataset(valid)
    # As the torch backend: a prompt that fills max_seq_length leaves no target token, and the loss
    # over zero tokens would quietly train on nothing.
    too_long = sum(
        ds[i][1] >= cfg.train.max_seq_length for ds in (train_set, valid_set) for i in range(len(ds))
    )
    if too_long:
        raise MorrisError(
            f"{too_long} examples have prompts of {cfg.train.max_seq_length}+ tokens and nothing left to learn; "
            "raise train.max_seq_length or shorten the system prompt"
        )
    return train_set, valid_set


def _save_adapter(model: Any, path: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.trainable_parameters()))
    with atomic_path(path) as tmp:
        mx.save_safetensors(str(tmp.with_suffix(".safetensors")), weights)
        tmp.with_suffix(".safetensors").replace(tmp)


class Checkpointer:
    """Checkpoints hold the adapter, the optimizer state, the step and the RNG state."""

    def __init__(self, adapter_dir: Path) -> None:
        self.adapter_dir = adapter_dir

    def save(self, step: int, model: Any, optimizer: Any, extra: dict[str, Any]) -> Path:
        import mlx.core as mx
        from mlx.utils import tree_flatten

        target = checkpoint_dir(self.adapter_dir, step)
        with atomic_dir(target, overwrite=True, manifest=True) as tmp:
            _save_adapter(model, tmp / ADAPTER_FILE)
            mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
            mx.save_safetensors(str(tmp / "rng.safetensors"), {"key": mx.random.state[0]})
            write_json(tmp / "state.json", {"step": step, **extra})
        return target

    def latest(self) -> Path | None:
        """The newest checkpoint that loads; a corrupt one is reported and skipped."""
        import mlx.core as mx

        for path in reversed(checkpoints(self.adapter_dir)):
            try:
                verify_manifest(path, f"checkpoint {path.name}", "it is skipped")
                json.loads((path / "state.json").read_text())
                for name in (ADAPTER_FILE, "optimizer.safetensors", "rng.safetensors"):
                    mx.load(str(path / name))
                return path
            except Exception as exc:  # noqa: BLE001 - any unreadable file disqualifies the checkpoint
                log.warning("checkpoint %s is unreadable (%s); trying the previous one", path.name, exc)
        return None

    def restore(self, path: Path, model: Any, optimizer: Any) -> dict[str, Any]:
        import mlx.core as mx
        from mlx.utils import tree_unflatten

        model.load_weights(str(path / ADAPTER_FILE), strict=False)
        optimizer.state = tree_unflatten(list(mx.load(str(path / "optimizer.safetensors")).items()))
        # mx.random.seed(n) sets the key to n's two 32-bit halves, so a saved key round-trips exactly.
        high, low = (int(x) for x in mx.load(str(path / "rng.safetensors"))["key"].tolist())
        mx.random.seed((high << 32) | low)
        return json.loads((path / "state.json").read_text())

    def prune(self, keep: int = 2) -> None:
        prune_checkpoints(self.adapter_dir, keep)


class ProgressUI:
    """Stands in for mlx-lm's TrainUI (same methods): one rich bar with loss, tokens/s, peak memory, ETA."""

    def __init__(self, total: int, start: int, quiet: bool = False) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            disable=quiet,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, stats="")
        self.val = "val -"

    def __call__(self, total_iters: int, rank: int = 0) -> ProgressUI:
        return self

    def __enter__(self) -> ProgressUI:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def update(self, loss: float, tokens_per_second: float, peak_gb: float) -> None:
        self.progress.update(
            self.task,
            stats=f"loss {loss:.3f} | {self.val} | {tokens_per_second:,.0f} tok/s | peak {peak_gb:.2f} GB",
        )

    def report_train(self, *args: Any) -> None:
        pass  # shown through update(), from the callback that knows the global step

    @contextlib.contextmanager
    def val_task(self, total: int):
        yield lambda: None

    def report_val(self, *args: Any) -> None:
        pass

    def report_save(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _patched_ui(ui: ProgressUI):
    """mlx-lm's trainer builds its TrainUI inside train(); swap in ours for the duration."""
    import mlx_lm.tuner.trainer as trainer

    original = trainer.TrainUI
    trainer.TrainUI = ui
    try:
        yield
    finally:
        trainer.TrainUI = original


@contextlib.contextmanager
def unpatched_block_class(model: Any):
    """mlx-lm's grad_checkpoint patches the block *class*; undo it afterwards so later models in this
    process (the TUI, bench, tests) are not silently checkpointed, with different dropout draws."""
    block_class = type(model.layers[0])
    original_call = block_class.__call__
    try:
        yield
    finally:
        block_class.__call__ = original_call


def count_tokens(dataset: Any) -> int:
    """Tokens in a CacheDataset (its itemlen() measures the raw record, not the tokens)."""
    return sum(len(dataset[i][0]) for i in range(len(dataset)))


def train_mlx(
    cfg: Config,
    model_dir: Path,
    data_dir: Path,
    adapter_dir: Path,
    resume: bool = False,
    callback: TrainCallback | None = None,
    quiet: bool = False,
) -> TrainResult:
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.trainer import TrainingArgs, evaluate, train
    from mlx_lm.tuner.trainer import iterate_batches as mlx_iterate_batches
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model_dir, data_dir, adapter_dir = Path(model_dir), Path(data_dir), Path(adapter_dir)
    if (
        (adapter_dir / ADAPTER_FILE).exists()
        and not resume
        and (adapter_dir / "morris_adapter.json").exists()
    ):
        raise MorrisError(
            f"{adapter_dir} already holds a finished adapter; pass --resume to continue it, "
            "or choose another --adapter-path"
        )
    if not resume and checkpoints(adapter_dir):
        raise MorrisError(
            f"{adapter_dir} holds checkpoints of an unfinished run; pass --resume to continue it, "
            "or choose another --adapter-path"
        )
    checkpointer = Checkpointer(adapter_dir)
    resume_from = checkpointer.latest() if resume else None
    if resume and resume_from is None:
        raise MorrisError(f"--resume: {adapter_dir} has no usable checkpoint; start without --resume")

    from morris_mlx.distributed import check_global_batch, mlx_global_token_loss, mlx_world

    world = mlx_world()
    # Only rank 0 writes files; every rank computes (validation included, its losses are all-summed).
    primary = world.rank() == 0
    quiet = quiet or not primary
    check_global_batch(cfg.train.batch_size, world.size())
    model, tokenizer = load_model(model_dir, cfg.model.trust_remote_code)
    train_set, valid_set = load_datasets(data_dir, tokenizer, cfg)
    plan = make_plan(cfg.train, len(train_set), count_tokens(train_set))
    num_layers = len(model.layers) if cfg.lora.num_layers == -1 else cfg.lora.num_layers
    if num_layers > len(model.layers):
        raise MorrisError(f"lora.num_layers is {num_layers} but the model has {len(model.layers)} layers")

    fingerprint = fingerprint_model(model_dir)
    seed = cfg.train.seed
    mx.random.seed(seed)
    np.random.seed(seed)
    model.freeze()
    lora_parameters = mlx_lora_parameters(cfg, model)
    linear_to_lora_layers(model, num_layers, lora_parameters)
    optimizer = optim.Adam(learning_rate=mlx_schedule(cfg, plan.updates))

    adapter_dir.mkdir(parents=True, exist_ok=True)
    if primary:
        # A resumed run is unfinished until it ends: the old provenance (with its file hashes) must not
        # vouch for an adapter that training is about to replace.
        (adapter_dir / "morris_adapter.json").unlink(missing_ok=True)
    start_step, best_val, best_step, since_best = 0, math.inf, None, 0
    if resume_from is not None:
        state = checkpointer.restore(resume_from, model, optimizer)
        if state.get("base_fingerprint", fingerprint) != fingerprint:
            raise MorrisError(
                f"{adapter_dir} was trained on another base model; pass the same --model to resume"
            )
        start_step, best_val, best_step = state["step"], state["best_val"], state["best_step"]
        since_best = state.get("since_best", 0)
        log.info("resuming from %s (step %d of %d)", resume_from.name, start_step, plan.iters)
    early = EarlyStopping(cfg.train.patience, best_val, since_best)
    metrics = (
        MetricsLog(adapter_dir, truncate_after_step=start_step if resume_from else None) if primary else None
    )
    if primary:
        write_config(cfg, adapter_dir)
        write_json(
            adapter_dir / "adapter_config.json",
            adapter_config(cfg, lora_parameters, num_layers, model_dir, data_dir, plan),
        )

    stop_requested = False
    last_train_loss: float | None = None
    started = time.perf_counter()

    def emit(event: TrainEvent) -> None:
        nonlocal stop_requested
        if metrics is not None:
            metrics.write(event)
        if callback is not None and callback(event):
            stop_requested = True

    from mlx.utils import tree_flatten

    from morris_mlx.backends import mlx_device

    parameters = sum(v.size for _, v in tree_flatten(model.parameters()))
    estimate = estimate_seconds(plan, "mlx", mlx_device() or "cpu", parameters)
    emit(
        TrainEvent(
            "plan",
            start_step,
            {
                **plan.__dict__,
                "resumed": resume_from is not None,
                "estimated_seconds": estimate,
                "world_size": world.size(),
            },
        )
    )
    if primary:
        log.info(plan.describe() + (f"; roughly {estimate / 60:.0f} min" if estimate else ""))
        if world.size() > 1:
            log.info("data parallel over %d processes; global batch %d", world.size(), cfg.train.batch_size)
        if warning := corpus_warning(plan):
            log.warning(warning)

    ui = ProgressUI(plan.iters, start_step, quiet=quiet)

    progress: dict[str, int] = {}

    def validate(step: int) -> None:
        nonlocal best_val, best_step, stop_requested
        if progress.get("validated") == step:
            return
        progress["validated"] = step
        val_loss = evaluate(
            model=model,
            dataset=valid_set,
            batch_size=cfg.train.batch_size,
            num_batches=cfg.train.val_batches,
            max_seq_length=cfg.train.max_seq_length,
            iterate_batches=batches,
        )
        model.train()
        improved, should_stop = early.update(val_loss)
        if improved:
            best_val, best_step = val_loss, step
            if primary:
                _save_adapter(model, adapter_dir / ADAPTER_FILE)
        if should_stop and step < plan.iters:
            if primary:
                log.info(
                    "validation loss has not improved for %d validations; stopping early", early.patience
                )
            stop_requested = True
        ui.val = f"val {val_loss:.3f}"
        emit(TrainEvent("val", step, {"val_loss": val_loss, "best": improved}))

    def save_checkpoint(step: int) -> None:
        if not primary:
            return
        path = checkpointer.save(
            step,
            model,
            optimizer,
            {
                "best_val": best_val,
                "best_step": best_step,
                "since_best": early.since_best,
                "base_fingerprint": fingerprint,
            },
        )
        checkpointer.prune()
        emit(TrainEvent("checkpoint", step, {"path": str(path)}))

    def batches(dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        if not loop:  # validation: always the same batches, whatever happened before
            np.random.seed(cfg.train.seed)
            yield from mlx_iterate_batches(dataset, batch_size, max_seq_length, comm_group=comm_group)
            return
        step, epoch = 0, 0
        while True:
            # The order of each epoch depends on (seed, epoch) only, so a resumed run sees the same data.
            np.random.seed(cfg.train.seed + epoch)
            for batch in mlx_iterate_batches(dataset, batch_size, max_seq_length, comm_group=comm_group):
                if step >= start_step:
                    if (step > start_step or resume_from is None) and step % plan.steps_per_eval == 0:
                        validate(step)
                    if step > start_step and step % plan.save_every == 0:
                        save_checkpoint(step)
                    if stop_requested and step % plan.grad_accumulation == 0:
                        progress["stopped_at"] = step
                        return
                    yield batch
                step += 1
            epoch += 1

    class Reporter(TrainingCallback):
        def on_train_loss_report(self, info: dict[str, Any]) -> None:
            nonlocal last_train_loss
            step = start_step + info["iteration"]
            last_train_loss = info["train_loss"]
            elapsed = time.perf_counter() - started
            done = step - start_step
            eta = elapsed / done * (plan.iters - step) if done else float("nan")
            ui.update(info["train_loss"], info["tokens_per_second"], info["peak_memory"])
            emit(
                TrainEvent(
                    "train",
                    step,
                    {
                        "loss": info["train_loss"],
                        "learning_rate": info["learning_rate"],
                        "tokens_per_second": info["tokens_per_second"],
                        "trained_tokens": info["trained_tokens"],
                        "peak_memory_gb": info["peak_memory"],
                        "eta_s": eta,
                        "update": step // plan.grad_accumulation,
                    },
                )
            )

    args = TrainingArgs(
        batch_size=cfg.train.batch_size,
        iters=plan.iters - start_step,
        val_batches=cfg.train.val_batches,
        steps_per_report=cfg.train.steps_per_report,
        steps_per_eval=10**12,  # validation runs from `batches`, at global steps
        steps_per_save=10**12,  # so do checkpoints, with optimizer and RNG state
        max_seq_length=cfg.train.max_seq_length,
        adapter_file=str(adapter_dir / LAST_ADAPTER_FILE),
        grad_checkpoint=cfg.train.grad_checkpoint,
        grad_accumulation_steps=plan.grad_accumulation,
    )
    with _patched_ui(ui), unpatched_block_class(model):
        train(
            model=model,
            optimizer=optimizer,
            train_dataset=train_set,
            val_dataset=None,
            args=args,
            iterate_batches=batches,
            training_callback=Reporter(),
            **({"loss": mlx_global_token_loss(world)} if world.size() > 1 else {}),
        )
    final_step = progress.get("stopped_at", plan.iters)
    validate(final_step)
    save_checkpoint(final_step)
    result = {
        "best_val_loss": best_val,
        "best_step": best_step,
        "final_train_loss": last_train_loss,
        "steps": final_step,
        "stopped_early": "stopped_at" in progress,
        "train_seconds": time.perf_counter() - started,
    }
    if primary:
        write_provenance(adapter_dir, cfg, model_dir, data_dir, "mlx", "mlx", plan, result)
    emit(TrainEvent("done", final_step, result))
    return TrainResult(adapter_dir, final_step, best_val, last_train_loss, "stopped_at" in progress)
