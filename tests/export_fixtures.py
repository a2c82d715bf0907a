"""Helpers for the export/import tests: random-but-real MLX adapters and logits from both stacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROMPT_IDS = [5, 17, 42, 99, 3, 250, 77, 12, 300, 8]


def make_mlx_adapter(
    model_dir: Path,
    out_dir: Path,
    rank: int = 4,
    scale: float = 2.0,
    num_layers: int = -1,
    keys: tuple[str, ...] = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    seed: int = 0,
    b_std: float = 0.5,
) -> Path:
    """An adapter exactly as mlx-lm lays it out: LoRA layers put in by mlx-lm itself, lora_b made
    random (a fresh LoRA has lora_b = 0 and would hide every mapping mistake)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load

    model, _ = load(str(model_dir))
    mx.random.seed(seed)
    params = {"rank": rank, "scale": scale, "dropout": 0.0, "keys": list(keys)}
    linear_to_lora_layers(model, num_layers, params)
    weights = {}
    for name, value in tree_flatten(model.parameters()):
        if name.endswith(".lora_a"):
            weights[name] = value
        elif name.endswith(".lora_b"):
            weights[name] = mx.random.normal(value.shape) * b_std
    out_dir.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out_dir / "adapters.safetensors"), weights, metadata={"format": "mlx"})
    config = {
        "model": str(model_dir),
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": params,
    }
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def mlx_logits(model_dir: Path, adapter_dir: Path | None = None, ids: list[int] = PROMPT_IDS) -> np.ndarray:
    import mlx.core as mx
    from mlx_lm.utils import load

    model, _ = load(str(model_dir), adapter_path=str(adapter_dir) if adapter_dir else None)
    return np.array(model(mx.array([ids]))[0].astype(mx.float32))


def torch_logits(model_dir: Path, peft_dir: Path | None = None, ids: list[int] = PROMPT_IDS) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if peft_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(peft_dir))
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()
