"""The plan of a training run: iterations from epochs with a floor on optimizer updates, the
validation and checkpoint schedule, the learning-rate schedule, and early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass

from morris_mlx.config import TrainConfig
from morris_mlx.errors import MorrisError

MIN_TRAIN_EXAMPLES = 2


@dataclass
class TrainPlan:
    examples: int
    tokens: int
    iters: int  # micro-batches
    updates: int  # optimizer updates
    grad_accumulation: int
    steps_per_eval: int
    save_every: int
    epochs: float

    def describe(self) -> str:
        return (
            f"plan: {self.examples} examples, {self.tokens:,} tokens, {self.iters} iterations "
            f"= {self.updates} optimizer updates (accumulation {self.grad_accumulation}, "
            f"{self.epochs:.2f} epochs); validation every {self.steps_per_eval}, "
            f"checkpoint every {self.save_every} iterations"
        )


LARGE_CORPUS_BATCHES = 400  # from here on, accumulation 8 smooths updates without starving them
VALIDATIONS_PER_RUN = 8


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(value / multiple)) * multiple)


def make_plan(cfg: TrainConfig, examples: int, tokens: int) -> TrainPlan:
    """Iterations from epochs (or --iters), with a floor on optimizer updates for small corpora.

    Accumulation only pays when there are many batches; on tens of articles it leaves a handful of
    updates that teach nothing (docs/recipe.md: 6 updates moved held-out perplexity 3%, 75 updates 15%).
    Iterations, validations and checkpoints land on whole updates so a resume never has to restore
    half-accumulated gradients.
    """
    if examples < max(MIN_TRAIN_EXAMPLES, cfg.batch_size):
        raise MorrisError(
            f"the training split has {examples} examples; need at least "
            f"{max(MIN_TRAIN_EXAMPLES, cfg.batch_size)} (add articles, or lower --batch-size)"
        )
    batches = examples / cfg.batch_size
    accumulation = cfg.grad_accumulation or (1 if batches < LARGE_CORPUS_BATCHES else 8)
    if cfg.iters:
        iters = cfg.iters
    else:
        iters = max(math.ceil(cfg.epochs * batches), cfg.min_updates * accumulation)
    iters = _round_up(iters, accumulation)
    updates = iters // accumulation
    eval_every = cfg.steps_per_eval or max(1, round(updates / VALIDATIONS_PER_RUN)) * accumulation
    return TrainPlan(
        examples=examples,
        tokens=tokens,
        iters=iters,
        updates=updates,
        grad_accumulation=accumulation,
        steps_per_eval=_round_up(eval_every, accumulation),
        save_every=_round_up(cfg.save_every or eval_every, accumulation),
        epochs=iters * cfg.batch_size / examples,
    )


def warmup_updates(cfg: TrainConfig, total_updates: int) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else round(0.1 * total_updates)


def learning_rate_at(cfg: TrainConfig, update: int, total_updates: int) -> float:
    """Learning rate for optimizer update `update` (0-based): warm-up, then constant or cosine."""
    peak = cfg.learning_rate
    warmup = warmup_updates(cfg, total_updates)
    if warmup and update < warmup:
        return peak * (update + 1) / warmup
    if cfg.lr_schedule == "cosine":
        span = max(1, total_updates - warmup)
        progress = min(1.0, (update - warmup) / span)
        floor = 0.1 * peak
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak


class EarlyStopping:
    """Counts validations without improvement; `patience` of 0 never stops."""

    def __init__(self, patience: int, best: float = math.inf, since_best: int = 0) -> None:
        self.patience, self.best, self.since_best = patience, best, since_best

    def update(self, val_loss: float) -> tuple[bool, bool]:
        """Returns (improved, should_stop)."""
        improved = val_loss < self.best
        if improved:
            self.best, self.since_best = val_loss, 0
        else:
            self.since_best += 1
        return improved, bool(self.patience) and self.since_best >= self.patience


def corpus_warning(plan: TrainPlan) -> str | None:
    if plan.examples < 10 or plan.tokens < 5_000:
        return (
            f"only {plan.examples} training examples ({plan.tokens:,} tokens): too little to learn a voice "
            "from; aim for 20+ articles"
        )
    return None


def check_global_batch(batch_size: int, processes: int) -> None:
    if batch_size % processes:
        raise MorrisError(
            f"--batch-size {batch_size} is the global batch and must be divisible by the {processes} "
            f"processes; use --batch-size {processes * max(1, batch_size // processes)}"
        )
