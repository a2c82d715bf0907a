"""The preference stage (DPO or ORPO) on MLX, in the shared harness.

`MLXPreferenceTrainer` is the supervised `MLXTrainer` (mlx-lm's LoRA layers, the same compiled step,
optimizer and checkpoints) with pairs for data and training/preference.py's losses in place of mlx-lm's
default_loss; the torch backend's twin is torch_prefer.py, and both compute the same numbers.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.backends.mlx_train import MLXTrainer
from morris_mlx.config import Config
from morris_mlx.dataset.pairs import PairExample
from morris_mlx.errors import MorrisError
from morris_mlx.training import TrainingData, TrainPlan
from morris_mlx.training.preference import (
    collate_pairs,
    epoch_order,
    load_pair_splits,
    pair_batches,
    reply_mask,
)


def sequence_logps(model: Any, tokens: Any, bounds: Any) -> tuple[Any, Any]:
    """Per row: the sum of the reply tokens' log-probabilities, and how many there are."""
    import mlx.core as mx
    import mlx.nn as nn

    logits = model(tokens[:, :-1]).astype(mx.float32)
    logp = -nn.losses.cross_entropy(logits, tokens[:, 1:])
    mask = reply_mask(mx.arange(1, tokens.shape[1]), bounds)
    return (logp * mask).sum(axis=1), mask.sum(axis=1)


def pair_logps(
    model: Any, chosen: Any, chosen_bounds: Any, rejected: Any, rejected_bounds: Any
) -> tuple[Any, Any]:
    """Log-probabilities and reply lengths of the chosen rows then the rejected rows, one forward each."""
    import mlx.core as mx

    (c, c_count), (r, r_count) = (
        sequence_logps(model, chosen, chosen_bounds),
        sequence_logps(model, rejected, rejected_bounds),
    )
    return mx.concatenate([c, r]), mx.concatenate([c_count, r_count])


def preference_loss(objective: str, beta: float, model: Any, *batch: Any) -> Any:
    """(mean loss, reply tokens) of a batch (chosen, chosen bounds, rejected, rejected bounds, reference
    with the chosen rows' values then the rejected rows'); training/preference.py has the formulas."""
    import mlx.core as mx
    import mlx.nn as nn

    *rows, reference = batch
    logps, counts = pair_logps(model, *rows)
    half = logps.shape[0] // 2
    chosen, rejected = logps[:half], logps[half:]
    if objective == "dpo":
        margin = (chosen - reference[:half]) - (rejected - reference[half:])
        loss = -nn.log_sigmoid(beta * margin).mean()
    else:
        mean = logps / counts
        mean_chosen, mean_rejected = mean[:half], mean[half:]
        log_odds = (mean_chosen - mean_rejected) - (
            mx.log1p(-mx.exp(mean_chosen)) - mx.log1p(-mx.exp(mean_rejected))
        )
        nll = -chosen.sum() / counts[:half].sum()
        loss = nll - beta * nn.log_sigmoid(log_odds).mean()
    return loss, counts.sum()


class MLXPreferenceTrainer(MLXTrainer):
    """DPO or ORPO steps for the shared harness, on MLX."""

    def join(self, cfg: Config) -> None:
        super().join(cfg)
        if self.world_size > 1:
            raise MorrisError("preference training runs in one process; train without --distributed")

    def load(self, cfg: Config, model_dir: Path, data_dir: Path) -> TrainingData:
        self._load_model(cfg, model_dir, data_dir)
        self.train_set, self.valid_set, size = load_pair_splits(
            data_dir, self.tokenizer, cfg.train.max_seq_length, cfg.train.batch_size
        )
        return size

    def build(self, plan: TrainPlan) -> None:
        super().build(plan)
        train = self.cfg.train
        self.objective = train.objective
        self.loss = partial(preference_loss, train.objective, train.beta)
        self.train_batches = pair_batches(self.train_set, train.batch_size)
        self.valid_batches = pair_batches(self.valid_set, train.batch_size)
        if train.val_batches != -1:
            keep = epoch_order(train.seed, 0, len(self.valid_batches))[: train.val_batches]
            self.valid_batches = [self.valid_batches[i] for i in keep]
        self.reference = {"train": self._reference(self.train_set), "valid": self._reference(self.valid_set)}

    def _reference(self, pairs: list[PairExample]) -> np.ndarray:
        """[pairs, 2] log-probabilities of (chosen, rejected) under the model before training; DPO only."""
        out = np.zeros((len(pairs), 2), np.float32)
        if self.objective != "dpo":
            return out
        self.model.eval()
        for i in range(len(pairs)):
            logps, _ = pair_logps(self.model, *self._arrays(pairs, [i]))
            out[i] = np.array(logps)
        self.model.train()
        return out

    def _arrays(self, pairs: list[PairExample], indices: list[int]) -> tuple[Any, ...]:
        import mlx.core as mx

        chosen, rejected = collate_pairs(pairs, indices, self.cfg.train.max_seq_length)
        return tuple(mx.array(a) for a in (*chosen, *rejected))

    def _batch(self, split: str, pairs: list[PairExample], indices: list[int]) -> tuple[Any, ...]:
        import mlx.core as mx

        reference = self.reference[split][indices].T.reshape(-1)  # chosen rows, then rejected rows
        return (*self._arrays(pairs, indices), mx.array(reference))

    def _training_batches(self, first_step: int) -> Any:
        step, epoch = 0, 0
        while True:
            for position in epoch_order(self.cfg.train.seed, epoch, len(self.train_batches)):
                if step >= first_step:
                    yield self._batch("train", self.train_set, self.train_batches[position])
                step += 1
            epoch += 1

    def evaluate(self) -> float:
        self.model.eval()
        total, count = 0.0, 0
        for indices in self.valid_batches:
            loss, _ = self.loss(self.model, *self._batch("valid", self.valid_set, indices))
            total, count = total + loss.item() * len(indices), count + len(indices)
        self.model.train()
        return total / count
