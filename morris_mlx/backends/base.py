"""What every backend offers, so the CLI, the TUI, eval and bench call one interface.

A backend loads a model (with an optional adapter) into a `Generator` that streams text, and supplies
a `StepTrainer` to the one training harness (morris_mlx.training), which writes the same adapter
provenance file and metrics JSONL for either, so the TUI can follow both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from morris_mlx.config import Config, GenerateConfig
from morris_mlx.training import StepTrainer, TrainCallback, TrainResult, train_adapter


@dataclass
class Chunk:
    """One step of a streamed generation."""

    text: str
    token: int | None = None
    prompt_tokens: int = 0
    generation_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tps: float = 0.0
    peak_memory_gb: float = 0.0
    finish_reason: str | None = None  # "stop" (EOS), "length", "time" or None while streaming


@dataclass
class BatchResult:
    """One finished article of a batch: the whole text, never a pad or EOS token in it."""

    text: str
    finish_reason: str  # "stop" (EOS), "length" or "time"
    prompt_tokens: int
    generation_tokens: int  # counts the EOS, as the streamed Chunk does


class Generator(Protocol):
    """A loaded base model, optionally with an adapter, ready to stream."""

    backend: str
    model_dir: Path
    adapter_path: Path | None

    def stream(self, messages: list[dict[str, str]], settings: GenerateConfig) -> Iterator[Chunk]:
        """Yield chunks of the assistant's reply to `messages` (chat template applied)."""
        ...

    def generate_batch(
        self,
        conversations: Sequence[list[dict[str, str]]],
        settings: Sequence[GenerateConfig],
        batch_size: int,
    ) -> Iterator[tuple[int, BatchResult]]:
        """Answer many conversations with batched decoding, each under its own settings (seed, max_tokens);
        yields (index into `conversations`, result) as each finishes, not necessarily in order."""
        ...

    def set_adapter(self, adapter_path: Path | None, fuse: bool = True) -> None:
        """Swap the adapter (or remove it with None) without reloading the base weights."""
        ...

    def logits(self, token_ids: list[int]) -> np.ndarray:
        """fp32 next-token logits for every position, shape (len(token_ids), vocab)."""
        ...

    def encode_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]: ...

    def encode_text(self, text: str) -> list[int]: ...


class Backend(ABC):
    """A backend: `load` gives a Generator, `trainer` the steps the training harness drives."""

    name: str

    @abstractmethod
    def load(self, model_dir: Path, adapter_path: Path | None = None, fuse: bool = True) -> Generator: ...

    @abstractmethod
    def trainer(self, objective: str = "sft") -> StepTrainer:
        """The steps for `objective`: "sft" (supervised), "dpo" or "orpo" (preference pairs)."""

    def train(
        self,
        cfg: Config,
        model_dir: Path,
        data_dir: Path,
        adapter_path: Path,
        resume: bool = False,
        callback: TrainCallback | None = None,
        quiet: bool = False,
    ) -> TrainResult:
        """Train an adapter through the one harness (morris_mlx.training), as the CLI and the TUI do."""
        trainer = self.trainer(cfg.train.objective)
        return train_adapter(trainer, cfg, model_dir, data_dir, adapter_path, resume, callback, quiet)
