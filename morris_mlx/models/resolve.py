"""Which model directory a command uses: --model, else the configured base when present locally,
else the embedded default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from morris_mlx.atomic import verify_files
from morris_mlx.config import ModelConfig
from morris_mlx.errors import MorrisError
from morris_mlx.models.default import MANIFEST, default_model_dir, is_ready
from morris_mlx.paths import models_dir
from morris_mlx.pickled import pickled_files

log = logging.getLogger("morris")


def check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise MorrisError(f"model directory {path} does not exist; pass a Hugging Face or MLX model folder")
    if not (path / "config.json").is_file():
        raise MorrisError(f"{path} has no config.json; it is not a Hugging Face or MLX model folder")
    if not any(path.glob("*.safetensors")):
        pickled = pickled_files(path)
        found = f" (found {', '.join(pickled[:3])})" if pickled else ""
        raise MorrisError(
            f"{path} has no .safetensors weights{found}; pickle checkpoints can run code when loaded and "
            f"are refused: if you trust it, `morris convert --hf-path {path} --allow-pickle` re-saves it"
        )
    verify_model_dir(path)
    return path


def verify_model_dir(path: Path) -> None:
    """Compare a converted model's files with the sizes its manifest recorded (a truncated copy or a full
    disk shows up here, not as an unreadable tensor deep inside a load). Sizes only: hashing gigabytes on
    every load would cost more than it saves; `morris setup-default` checks the embedded model's hashes."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return  # not converted by us: nothing recorded to compare with
    try:
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files") or {}
    except (ValueError, AttributeError):
        raise MorrisError(
            f"{manifest} is unreadable; convert the model again (morris convert --force)"
        ) from None
    verify_files(path, files, f"model {path}", "convert it again (morris convert --force)", full=False)


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
