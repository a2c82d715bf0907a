"""The MLX backend: mlx-lm's trainer and generation, on Metal, CUDA or the CPU."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.backends.base import TrainCallback, TrainResult
from morris_mlx.backends.mlx_generate import MLXGenerator
from morris_mlx.config import Config


class MLXBackend:
    name = "mlx"

    def load(self, model_dir: Path, adapter_path: Path | None = None, fuse: bool = True) -> MLXGenerator:
        return MLXGenerator(Path(model_dir), adapter_path, fuse=fuse)

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
        from morris_mlx.backends.mlx_train import train_mlx

        return train_mlx(
            cfg, model_dir, data_dir, adapter_path, resume=resume, callback=callback, quiet=quiet
        )
