"""LoRA training with transformers + peft, with the semantics of mlx-lm's trainer.

The same config trains the same way on both backends:
- examples are mlx-lm's ChatDataset: the chat template over all messages; with mask_prompt the loss
  starts at the length of the templated prompt (all messages but the last, plus the generation prompt);
- batches are mlx-lm's: examples sorted by length, cut into batches, batches shuffled per epoch by
  numpy with seed + epoch (the MLX backend's order), right-padded with zeros to 1 + a multiple of 32;
- the loss is mlx-lm's default_loss: mean cross-entropy over the unmasked targets of a micro-batch;
- gradients are summed over grad_accumulation micro-batches and divided by it before the update;
- the optimizer is mlx's Adam, which has no bias correction, computed by torch.optim.Adam (see MlxAdam).
Around it: validation and resumable checkpoints at the plan's global steps, the best-validation adapter
kept as the result, and the metrics JSONL both backends write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from morris_mlx.atomic import atomic_dir, verify_manifest, write_json
from morris_mlx.backends.base import PROVENANCE_FILENAME, TrainCallback, TrainEvent, TrainResult
from morris_mlx.backends.torch_backend import (
    ADAPTER_CONFIG,
    PEFT_WEIGHTS,
    load_model,
    load_tokenizer,
    peak_memory_gb,
    quiet_peft,
)
from morris_mlx.config import Config, write_config
from morris_mlx.errors import MorrisError
from morris_mlx.training import (
    EarlyStopping,
    MetricsLog,
    Timer,
    checkpoint_dir,
    checkpoints,
    corpus_warning,
    fingerprint_model,
    learning_rate_at,
    make_plan,
    prune_checkpoints,
    write_provenance,
)

log = logging.getLogger("morris")

PAD_TO = 32  # mlx-lm pads each batch to 1 + a multiple of 32 tokens


# data -------------------------------------------------------------------------------------------------


@dataclass
class Example:
    tokens: list[int]
    offset: int  # first target token in the loss (0 without prompt masking)


def read_split(data_dir: Path, split: str) -> list[dict[str, Any]]:
    """The chat records of `split`.jsonl, validated by the dataset package (errors name file and line)."""
    from morris_mlx.dataset.jsonl import load_split

    if not Path(data_dir).is_dir():
        raise MorrisError(
            f"data folder {data_dir} does not exist; run `morris prepare --out {data_dir}` first"
        )
    return load_split(data_dir, split)


def tokenize(rows: list[dict[str, Any]], tokenizer: Any, mask_prompt: bool) -> list[Example]:
    """mlx-lm's ChatDataset.process for every record."""
    from jinja2 import TemplateError

    examples = []
    for row in rows:
        messages, tools = row["messages"], row.get("tools")
        try:
            tokens = tokenizer.apply_chat_template(messages, tools=tools, return_dict=False)
            offset = 0
            if mask_prompt:
                prompt = tokenizer.apply_chat_template(
                    messages[:-1],
                    tools=tools,
                    add_generation_prompt=messages[-1].get("role") == "assistant",
                    return_dict=False,
                )
                offset = len(prompt)
        except TemplateError as exc:
            raise MorrisError(
                f"the model's chat template rejects a training example ({exc}); prepare the data for this model"
            ) from None
        examples.append(Example([int(t) for t in tokens], offset))
    return examples


def make_batches(examples: list[Example], batch_size: int) -> list[list[int]]:
    """Indices sorted by length, cut into whole batches (a remainder is dropped, as mlx-lm does)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].tokens))
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def epoch_order(seed: int, epoch: int, n_batches: int) -> np.ndarray:
    """The batch order of an epoch: a function of (seed, epoch) only, so a resumed run sees the same data."""
    return np.random.RandomState(seed + epoch).permutation(n_batches)


def collate(
    examples: list[Example], indices: list[int], max_seq_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token matrix (zero-padded) and (offset, length) rows, as mlx-lm's iterate_batches makes them."""
    batch = [examples[i] for i in indices]
    longest = max(len(e.tokens) for e in batch)
    width = min(1 + PAD_TO * ((longest + PAD_TO - 1) // PAD_TO), max_seq_length)
    tokens = np.zeros((len(batch), width), np.int64)
    bounds = np.zeros((len(batch), 2), np.int64)
    for row, example in enumerate(batch):
        length = min(len(example.tokens), max_seq_length)
        tokens[row, :length] = example.tokens[:length]
        bounds[row] = (example.offset, length)
    return torch.from_numpy(tokens), torch.from_numpy(bounds)


def batch_loss(model: Any, tokens: torch.Tensor, bounds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mlx-lm's default_loss. Its mask keeps targets at positions offset..length inclusive, so each
    sequence also learns the first padding token (id 0) after its last token; kept for parity."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = model(input_ids=inputs).logits.float()
    steps = torch.arange(1, targets.shape[1] + 1, device=tokens.device)
    mask = (steps >= bounds[:, 0:1]) & (steps <= bounds[:, 1:])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    ce = ce.view_as(targets) * mask
    ntoks = mask.sum()
    return ce.sum() / ntoks, ntoks


# optimizer --------------------------------------------------------------------------------------------


class MlxAdam:
    """mlx.optimizers.Adam (m / (sqrt(v) + eps), no bias correction) computed by torch.optim.Adam.

    torch always bias-corrects: its step is lr/c1 * m / (sqrt(v)/c2 + eps) with c1 = 1 - b1^t and
    c2 = sqrt(1 - b2^t). Feeding it lr * c1 / c2 and eps / c2 makes that exactly lr * m / (sqrt(v) + eps).
    """

    def __init__(
        self, params: list[torch.nn.Parameter], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.betas, self.eps = betas, eps
        self.torch = torch.optim.Adam(params, lr=1e-3, betas=betas, eps=eps, weight_decay=0.0)

    def step(self, learning_rate: float, update: int) -> None:
        """Apply optimizer update number `update` (0-based) with `learning_rate`."""
        t = update + 1
        c1 = 1 - self.betas[0] ** t
        c2 = math.sqrt(1 - self.betas[1] ** t)
        for group in self.torch.param_groups:
            group["lr"] = learning_rate * c1 / c2
            group["eps"] = self.eps / c2
        self.torch.step()
        self.torch.zero_grad(set_to_none=True)


# checkpoints ------------------------------------------------------------------------------------------


def save_adapter(model: Any, target_dir: Path) -> None:
    """Write the PEFT adapter (adapter_model.safetensors + adapter_config.json) into `target_dir`,
    each file replaced atomically so a reader never sees a half-written adapter."""
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".adapter-") as tmp:
        model.save_pretrained(tmp)
        for name in (ADAPTER_CONFIG, PEFT_WEIGHTS):
            with open(Path(tmp) / name, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(Path(tmp) / name, target_dir / name)


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    if torch.backends.mps.is_available():
        tensors["torch_mps"] = torch.mps.get_rng_state()
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    python = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
    }
    return tensors, python


def _set_rng_state(tensors: dict[str, torch.Tensor], python: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    if "torch_mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["torch_mps"])
    version, internal, gauss = python["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = python["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


class Checkpointer:
    """A checkpoint is a PEFT adapter directory plus optimizer state, RNG state and the loop's state,
    all safetensors or JSON (no pickle), written with atomic_dir so a crash leaves no partial one."""

    def __init__(self, adapter_dir: Path) -> None:
        self.adapter_dir = adapter_dir

    def save(self, step: int, model: Any, optimizer: MlxAdam, state: dict[str, Any]) -> Path:
        from safetensors.torch import save_file

        target = checkpoint_dir(self.adapter_dir, step)
        with atomic_dir(target, overwrite=True, manifest=True) as tmp:
            model.save_pretrained(str(tmp))
            opt = optimizer.torch.state_dict()
            tensors, scalars = {}, {}
            for index, param_state in opt["state"].items():
                for key, value in param_state.items():
                    if torch.is_tensor(value):
                        tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
                    else:
                        scalars[f"{index}.{key}"] = value
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            write_json(tmp / "optimizer.json", {"param_groups": opt["param_groups"], "scalars": scalars})
            rng_tensors, rng_python = _rng_state()
            save_file(rng_tensors, str(tmp / "rng.safetensors"))
            write_json(tmp / "rng.json", rng_python)
            write_json(tmp / "state.json", {"step": step, **state})
        return target

    def latest(self) -> Path | None:
        """The newest checkpoint that reads back; an unreadable one is reported and skipped."""
        from safetensors.torch import load_file

        for path in reversed(checkpoints(self.adapter_dir)):
            try:
                verify_manifest(path, f"checkpoint {path.name}", "it is skipped")
                for name in ("state.json", "optimizer.json", "rng.json", ADAPTER_CONFIG):
                    json.loads((path / name).read_text(encoding="utf-8"))
                for name in (PEFT_WEIGHTS, "optimizer.safetensors", "rng.safetensors"):
                    load_file(str(path / name))
                return path
            except Exception as exc:  # noqa: BLE001 - any unreadable file disqualifies the checkpoint
                log.warning("checkpoint %s is unreadable (%s); trying the previous one", path.name, exc)
        return None

    def restore(self, path: Path, model: Any, optimizer: MlxAdam) -> dict[str, Any]:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        try:
            result = set_peft_model_state_dict(model, load_file(str(path / PEFT_WEIGHTS)))
        except RuntimeError:  # shapes differ: another rank or another base model
            raise MorrisError(
                f"checkpoint {path} was made with another LoRA rank or base model; resume with the same "
                "settings, or start afresh in another --adapter-path"
            ) from None
        unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if unexpected:
            raise MorrisError(
                f"checkpoint {path} does not match this LoRA config ({unexpected[0]}); start afresh"
            )
        saved = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
        state: dict[int, dict[str, Any]] = {}
        for key, value in load_file(str(path / "optimizer.safetensors")).items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        for key, value in saved["scalars"].items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        groups = [{**g, "betas": tuple(g["betas"])} for g in saved["param_groups"]]
        try:
            optimizer.torch.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise MorrisError(
                f"checkpoint {path} does not match this LoRA config ({exc}); start afresh"
            ) from None
        _set_rng_state(load_file(str(path / "rng.safetensors")), json.loads((path / "rng.json").read_text()))
        return json.loads((path / "state.json").read_text(encoding="utf-8"))

    def prune(self, keep: int = 2) -> None:
        prune_checkpoints(self.adapter_dir, keep)


# progress ---------------------------------------------------------------------------------------------


class Progress:
    """One rich bar: iterations, loss, validation loss, tokens/s, peak memory, ETA."""

    def __init__(self, total: int, start: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]train (torch)"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            disable=quiet,
        )
        self.task = self.bar.add_task("train", total=total, completed=start, stats="")
        self.val = "val -"
        self.train = "loss -"

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def advance(self) -> None:
        self.bar.advance(self.task)

    def show(
        self, loss: float | None = None, tps: float = 0.0, peak_gb: float = 0.0, val: float | None = None
    ) -> None:
        if loss is not None:
            self.train = f"loss {loss:.3f} | {tps:,.0f} tok/s | peak {peak_gb:.2f} GB"
        if val is not None:
            self.val = f"val {val:.3f}"
        self.bar.update(self.task, stats=f"{self.train} | {self.val}")


# the run ----------------------------------------------------------------------------------------------


@dataclass
class LoopState:
    """Everything besides tensors that a resumed run needs to continue as if never stopped."""

    best_val: float | None = None
    best_step: int | None = None
    trained_tokens: int = 0
    last_train_loss: float | None = None
    report_loss: float = 0.0  # sums since the last train report
    report_tokens: int = 0
    report_steps: int = 0
    base_fingerprint: str = ""
    since_best: int = 0  # validations without improvement, for early stopping


def load_examples(cfg: Config, data_dir: Path, tokenizer: Any) -> tuple[list[Example], list[Example]]:
    """The tokenized train and valid splits, checked to be trainable with this config."""
    train_set = tokenize(read_split(data_dir, "train"), tokenizer, cfg.train.mask_prompt)
    valid_set = tokenize(read_split(data_dir, "valid"), tokenizer, cfg.train.mask_prompt)
    too_long = sum(e.offset >= cfg.train.max_seq_length for e in train_set + valid_set)
    if too_long:
        raise MorrisError(
            f"{too_long} examples have prompts of {cfg.train.max_seq_length}+ tokens and nothing left to learn; "
            "raise train.max_seq_length or shorten the system prompt"
        )
    if len(valid_set) < cfg.train.batch_size:
        raise MorrisError(
            f"{data_dir}/valid.jsonl has {len(valid_set)} examples, fewer than the batch size "
            f"{cfg.train.batch_size}; add validation examples or lower --batch-size"
        )
    return train_set, valid_set


def _lora_config(cfg: Config, model: Any) -> Any:
    from peft import LoraConfig

    total = model.config.num_hidden_layers
    n = total if cfg.lora.num_layers == -1 else cfg.lora.num_layers
    if n > total:
        raise MorrisError(f"lora.num_layers is {n} but the model has {total} layers; use -1 for all")
    linear = sorted(
        {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    for target in cfg.lora.target_modules:
        if target.rsplit(".", 1)[-1] not in linear:
            raise MorrisError(
                f"target module {target!r} is not a linear layer of this model; choose from: {', '.join(linear)}"
            )
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        layers_to_transform=None if n == total else list(range(total - n, total)),
        bias="none",
    )


def _check_target(adapter_dir: Path, resume: bool) -> None:
    if resume:
        return
    if (adapter_dir / PEFT_WEIGHTS).exists() and (adapter_dir / PROVENANCE_FILENAME).exists():
        raise MorrisError(
            f"{adapter_dir} already holds a finished adapter; pass --resume to continue it, "
            "or choose another --adapter-path"
        )
    if checkpoints(adapter_dir):
        raise MorrisError(
            f"{adapter_dir} holds checkpoints of an unfinished run; pass --resume to continue it, "
            "or choose another --adapter-path"
        )


def train_torch(
    cfg: Config,
    model_dir: Path,
    data_dir: Path,
    adapter_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    callback: TrainCallback | None = None,
    quiet: bool = False,
) -> TrainResult:
    from peft import get_peft_model

    from morris_mlx.distributed import check_global_batch, torch_world

    model_dir, data_dir, adapter_dir = Path(model_dir), Path(data_dir), Path(adapter_dir)
    _check_target(adapter_dir, resume)
    world = torch_world(device)
    device = world.device
    # Only rank 0 writes files; every rank computes, and losses and token counts are summed over ranks.
    primary = world.primary
    quiet = quiet or not primary
    check_global_batch(cfg.train.batch_size, world.size)
    checkpointer = Checkpointer(adapter_dir)
    resume_from = checkpointer.latest() if resume else None
    if resume and resume_from is None:
        raise MorrisError(f"--resume: {adapter_dir} has no usable checkpoint; start without --resume")

    # Everything that can reject the input happens before the first file is written.
    tokenizer = load_tokenizer(model_dir, cfg.model.trust_remote_code)
    train_set, valid_set = load_examples(cfg, data_dir, tokenizer)
    plan = make_plan(cfg.train, len(train_set), sum(len(e.tokens) for e in train_set))
    fingerprint = fingerprint_model(model_dir)
    seed = cfg.train.seed
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    base = load_model(model_dir, device, cfg.model.trust_remote_code)
    lora_config = _lora_config(cfg, base)
    if cfg.train.grad_checkpoint:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False
    with quiet_peft():
        model = get_peft_model(base, lora_config)
    optimizer = MlxAdam([p for p in model.parameters() if p.requires_grad])
    forward = model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # DDP averages gradients over ranks during backward; the loss is weighted so that average is the
        # global batch's mean (morris_mlx.distributed explains why).
        forward = DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if "cuda" in device else None
        )

    loop = LoopState(base_fingerprint=fingerprint)
    start_step = 0
    if resume_from is not None:
        saved = checkpointer.restore(resume_from, model, optimizer)
        if saved.get("base_fingerprint") != fingerprint:
            raise MorrisError(
                f"{adapter_dir} was trained on another base model; pass the same --model to resume"
            )
        start_step = saved.pop("step")
        loop = LoopState(**{k: v for k, v in saved.items() if k in LoopState.__dataclass_fields__})
        log.info("resuming from %s (step %d of %d)", resume_from.name, start_step, plan.iters)

    adapter_dir.mkdir(parents=True, exist_ok=True)
    if primary:
        # A resumed run is unfinished until it ends: the old provenance (with its file hashes) must not
        # vouch for an adapter that training is about to replace.
        (adapter_dir / PROVENANCE_FILENAME).unlink(missing_ok=True)
    metrics = (
        MetricsLog(adapter_dir, truncate_after_step=start_step if resume_from else None) if primary else None
    )
    if primary:
        write_config(cfg, adapter_dir)

    stop_requested = False

    def emit(event: TrainEvent) -> None:
        nonlocal stop_requested
        if metrics is not None:
            metrics.write(event)
        if callback is not None and callback(event):
            stop_requested = True

    emit(
        TrainEvent(
            "plan", start_step, {**asdict(plan), "resumed": resume_from is not None, "world_size": world.size}
        )
    )
    if primary:
        log.info(plan.describe())
        if world.size > 1:
            log.info("data parallel over %d processes; global batch %d", world.size, cfg.train.batch_size)
        if warning := corpus_warning(plan):
            log.warning(warning)

    def shard(indices: list[int]) -> list[int]:
        """This rank's rows of a global batch, as mlx-lm's iterate_batches splits them."""
        return indices[world.rank :: world.size]

    train_batches = make_batches(train_set, cfg.train.batch_size)
    valid_batches = make_batches(valid_set, cfg.train.batch_size)
    if cfg.train.val_batches != -1:
        keep = epoch_order(seed, 0, len(valid_batches))[: cfg.train.val_batches]
        valid_batches = [valid_batches[i] for i in keep]
    done = {"validated": -1, "saved": -1}
    ui = Progress(plan.iters, start_step, quiet)

    def validate(step: int) -> None:
        if done["validated"] == step:
            return
        done["validated"] = step
        model.eval()
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for indices in valid_batches:
                tokens, bounds = collate(valid_set, shard(indices), cfg.train.max_seq_length)
                loss, ntoks = batch_loss(model, tokens.to(device), bounds.to(device))
                sums += torch.stack([loss.double() * ntoks, ntoks.double()])
        model.train()
        nonlocal stop_requested
        total, count = world.all_sum(sums).tolist()
        val_loss = total / count
        early = EarlyStopping(
            cfg.train.patience, math.inf if loop.best_val is None else loop.best_val, loop.since_best
        )
        improved, should_stop = early.update(val_loss) if not math.isnan(val_loss) else (False, False)
        loop.since_best = early.since_best
        if improved:
            loop.best_val, loop.best_step = val_loss, step
            if primary:
                save_adapter(model, adapter_dir)
        if should_stop and step < plan.iters:
            if primary:
                log.info(
                    "validation loss has not improved for %d validations; stopping early", early.patience
                )
            stop_requested = True
        ui.show(val=val_loss)
        emit(TrainEvent("val", step, {"val_loss": val_loss, "best": improved}))

    def save_checkpoint(step: int) -> None:
        if done["saved"] == step or not primary:
            return
        done["saved"] = step
        epoch, position = divmod(step, len(train_batches))  # the data order is a function of these
        path = checkpointer.save(
            step, model, optimizer, {**asdict(loop), "epoch": epoch, "position": position}
        )
        checkpointer.prune()
        emit(TrainEvent("checkpoint", step, {"path": str(path)}))

    timer = Timer(plan.iters, start_step)
    train_time = 0.0
    stopped_at: int | None = None
    orders: dict[int, np.ndarray] = {}
    model.train()
    with ui:
        for step in range(start_step, plan.iters):
            if (step > start_step or resume_from is None) and step % plan.steps_per_eval == 0:
                validate(step)
            if step > start_step and step % plan.save_every == 0:
                save_checkpoint(step)
            if stop_requested and step % plan.grad_accumulation == 0:
                stopped_at = step
                break
            tic = time.perf_counter()
            epoch, position = divmod(step, len(train_batches))
            if epoch not in orders:
                orders = {epoch: epoch_order(seed, epoch, len(train_batches))}
            tokens, bounds = collate(
                train_set, shard(train_batches[orders[epoch][position]]), cfg.train.max_seq_length
            )
            syncs = world.size == 1 or (step + 1) % plan.grad_accumulation == 0
            with contextlib.nullcontext() if syncs else forward.no_sync():
                loss, ntoks = batch_loss(forward, tokens.to(device), bounds.to(device))
                if world.size > 1:
                    all_tokens = world.all_sum(ntoks)
                    loss = loss * ntoks * world.size / all_tokens
                    ntoks = all_tokens
                loss.backward()
            if world.size > 1:
                loss = world.all_sum(loss.detach()) / world.size
            update = step // plan.grad_accumulation
            learning_rate = learning_rate_at(cfg.train, update, plan.updates)
            if (step + 1) % plan.grad_accumulation == 0:
                if plan.grad_accumulation > 1:
                    for p in optimizer.torch.param_groups[0]["params"]:
                        if p.grad is not None:
                            p.grad.div_(plan.grad_accumulation)
                optimizer.step(learning_rate, update)
            loop.report_loss += loss.item()
            loop.report_tokens += int(ntoks.item())
            loop.report_steps += 1
            train_time += time.perf_counter() - tic
            ui.advance()
            completed = step + 1
            if completed % cfg.train.steps_per_report == 0 or completed == plan.iters:
                train_loss = loop.report_loss / loop.report_steps
                tokens_per_second = loop.report_tokens / train_time if train_time > 0 else 0.0
                loop.trained_tokens += loop.report_tokens
                loop.last_train_loss = train_loss
                peak = peak_memory_gb(device)
                ui.show(train_loss, tokens_per_second, peak)
                emit(
                    TrainEvent(
                        "train",
                        completed,
                        {
                            "loss": train_loss,
                            "learning_rate": learning_rate,
                            "tokens_per_second": tokens_per_second,
                            "trained_tokens": loop.trained_tokens,
                            "peak_memory_gb": peak,
                            "eta_s": timer.eta(completed),
                            "update": completed // plan.grad_accumulation,
                        },
                    )
                )
                loop.report_loss, loop.report_tokens, loop.report_steps = 0.0, 0, 0
                train_time = 0.0
        final_step = plan.iters if stopped_at is None else stopped_at
        validate(final_step)
        save_checkpoint(final_step)
    if primary and not (adapter_dir / PEFT_WEIGHTS).exists():  # every validation was NaN: keep the last
        save_adapter(model, adapter_dir)
    result = {
        "best_val_loss": loop.best_val,
        "best_step": loop.best_step,
        "final_train_loss": loop.last_train_loss,
        "steps": final_step,
        "stopped_early": stopped_at is not None,
        "trained_tokens": loop.trained_tokens,
    }
    if primary:
        write_provenance(adapter_dir, cfg, model_dir, data_dir, "torch", "peft", plan, result)
    emit(TrainEvent("done", final_step, result))
    world.close()
    return TrainResult(adapter_dir, final_step, loop.best_val, loop.last_train_loss, stopped_at is not None)
