"""Loading a model folder into MLX, for training, generation and bench alike."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.errors import MorrisError
from morris_mlx.models.rope import model_rope_overrides


def load_model(model_dir: Path, trust_remote_code: bool = False):
    """mlx-lm's load, with the RoPE keys it needs (models/rope.py); errors become one-line MorrisErrors."""
    from mlx_lm.utils import load

    try:
        return load(
            str(model_dir),
            model_config=model_rope_overrides(model_dir),
            tokenizer_config={"trust_remote_code": trust_remote_code},
        )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise MorrisError(f"mlx-lm cannot load the model in {model_dir}: {exc}") from None
