"""Which model directory a command uses: --model, else the configured base when present locally,
else the embedded default."""

from __future__ import annotations

import logging
from pathlib import Path

from morris_mlx.config import ModelConfig
from morris_mlx.errors import MorrisError
from morris_mlx.models.default import default_model_dir, is_ready
from morris_mlx.paths import models_dir

log = logging.getLogger("morris")


def check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise MorrisError(f"model directory {path} does not exist; pass a Hugging Face or MLX model folder")
    if not (path / "config.json").is_file():
        raise MorrisError(f"{path} has no config.json; it is not a Hugging Face or MLX model folder")
    if not any(path.glob("*.safetensors")):
        raise MorrisError(
            f"{path} has no .safetensors weights (pickle checkpoints are refused); convert it first"
        )
    return path


def local_base(base: str) -> Path | None:
    """The configured base model if it is on disk: a folder, a converted copy, or the HF cache."""
    as_path = Path(base).expanduser()
    if as_path.is_dir():
        return as_path
    converted = models_dir() / base.replace("/", "--")
    if (converted / "config.json").is_file():
        return converted
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(base, local_files_only=True, allow_patterns=["*.json", "*.safetensors"])
        )
    except Exception:  # noqa: BLE001 - not cached (or not a hub id): fall through to the default
        return None


def resolve_model(cfg: ModelConfig) -> Path:
    if cfg.path:
        return check_model_dir(Path(cfg.path).expanduser())
    found = local_base(cfg.base)
    if found is not None:
        return check_model_dir(found)
    default = default_model_dir()
    if is_ready(default, verify=False):
        log.info("base model %s is not on this machine; using the embedded default", cfg.base)
        return default
    raise MorrisError(
        f"base model {cfg.base} is not on this machine and the embedded default is not set up; "
        "run `morris setup-default` (offline) or `morris convert --hf-path REPO`"
    )
