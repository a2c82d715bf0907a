"""One adapter format into the other, checked against the base model first (mapping: mapping.py).

Both backends read either format through these: the torch backend turns an MLX adapter into PEFT,
the MLX backend a PEFT adapter into mlx-lm's, each into a folder the caller owns.
"""

from __future__ import annotations

from pathlib import Path

from morris_mlx.adapter_format.checks import ModelLayout, check_fits, model_layout
from morris_mlx.adapter_format.mapping import (
    LoraAdapter,
    layers_to_transform,
    mlx_num_layers,
    read_mlx_adapter,
    read_peft_adapter,
    write_mlx_adapter,
    write_peft_adapter,
)
from morris_mlx.errors import MorrisError


def read_checked(path: Path, fmt: str, layout: ModelLayout) -> tuple[LoraAdapter, list[int] | None, int]:
    """(adapter, PEFT layers, mlx-lm num_layers) of the `fmt` ("mlx" or "peft") adapter in `path`,
    checked to fit the model `layout` describes."""
    if fmt == "mlx":
        adapter, num_layers = read_mlx_adapter(path)
        layers = layers_to_transform(adapter, num_layers, layout)
        if num_layers > layout.num_layers:
            raise MorrisError(
                f"{path} adapts the last {num_layers} blocks but {layout.model_dir} has "
                f"{layout.num_layers}; it was trained for another base model: pass that one with --model"
            )
    else:
        adapter, layers = read_peft_adapter(path)
        if layers and max(layers) >= layout.num_layers:
            raise MorrisError(
                f"{path} adapts layer {max(layers)} but {layout.model_dir} has {layout.num_layers}; "
                "it was trained for another base model: pass that one with --model"
            )
        num_layers = mlx_num_layers(layers, layout)
    check_fits(adapter.shapes(), layout, f"{fmt.upper()} adapter {path}")
    return adapter, layers, num_layers


def mlx_to_peft(mlx_dir: Path, out_dir: Path, model_dir: Path) -> Path:
    """Write the PEFT form of the mlx-lm adapter in `mlx_dir` into `out_dir`."""
    layout = model_layout(Path(model_dir))
    adapter, layers, _ = read_checked(Path(mlx_dir), "mlx", layout)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_peft_adapter(adapter, Path(out_dir), layers, str(model_dir))
    return Path(out_dir)


def peft_to_mlx(peft_dir: Path, out_dir: Path, model_dir: Path) -> Path:
    """Write the mlx-lm form of the PEFT adapter in `peft_dir` into `out_dir`."""
    layout = model_layout(Path(model_dir))
    adapter, _, num_layers = read_checked(Path(peft_dir), "peft", layout)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_mlx_adapter(adapter, Path(out_dir), layout.num_layers, num_layers, str(Path(model_dir).resolve()))
    return Path(out_dir)
