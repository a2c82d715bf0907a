"""MLX (mlx-lm) <-> PEFT LoRA adapters: transposes and renames, no framework needed.

mlx-lm computes `y = W x + scale * (x @ lora_a) @ lora_b` with lora_a (in, r) and lora_b (r, out);
PEFT computes `y = W x + (alpha / r) * B(A(x))` with lora_A.weight (r, in) and lora_B.weight (out, r).
So lora_A.weight = lora_a.T, lora_B.weight = lora_b.T and lora_alpha = scale * r. mlx-lm adapts the
last `num_layers` blocks; PEFT says the same with `layers_to_transform` (docs/mlx-peft-mapping.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.adapter_format.checks import (
    LAYER_MODULE,
    ModelLayout,
    ModuleShape,
    check_mlx_config,
    check_module_path,
    check_peft_config,
)
from morris_mlx.adapter_format.provenance import verify_adapter
from morris_mlx.adapter_format.tensors import Tensor, read_safetensors, write_safetensors
from morris_mlx.atomic import write_json
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_CONFIG, MLX_WEIGHTS, PEFT_PICKLED_WEIGHTS, PEFT_WEIGHTS

MLX_KEY = re.compile(r"^(model\.layers\.\d+\.[A-Za-z0-9_.]+)\.(lora_a|lora_b)$")
PEFT_KEY = re.compile(
    r"^base_model\.model\.(model\.layers\.\d+\.[A-Za-z0-9_.]+)\.lora_(A|B)(?:\.default)?\.weight$"
)
PEFT_PREFIX = "base_model.model."


@dataclass
class LoraAdapter:
    """A LoRA adapter in MLX layout: per module, lora_a (in, r) and lora_b (r, out)."""

    rank: int
    scale: float
    dropout: float
    modules: dict[str, tuple[Tensor, Tensor]]  # "model.layers.3.self_attn.q_proj" -> (lora_a, lora_b)

    @property
    def layers(self) -> list[int]:
        return sorted({layer_of(module) for module in self.modules})

    @property
    def paths(self) -> list[str]:
        """Module paths relative to a block ("self_attn.q_proj"), as mlx-lm's lora_parameters.keys."""
        return sorted({path_of(module) for module in self.modules})

    def shapes(self) -> list[ModuleShape]:
        return [
            ModuleShape(module, a.shape[0], a.shape[1], b.shape[1]) for module, (a, b) in self.modules.items()
        ]


def layer_of(module: str) -> int:
    return int(LAYER_MODULE.match(module).group(1))  # type: ignore[union-attr]


def path_of(module: str) -> str:
    return LAYER_MODULE.match(module).group(2)  # type: ignore[union-attr]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MorrisError(f"{path.parent} has no {path.name}; it is not a complete adapter directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MorrisError(f"{path} is not valid JSON ({exc}); the adapter is damaged") from None
    if not isinstance(data, dict):
        raise MorrisError(f"{path} does not hold a JSON object; the adapter is damaged")
    return data


def _pair_up(found: dict[str, dict[str, Tensor]], rank: int, source: str) -> dict[str, tuple[Tensor, Tensor]]:
    """Check each module has both halves with consistent (in, r) and (r, out) shapes."""
    modules: dict[str, tuple[Tensor, Tensor]] = {}
    for module, halves in sorted(found.items()):
        check_module_path(path_of(module), source)
        if set(halves) != {"a", "b"}:
            raise MorrisError(
                f"{source}: {module} has only lora_{''.join(halves)}; the adapter is incomplete"
            )
        a, b = halves["a"], halves["b"]
        if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != rank or b.shape[0] != rank:
            raise MorrisError(
                f"{source}: {module} has LoRA shapes {a.shape} and {b.shape} (MLX layout), which do not "
                f"agree with rank {rank}; the adapter is damaged"
            )
        modules[module] = (a, b)
    if not modules:
        raise MorrisError(f"{source} holds no LoRA tensors; it is not a LoRA adapter")
    return modules


def read_mlx_adapter(adapter_dir: Path) -> tuple[LoraAdapter, int]:
    """An mlx-lm adapter directory -> (adapter, its num_layers)."""
    adapter_dir = Path(adapter_dir)
    source = f"MLX adapter {adapter_dir}"
    verify_adapter(adapter_dir)
    config = _read_json(adapter_dir / ADAPTER_CONFIG)
    check_mlx_config(config, source)
    params = config["lora_parameters"]
    rank = int(params["rank"])
    tensors, _ = read_safetensors(adapter_dir / MLX_WEIGHTS)
    found: dict[str, dict[str, Tensor]] = {}
    for name, tensor in tensors.items():
        match = MLX_KEY.match(name)
        if not match:
            raise MorrisError(
                f"{source}: tensor {name!r} is not a LoRA weight of a transformer block; only block linear "
                "layers map to PEFT"
            )
        found.setdefault(match.group(1), {})[match.group(2)[-1]] = tensor
    adapter = LoraAdapter(
        rank=rank,
        scale=float(params["scale"]),
        dropout=float(params.get("dropout", 0.0)),
        modules=_pair_up(found, rank, source),
    )
    return adapter, int(config["num_layers"])


def read_peft_adapter(peft_dir: Path) -> tuple[LoraAdapter, list[int] | None]:
    """A PEFT LoRA directory -> (adapter in MLX layout, its layers_to_transform)."""
    peft_dir = Path(peft_dir)
    source = f"PEFT adapter {peft_dir}"
    verify_adapter(peft_dir)
    config = _read_json(peft_dir / ADAPTER_CONFIG)
    check_peft_config(config, source)
    weights = peft_dir / PEFT_WEIGHTS
    if not weights.is_file():
        extra = (
            " (a pickled adapter_model.bin is refused: `morris import peft --allow-pickle` re-saves it)"
            if (peft_dir / PEFT_PICKLED_WEIGHTS).exists()
            else ""
        )
        raise MorrisError(f"{peft_dir} has no {PEFT_WEIGHTS}{extra}; pass a PEFT adapter directory")
    tensors, _ = read_safetensors(weights)
    rank = int(config["r"])
    found: dict[str, dict[str, Tensor]] = {}
    for name, tensor in tensors.items():
        match = PEFT_KEY.match(name)
        if not match:
            raise MorrisError(
                f"{source}: tensor {name!r} is not a LoRA A/B weight of a transformer block "
                "(DoRA magnitudes, embeddings and extra trained modules are not mapped)"
            )
        # PEFT stores (r, in) and (out, r); MLX wants (in, r) and (r, out).
        found.setdefault(match.group(1), {})[match.group(2).lower()] = tensor.transposed()
    layers = config.get("layers_to_transform")
    if isinstance(layers, int):
        layers = [layers]
    if layers is not None:
        layers = sorted(int(i) for i in layers)
    adapter = LoraAdapter(
        rank=rank,
        scale=float(config["lora_alpha"]) / rank,
        dropout=float(config.get("lora_dropout") or 0.0),
        modules=_pair_up(found, rank, source),
    )
    if layers is not None and not set(adapter.layers) <= set(layers):
        raise MorrisError(
            f"{source}: tensors for layers {sorted(set(adapter.layers) - set(layers))} fall outside "
            f"layers_to_transform {layers}; the adapter is inconsistent"
        )
    return adapter, layers


def _fill_missing(adapter: LoraAdapter, layers: list[int]) -> dict[str, tuple[Tensor, Tensor]]:
    """The modules with every target path present in every one of `layers`.

    mlx-lm and PEFT both put the same targets in every adapted block; where the source lacks one, zero A
    and B stand in for it, which adds exactly nothing to the layer's output.
    """
    shape_of: dict[str, tuple[Tensor, Tensor]] = {}
    for module, pair in adapter.modules.items():
        shape_of.setdefault(path_of(module), pair)
    modules = dict(adapter.modules)
    for layer in layers:
        for path, (a, b) in shape_of.items():
            module = f"model.layers.{layer}.{path}"
            if module not in modules:
                modules[module] = (
                    Tensor(a.dtype, np.zeros_like(a.array)),
                    Tensor(b.dtype, np.zeros_like(b.array)),
                )
    return dict(sorted(modules.items()))


def layers_to_transform(
    adapter: LoraAdapter, num_layers: int, layout: ModelLayout | None
) -> list[int] | None:
    """PEFT's layers_to_transform for mlx-lm's "last num_layers blocks" (None means every block)."""
    if layout is not None:
        total = layout.num_layers
        if num_layers < 0 or num_layers >= total:
            return None
        return list(range(total - num_layers, total))
    if num_layers < 0:
        return None
    return adapter.layers


def mlx_num_layers(layers: list[int] | None, layout: ModelLayout) -> int:
    """mlx-lm's num_layers covering PEFT's layers_to_transform (gaps are filled with zero LoRA)."""
    if layers is None:
        return layout.num_layers
    return layout.num_layers - min(layers)


def write_peft_adapter(
    adapter: LoraAdapter, out_dir: Path, layers: list[int] | None, base_model: str | None
) -> None:
    """adapter_model.safetensors + adapter_config.json as PEFT's save_pretrained writes them."""
    modules = _fill_missing(adapter, layers) if layers is not None else adapter.modules
    tensors: dict[str, Tensor] = {}
    for module, (a, b) in modules.items():
        tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"] = a.transposed()
        tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"] = b.transposed()
    write_safetensors(out_dir / PEFT_WEIGHTS, tensors, {"format": "pt"})
    write_json(out_dir / ADAPTER_CONFIG, peft_config(adapter, layers, base_model))


def peft_config(adapter: LoraAdapter, layers: list[int] | None, base_model: str | None) -> dict[str, Any]:
    alpha = adapter.scale * adapter.rank
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "eva_config": None,
        "exclude_modules": None,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": layers,
        "loftq_config": {},
        "lora_alpha": int(alpha) if float(alpha).is_integer() else alpha,
        "lora_bias": False,
        "lora_dropout": adapter.dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": adapter.rank,
        "rank_pattern": {},
        "revision": None,
        "target_modules": sorted({path.rsplit(".", 1)[-1] for path in adapter.paths}),
        "target_parameters": None,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": None,
        "use_dora": False,
        "use_rslora": False,
    }


def write_mlx_adapter(
    adapter: LoraAdapter, out_dir: Path, total_layers: int, num_layers: int, base_model: str | None
) -> None:
    """adapters.safetensors + adapter_config.json as mlx-lm writes them (`mlx_lm generate --adapter-path`)."""
    # mlx-lm puts LoRA on every target of the last num_layers blocks; gaps in PEFT's layers get zeros.
    modules = _fill_missing(adapter, list(range(total_layers - num_layers, total_layers)))
    tensors: dict[str, Tensor] = {}
    for module, (a, b) in modules.items():
        tensors[f"{module}.lora_a"] = a
        tensors[f"{module}.lora_b"] = b
    write_safetensors(out_dir / MLX_WEIGHTS, tensors, {"format": "mlx"})
    write_json(
        out_dir / ADAPTER_CONFIG,
        {
            "fine_tune_type": "lora",
            "model": base_model,
            "num_layers": num_layers,
            "lora_parameters": {
                "rank": adapter.rank,
                "scale": adapter.scale,
                "dropout": adapter.dropout,
                "keys": adapter.paths,
            },
        },
    )
