"""The preference stage (DPO or ORPO) on torch + peft, in the shared harness.

`TorchPreferenceTrainer` is the supervised `TorchTrainer` (same LoRA model, optimizer, checkpoints and
update rule) with pairs for data and training/preference.py's losses; the MLX backend's twin is
mlx_prefer.py, and both compute the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from morris_mlx.backends.torch_backend import load_tokenizer
from morris_mlx.backends.torch_train import TorchTrainer
from morris_mlx.config import Config
from morris_mlx.dataset.pairs import PairExample
from morris_mlx.errors import MorrisError
from morris_mlx.training import TrainingData, TrainPlan
from morris_mlx.training.preference import collate_pairs, load_pair_splits, pair_batches, reply_mask


def sequence_logps(
    model: Any, tokens: torch.Tensor, bounds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the sum of the reply tokens' log-probabilities, and how many there are."""
    logits = model(input_ids=tokens[:, :-1]).logits.float()
    targets = tokens[:, 1:]
    # Over [rows * width, vocab], not the [rows, vocab, width] view: on a CPU the strided view made the
    # loss about 4x slower, forward and backward (docs/benchmarks/2026-12-03-cpu-preference.md).
    logp = -F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    logp = logp.view_as(targets)
    mask = reply_mask(torch.arange(1, tokens.shape[1], device=tokens.device), bounds)
    return (logp * mask).sum(dim=1), mask.sum(dim=1)


def pair_logps(
    model: Any,
    chosen: torch.Tensor,
    chosen_bounds: torch.Tensor,
    rejected: torch.Tensor,
    rejected_bounds: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities and reply lengths of the chosen rows then the rejected rows, one forward each."""
    (c, c_count), (r, r_count) = (
        sequence_logps(model, chosen, chosen_bounds),
        sequence_logps(model, rejected, rejected_bounds),
    )
    return torch.cat([c, r]), torch.cat([c_count, r_count])


def preference_loss(
    objective: str, beta: float, logps: torch.Tensor, counts: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """The mean loss of a batch whose rows are B chosen then B rejected replies (training/preference.py)."""
    half = logps.shape[0] // 2
    chosen, rejected = logps[:half], logps[half:]
    if objective == "dpo":
        margin = (chosen - reference[:half]) - (rejected - reference[half:])
        return -F.logsigmoid(beta * margin).mean()
    mean = logps / counts
    mean_chosen, mean_rejected = mean[:half], mean[half:]
    log_odds = (mean_chosen - mean_rejected) - (
        torch.log1p(-torch.exp(mean_chosen)) - torch.log1p(-torch.exp(mean_rejected))
    )
    nll = -chosen.sum() / counts[:half].sum()
    return nll - beta * F.logsigmoid(log_odds).mean()


class TorchPreferenceTrainer(TorchTrainer):
    """DPO or ORPO steps for the shared harness, on torch."""

    def join(self, cfg: Config) -> None:
        super().join(cfg)
        if self.world_size > 1:
            raise MorrisError("preference training runs in one process; train without --distributed")

    def load(self, cfg: Config, model_dir: Path, data_dir: Path) -> TrainingData:
        self.cfg, self.model_dir = cfg, Path(model_dir)
        self.tokenizer = load_tokenizer(model_dir, cfg.model.trust_remote_code)
        self.train_set, self.valid_set, size = load_pair_splits(
            data_dir, self.tokenizer, cfg.train.max_seq_length, cfg.train.batch_size
        )
        return size

    def batches(self, examples: list[Any]) -> list[list[int]]:
        return pair_batches(examples, self.cfg.train.batch_size)

    def build(self, plan: TrainPlan) -> None:
        super().build(plan)
        self.objective, self.beta = self.cfg.train.objective, self.cfg.train.beta
        self.reference = {"train": self._reference(self.train_set), "valid": self._reference(self.valid_set)}

    def _reference(self, pairs: list[PairExample]) -> torch.Tensor:
        """[pairs, 2] log-probabilities of (chosen, rejected) under the model before training; DPO only."""
        out = torch.zeros(len(pairs), 2, dtype=torch.float32)
        if self.objective != "dpo":
            return out
        self.model.eval()
        with torch.no_grad():
            for indices in pair_batches(pairs, 1):
                logps, _ = pair_logps(self.model, *self._pair_batch(pairs, indices))
                out[indices[0]] = logps.cpu()
        self.model.train()
        return out

    def _pair_batch(self, pairs: list[PairExample], indices: list[int]) -> tuple[torch.Tensor, ...]:
        chosen, rejected = collate_pairs(pairs, indices, self.cfg.train.max_seq_length)
        return tuple(torch.from_numpy(a).long().to(self.device) for a in (*chosen, *rejected))

    def _loss(
        self, split: str, pairs: list[PairExample], indices: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logps, counts = pair_logps(self.model, *self._pair_batch(pairs, indices))
        reference = self.reference[split][indices].T.reshape(-1).to(self.device)  # chosen rows, then rejected
        return preference_loss(self.objective, self.beta, logps, counts, reference), counts.sum()

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        loss, ntoks = self._loss("train", self.train_set, self.batch_at(step))
        loss.backward()
        if apply_update:
            self.update(step, learning_rate)
        return loss.item(), int(ntoks.item())

    def evaluate(self) -> float:
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for indices in self.valid_batches:
                loss, _ = self._loss("valid", self.valid_set, indices)
                total, count = total + loss.item() * len(indices), count + len(indices)
        self.model.train()
        return total / count
