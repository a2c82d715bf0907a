"""RoPE settings where every loader finds them (docs/rope-trap.md).

transformers 5 writes them only as `"rope_parameters": {"rope_theta": ...}`; mlx-lm 0.32's Llama and
Mistral read a top-level `rope_theta` and silently fall back to 10000 without one, so the same weights
became a different model in MLX. Every model folder we write gets the top-level keys, and every folder
mlx-lm loads gets them as overrides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from morris_mlx.files import MODEL_CONFIG


def rope_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys `config` lacks but its `rope_parameters` hold."""
    params = config.get("rope_parameters") or {}
    overrides: dict[str, Any] = {}
    if "rope_theta" not in config and "rope_theta" in params:
        overrides["rope_theta"] = params["rope_theta"]
    if "rope_scaling" not in config and params.get("rope_type", "default") != "default":
        overrides["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
    return overrides


def model_rope_overrides(model_dir: Path) -> dict[str, Any]:
    return rope_overrides(json.loads((Path(model_dir) / MODEL_CONFIG).read_text()))


def fix_rope_config(model_dir: Path) -> None:
    """Write the missing top-level RoPE keys into `model_dir`'s config.json."""
    path = Path(model_dir) / MODEL_CONFIG
    config = json.loads(path.read_text())
    overrides = rope_overrides(config)
    if overrides:
        path.write_text(json.dumps({**config, **overrides}, indent=2))
