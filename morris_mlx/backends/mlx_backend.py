"""The MLX backend: mlx-lm's trainer and generation, on Metal, CUDA or the CPU."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.backends.base import Backend
from morris_mlx.backends.mlx_generate import MLXGenerator
from morris_mlx.backends.mlx_train import MLXTrainer


class MLXBackend(Backend):
    name = "mlx"

    def __init__(self, trust_remote_code: bool = False) -> None:
        self.trust_remote_code = trust_remote_code

    def load(self, model_dir: Path, adapter_path: Path | None = None, fuse: bool = True) -> MLXGenerator:
        return MLXGenerator(Path(model_dir), adapter_path, fuse=fuse, trust_remote_code=self.trust_remote_code)

    def trainer(self, objective: str = "sft") -> MLXTrainer:
        if objective == "sft":
            return MLXTrainer()
        from morris_mlx.backends.mlx_prefer import MLXPreferenceTrainer

        return MLXPreferenceTrainer()
