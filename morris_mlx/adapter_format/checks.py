"""Validation shared by export and import: which LoRA settings we map, and whether an adapter fits a model.

Every check runs before anything is written, so bad input ends in one MorrisError naming the problem
and the fix, and no output directory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.adapter_format.tensors import read_header_shapes
from morris_mlx.errors import MorrisError

# Linear layers of a Llama/Mistral block, keyed by leaf name, valued by the sub-module holding them. The
# names are the same in transformers and mlx-lm, which is what makes the mapping a pure rename.
SUPPORTED_MODULES: dict[str, str] = {
    "q_proj": "self_attn",
    "k_proj": "self_attn",
    "v_proj": "self_attn",
    "o_proj": "self_attn",
    "gate_proj": "mlp",
    "up_proj": "mlp",
    "down_proj": "mlp",
}
LAYER_MODULE = re.compile(r"^model\.layers\.(\d+)\.([A-Za-z0-9_.]+)$")


def check_module_path(path: str, source: str) -> str:
    """`path` is relative to a block, e.g. "self_attn.q_proj"; returns its leaf or raises."""
    parent, _, leaf = path.rpartition(".")
    if leaf not in SUPPORTED_MODULES or parent != SUPPORTED_MODULES[leaf]:
        supported = ", ".join(f"{v}.{k}" for k, v in SUPPORTED_MODULES.items())
        raise MorrisError(
            f"{source}: LoRA on {path!r} is not supported; only the block's linear layers map between "
            f"MLX and PEFT ({supported}). Retrain with those target modules"
        )
    return leaf


@dataclass
class ModelLayout:
    """What an adapter must fit: the number of blocks and every block linear's (in, out) features."""

    model_dir: Path
    num_layers: int
    linears: dict[str, tuple[int, int]]  # "model.layers.3.self_attn.q_proj" -> (in_features, out_features)
    config: dict[str, Any]


def _quant_bits(config: dict[str, Any], module: str) -> int:
    quant = config.get("quantization") or config.get("quantization_config") or {}
    per_module = quant.get(module)
    if isinstance(per_module, dict) and "bits" in per_module:
        return int(per_module["bits"])
    return int(quant.get("bits", 4))


def model_layout(model_dir: Path) -> ModelLayout:
    """Read the layout from config.json and the safetensors headers (weights are never loaded)."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MorrisError(
            f"cannot read {config_path} ({exc}); pass a Hugging Face or MLX model folder"
        ) from None
    text_config = config.get("text_config") or config
    if "num_hidden_layers" not in text_config:
        raise MorrisError(f"{config_path} has no num_hidden_layers; is {model_dir} a decoder-only LLM?")
    shapes: dict[str, tuple[int, ...]] = {}
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise MorrisError(f"{model_dir} has no .safetensors weights; convert the model first")
    for path in files:
        shapes.update(read_header_shapes(path))
    linears: dict[str, tuple[int, int]] = {}
    for name, shape in shapes.items():
        if not name.endswith(".weight") or len(shape) != 2:
            continue
        module = name[: -len(".weight")]
        if not LAYER_MODULE.match(module):
            continue
        out_features, in_features = shape
        if f"{module}.scales" in shapes:
            # MLX packs quantized weights into uint32 words: 32 / bits values per stored column.
            in_features = in_features * 32 // _quant_bits(config, module)
        linears[module] = (in_features, out_features)
    return ModelLayout(model_dir, int(text_config["num_hidden_layers"]), linears, config)


@dataclass
class ModuleShape:
    module: str  # "model.layers.3.self_attn.q_proj"
    in_features: int
    rank: int
    out_features: int


def check_fits(shapes: list[ModuleShape], layout: ModelLayout, source: str) -> None:
    """Raise unless every adapted module exists in the model with the adapter's in/out features."""
    problems: list[str] = []
    for item in shapes:
        layer = int(LAYER_MODULE.match(item.module).group(1))  # type: ignore[union-attr]
        expected = layout.linears.get(item.module)
        if layer >= layout.num_layers:
            problems.append(f"layer {layer} does not exist (the model has {layout.num_layers})")
        elif expected is None:
            problems.append(f"{item.module} is not a linear layer of the model")
        elif expected != (item.in_features, item.out_features):
            problems.append(
                f"{item.module}: adapter maps {item.in_features} -> {item.out_features} features, "
                f"the model {expected[0]} -> {expected[1]}"
            )
    if problems:
        shown = "; ".join(problems[:2]) + (f"; and {len(problems) - 2} more" if len(problems) > 2 else "")
        raise MorrisError(
            f"{source} does not fit the model {layout.model_dir} ({shown}); it was trained for another "
            "base model: pass that one with --model"
        )


# PEFT LoRA settings that change the computation in ways mlx-lm's LoRALinear cannot express. Each maps
# a config key to (the value that is fine, why it is refused).
_PEFT_UNMAPPED: dict[str, tuple[Any, str]] = {
    "use_dora": (False, "DoRA (use_dora) adds a magnitude vector that is not mapped; export a plain LoRA"),
    "use_rslora": (False, "rsLoRA (use_rslora) scales by alpha/sqrt(r), not alpha/r; retrain without it"),
    "fan_in_fan_out": (False, "fan_in_fan_out (GPT-2 style Conv1D weights) is not used by Llama/Mistral"),
    "lora_bias": (False, "lora_bias adds a bias to lora_B that mlx-lm's LoRA has no place for"),
    "use_qalora": (False, "QALoRA (use_qalora) is not mapped"),
}
_PEFT_MUST_BE_EMPTY = (
    "rank_pattern",
    "alpha_pattern",
    "modules_to_save",
    "layer_replication",
    "target_parameters",
    "trainable_token_indices",
)


def check_peft_config(config: dict[str, Any], source: str) -> None:
    peft_type = config.get("peft_type", "LORA")
    if str(peft_type).upper() != "LORA":
        raise MorrisError(f"{source}: peft_type is {peft_type!r}; only LoRA adapters map to MLX")
    for key, (fine, why) in _PEFT_UNMAPPED.items():
        if config.get(key, fine) not in (fine, None):
            raise MorrisError(f"{source}: {key}={config[key]!r} is not supported: {why}")
    for key in _PEFT_MUST_BE_EMPTY:
        if config.get(key):
            raise MorrisError(
                f"{source}: {key} is set ({config[key]!r}); per-module ranks, extra trained modules and "
                "layer replication are not mapped to MLX. Export a plain LoRA adapter"
            )
    if config.get("bias", "none") != "none":
        raise MorrisError(f"{source}: bias={config['bias']!r}; only bias='none' maps to mlx-lm's LoRA")
    pattern = config.get("layers_pattern")
    if pattern not in (None, "layers", ["layers"]):
        raise MorrisError(
            f"{source}: layers_pattern={pattern!r}; only the model's `layers` blocks are mapped"
        )
    rank = config.get("r")
    if not isinstance(rank, int) or rank <= 0:
        raise MorrisError(f"{source}: r={rank!r} is not a positive integer rank")
    alpha = config.get("lora_alpha")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
        raise MorrisError(f"{source}: lora_alpha={alpha!r} is not a number")
    targets = config.get("target_modules")
    if isinstance(targets, list):
        for target in targets:
            leaf = str(target).rsplit(".", 1)[-1]
            if leaf not in SUPPORTED_MODULES:
                raise MorrisError(
                    f"{source}: target module {target!r} is not supported; only "
                    f"{', '.join(SUPPORTED_MODULES)} map between PEFT and MLX"
                )


def check_mlx_config(config: dict[str, Any], source: str) -> None:
    kind = config.get("fine_tune_type", "lora")
    if kind != "lora":
        raise MorrisError(
            f"{source}: fine_tune_type is {kind!r}; only LoRA adapters map to PEFT (DoRA and full "
            "fine-tunes do not)"
        )
    params = config.get("lora_parameters")
    if not isinstance(params, dict) or "rank" not in params or "scale" not in params:
        raise MorrisError(
            f"{source}: adapter_config.json lacks lora_parameters.rank/scale; is it from mlx-lm?"
        )
    if "num_layers" not in config:
        raise MorrisError(f"{source}: adapter_config.json lacks num_layers; is it from mlx-lm?")
