"""Base model + MLX adapter merged into one Hugging Face directory, with mlx-lm's own fuse machinery.

Loads with `mlx_lm.load(model, adapter_path=...)`, calls every LoRA layer's `fuse()` (as `mlx_lm fuse`
does), de-quantizes a quantized base, and saves with `mlx_lm.utils.save` (safetensors, config,
tokenizer, chat template). Then config.json gets a top-level rope_theta (docs/rope-trap.md) so that
transformers and mlx-lm load the result identically.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError
from morris_mlx.models.rope import fix_rope_config

# Tokenizer files the HF tokenizer's save_pretrained may not rewrite (SentencePiece model, templates).
_TOKENIZER_EXTRAS = ("tokenizer.model", "chat_template.jinja", "chat_template.json")


def is_quantized(config: dict[str, Any]) -> bool:
    return bool(config.get("quantization") or config.get("quantization_config"))


def fuse_to_hf(model_dir: Path, adapter_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write the fused model into the (existing, empty) `out_dir`; returns facts for the export record."""
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model, load, save

    try:
        model, tokenizer, config = load(str(model_dir), adapter_path=str(adapter_dir), return_config=True)
    except ValueError as exc:
        raise MorrisError(f"mlx-lm could not apply {adapter_dir} to {model_dir}: {exc}") from None
    fused = [
        (name, module.fuse(dequantize=True))
        for name, module in model.named_modules()
        if hasattr(module, "fuse")
    ]
    if not fused:
        raise MorrisError(f"{adapter_dir} put no LoRA layer into {model_dir}; nothing to fuse")
    model.update_modules(tree_unflatten(fused))
    quantized = is_quantized(config)
    if quantized:
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    save(out_dir, str(model_dir), model, tokenizer, config, donate_model=False)
    fix_rope_config(out_dir)
    for name in _TOKENIZER_EXTRAS:
        if (model_dir / name).is_file() and not (out_dir / name).exists():
            shutil.copyfile(model_dir / name, out_dir / name)
    if not has_chat_template(out_dir):
        raise MorrisError(
            f"the base model {model_dir} has no chat template, so the fused model would not either; "
            "use a chat (instruct) base model"
        )
    return {"fused_layers": len(fused), "dequantized": quantized}


def has_chat_template(model_dir: Path) -> bool:
    if (model_dir / "chat_template.jinja").is_file() or (model_dir / "chat_template.json").is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
