"""What a backend supplies to the training harness: one micro-batch step, an evaluation, and its state.

The harness (training/harness.py) owns everything else: the plan, refusals, resume, checkpoints, the
validation schedule, early stopping, metrics, progress and provenance. A backend owns its tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from morris_mlx.config import Config
from morris_mlx.training.plan import TrainPlan


@dataclass
class TrainingData:
    """What the loaded training split holds, for the plan."""

    examples: int
    tokens: int


class StepTrainer(Protocol):
    backend: str  # "mlx" | "torch": recorded in the provenance
    adapter_format: str  # "mlx" | "peft": which files make the adapter
    rank: int  # this process in a data-parallel run; only rank 0 writes files
    world_size: int

    def join(self, cfg: Config) -> None:
        """Join the process group when launched for data-parallel training (sets rank, world_size)."""

    def load(self, cfg: Config, model_dir: Path, data_dir: Path) -> TrainingData:
        """Load the tokenizer, the model and the train/valid splits, with every check on the input:
        nothing is written before this returns."""

    def build(self, plan: TrainPlan) -> None:
        """Seed, add the LoRA layers, make the optimizer."""

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        """Forward and backward on micro-batch `step` of the run (its data order depends on the seed and
        the epoch only), then the optimizer update when `apply_update`. Returns the mean loss over the
        batch's target tokens and their count, both over every rank."""

    def evaluate(self) -> float:
        """The validation loss, over every rank; the model is left in training mode."""

    def save_adapter(self, adapter_dir: Path) -> None:
        """Write the adapter files (replacing each atomically) as the backend's library names them."""

    def save_state(self, folder: Path) -> None:
        """Adapter, optimizer and RNG state into an empty `folder` (a checkpoint being written)."""

    def check_state(self, folder: Path) -> None:
        """Raise if `folder` does not hold state this backend can read back (needs no model)."""

    def load_state(self, folder: Path) -> None:
        """Restore what save_state wrote; raise MorrisError when it does not fit this model and config."""

    def peak_memory_gb(self) -> float: ...

    def finish(self, adapter_dir: Path | None) -> None:
        """End of the run: final files of the backend's own (only given to rank 0), then release."""
