"""The checks production multi-LoRA servers make when they load a PEFT adapter directory, so an export
that passes here loads in vLLM and TGI (neither installs on a CPU-only machine, so we mirror them).

vLLM 0.9.2 (`vllm/lora/worker_manager.py` -> `peft_helper.PEFTHelper.from_local_dir` + `validate_legal`,
then `models.LoRAModel.from_local_checkpoint`):
- adapter_config.json has r, lora_alpha, target_modules; no modules_to_save, no DoRA, bias "none";
  r <= --max-lora-rank, whose allowed values are 8, 16, 32, 64, 128, 256, 320, 512 (default 16);
- adapter_model.safetensors (or .bin); every key parses with `parse_fine_tuned_lora_name`
  (`base_model.model.<module>.lora_A.weight` / `lora_B.weight`), and the module's last part is one of
  the model's LoRA-able linears (for Llama/Mistral q/k/v/o and gate/up/down, via the packed
  qkv_proj/gate_up_proj mapping), else "expected target modules in [...] but received [...]".
TGI (`server/text_generation_server/adapters/lora.py`: `LoraConfig.load` reads the config with peft's
LoraConfig; `map_weights_for_model` looks up `base_model.model.<weight name>.lora_A.weight` and
`.lora_B.weight` for the model's own layer names and skips layers missing either):
- peft_type LORA; fan_in_fan_out false (TGI multiplies x @ A^T @ B^T); A and B both present per module;
  the module names are the base model's (`model.layers.<i>.self_attn.q_proj`, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from morris_mlx.adapter_format.tensors import read_header_shapes
from morris_mlx.files import ADAPTER_CONFIG, PEFT_WEIGHTS

VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
LLAMA_LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
KEY = re.compile(r"^base_model\.model\.(model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+))\.lora_([AB])\.weight$")
ALLOWED_DTYPES = ("F32", "F16", "BF16")


def vllm_max_lora_rank(rank: int) -> int | None:
    """The smallest `vllm serve --max-lora-rank` value that admits `rank` (None: too large for vLLM)."""
    return next((r for r in VLLM_MAX_LORA_RANKS if r >= rank), None)


def _config_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    missing = [k for k in ("r", "lora_alpha", "target_modules") if k not in config]
    if missing:
        problems.append(f"adapter_config.json lacks {', '.join(missing)} (vLLM: missing required fields)")
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')!r}, not 'LORA' (TGI loads LoRA only)")
    if config.get("modules_to_save"):
        problems.append("modules_to_save is set (vLLM only supports modules_to_save being None)")
    if config.get("use_dora"):
        problems.append("use_dora is true (vLLM does not yet support DoRA)")
    if config.get("bias", "none") != "none":
        problems.append(f"bias is {config['bias']!r} (vLLM: adapter bias needs bias_enabled; use 'none')")
    if config.get("fan_in_fan_out"):
        problems.append("fan_in_fan_out is true (TGI and vLLM expect A [r, in] and B [out, r])")
    rank = config.get("r")
    if not isinstance(rank, int) or rank <= 0:
        problems.append(f"r is {rank!r}, not a positive integer")
    elif vllm_max_lora_rank(rank) is None:
        problems.append(f"r {rank} exceeds vLLM's largest --max-lora-rank {VLLM_MAX_LORA_RANKS[-1]}")
    return problems


def _tensor_problems(
    shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str], rank: Any, base: dict[str, Any] | None
) -> list[str]:
    problems: list[str] = []
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in shapes.items():
        match = KEY.match(name)
        if match is None:
            problems.append(f"tensor {name!r} is not base_model.model.model.layers.<i>.<module>.lora_A/B.weight")
            continue
        module, layer, _, leaf, which = match.groups()
        if leaf not in LLAMA_LORA_MODULES:
            problems.append(f"{module}: vLLM expects target modules in {list(LLAMA_LORA_MODULES)}")
        if dtypes.get(name) not in ALLOWED_DTYPES:
            problems.append(f"{name} has dtype {dtypes.get(name)}; servers load F32, F16 or BF16")
        if base is not None and int(layer) >= base["num_hidden_layers"]:
            problems.append(f"{module}: the base model has {base['num_hidden_layers']} layers")
        pairs.setdefault(module, {})[which] = shape
    for module, pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"}:
            problems.append(f"{module} has lora_{'A' if 'A' in pair else 'B'} only (TGI skips the layer)")
            continue
        (a_rows, a_cols), (b_rows, b_cols) = pair["A"], pair["B"]
        if a_rows != rank or b_cols != rank:
            problems.append(f"{module}: A {pair['A']} and B {pair['B']} do not have rank r={rank}")
        if base is not None:
            expected = _linear_shape(module.rsplit(".", 1)[-1], base)
            if expected is not None and (b_rows, a_cols) != expected:
                problems.append(f"{module}: adapts a {b_rows}x{a_cols} linear, the base has {expected[0]}x{expected[1]}")
    if not pairs and not problems:
        problems.append("adapter_model.safetensors holds no LoRA tensors")
    return problems


def _linear_shape(leaf: str, config: dict[str, Any]) -> tuple[int, int] | None:
    """(out, in) of a Llama/Mistral block linear, from the base's config.json."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads", heads) * head_dim
    inter = config.get("intermediate_size")
    return {
        "q_proj": (heads * head_dim, hidden),
        "k_proj": (kv, hidden),
        "v_proj": (kv, hidden),
        "o_proj": (hidden, heads * head_dim),
        "gate_proj": (inter, hidden),
        "up_proj": (inter, hidden),
        "down_proj": (hidden, inter),
    }.get(leaf)


def _dtypes(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    return {name: info["dtype"] for name, info in header.items() if name != "__metadata__"}


def server_problems(peft_dir: str | Path, base_model_dir: str | Path | None = None) -> list[str]:
    """What vLLM or TGI would reject in `peft_dir` (empty when both would load it)."""
    peft_dir = Path(peft_dir)
    config_path, weights_path = peft_dir / ADAPTER_CONFIG, peft_dir / PEFT_WEIGHTS
    if not config_path.is_file():
        return [f"{peft_dir} has no adapter_config.json"]
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"adapter_config.json is not JSON ({exc})"]
    problems = _config_problems(config)
    if not weights_path.is_file():
        return [*problems, f"{peft_dir} has no adapter_model.safetensors (servers refuse pickle .bin here)"]
    base = None
    if base_model_dir is not None:
        base = json.loads((Path(base_model_dir) / "config.json").read_text(encoding="utf-8"))
    shapes = read_header_shapes(weights_path)
    return problems + _tensor_problems(shapes, _dtypes(weights_path), config.get("r"), base)
