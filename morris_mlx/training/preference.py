"""The preference stage's batches and losses, written once for both backends' tensors.

A micro-batch of B pairs is two padded matrices, B chosen rows and B rejected rows, each run forward on
its own (TRL concatenates them into one, which pads a short rejected reply to the article's length); a
row's log-probability is the sum over its reply tokens, and the losses see the chosen rows' then the
rejected rows' in one vector.

- DPO (Rafailov et al., 2023), TRL's "sigmoid" loss: -log sigmoid(beta * ((c - c_ref) - (r - r_ref))), the
  reference being the model before training (LoRA starts as a no-op, so that is the base model); its
  log-probabilities are computed once at the start and never change.
- ORPO (Hong et al., 2024): the chosen replies' mean token loss plus beta (the paper's lambda) times
  -log sigmoid(log odds(chosen) - log odds(rejected)), odds from each reply's mean token log-probability.
  No reference model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.dataset.pairs import PairExample, load_pairs, tokenize_pairs
from morris_mlx.errors import MorrisError
from morris_mlx.training.trainer import TrainingData

PAD_TO = 32  # widths of 1 + a multiple of 32 tokens, as mlx-lm's batches


def load_pair_splits(
    data_dir: Path, tokenizer: Any, max_seq_length: int, batch_size: int
) -> tuple[list[PairExample], list[PairExample], TrainingData]:
    """The tokenized train and valid pairs of `data_dir`, checked to be trainable, and their size."""
    train = tokenize_pairs(load_pairs(data_dir, "train"), tokenizer, max_seq_length)
    valid = tokenize_pairs(load_pairs(data_dir, "valid"), tokenizer, max_seq_length)
    if len(valid) < batch_size:
        raise MorrisError(
            f"{data_dir}/valid.jsonl has {len(valid)} pairs, fewer than the batch size {batch_size}; "
            "add validation pairs or lower --batch-size"
        )
    return train, valid, TrainingData(len(train), sum(len(p.chosen) + len(p.rejected) for p in train))


def pair_batches(pairs: list[PairExample], batch_size: int) -> list[list[int]]:
    """Pair indices sorted by length and cut into whole batches (a remainder is dropped, as mlx-lm does)."""
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].length)
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def epoch_order(seed: int, epoch: int, n_batches: int) -> np.ndarray:
    """The batch order of an epoch: a function of (seed, epoch) only, so a resumed run sees the same data."""
    return np.random.RandomState(seed + epoch).permutation(n_batches)


def collate_rows(rows: list[tuple[list[int], int]], max_seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [rows, width], bounds [rows, 2]) zero-padded; a bound row is (first reply token, length) of
    the sequence as cut to `max_seq_length`."""
    longest = max(len(tokens) for tokens, _ in rows)
    width = min(1 + PAD_TO * ((longest + PAD_TO - 1) // PAD_TO), max_seq_length)
    tokens = np.zeros((len(rows), width), np.int32)
    bounds = np.zeros((len(rows), 2), np.int32)
    for row, (ids, offset) in enumerate(rows):
        length = min(len(ids), width)
        tokens[row, :length] = ids[:length]
        bounds[row] = (offset, length)
    return tokens, bounds


def collate_pairs(
    pairs: list[PairExample], indices: list[int], max_seq_length: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The chosen rows and the rejected rows of a batch, each padded to its own longest: a short rejected
    reply beside a whole article would otherwise cost as much as the article (2 rows of 800 tokens
    instead of 800 + 260, about 1.5x the work per step on a CPU)."""
    chosen = collate_rows([(pairs[i].chosen, pairs[i].chosen_offset) for i in indices], max_seq_length)
    rejected = collate_rows([(pairs[i].rejected, pairs[i].rejected_offset) for i in indices], max_seq_length)
    return chosen, rejected


def reply_mask(steps: Any, bounds: Any) -> Any:
    """[rows, width - 1] mask of the targets that are reply tokens, from `steps` = 1 .. width - 1 (target j
    is token j + 1) made by the caller's library on the batch's device. Unlike mlx-lm's default_loss,
    which also counts the first padding token after each sequence, only the reply's own tokens count."""
    return (steps >= bounds[:, 0:1]) & (steps < bounds[:, 1:2])


def describe(objective: str, beta: float) -> str:
    if objective == "dpo":
        return f"DPO, beta {beta:g}, reference: the base model"
    return f"ORPO, lambda {beta:g}"
