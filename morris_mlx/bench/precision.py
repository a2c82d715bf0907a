"""The precision axis of `morris bench`: one model directory (MLX) or one set of load options (torch) per
precision, made through the product's own paths.

MLX: the weights are converted with `morris convert` (mlx-lm's converter, quantization included), so the
benchmark measures exactly what a user's converted model runs. Conversions are cached beside the models,
keyed by the source's fingerprint, because a 7B conversion costs a minute and the sweep needs each
precision several times.

torch: the same HF directory is loaded with another dtype, or quantized at load time with bitsandbytes
(CUDA only), through the torch backend's `load_options` hook.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("morris")


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: str | None  # mlx-lm / torch dtype name of the unquantized tensors; None keeps the stored one
    bits: int | None = None


# Quantized weights keep bf16 for norms, scales and LoRA, as a Zephyr checkpoint (bf16) converted with
# `morris convert -q` would.
PRECISIONS = {
    "auto": Precision("auto", None),
    "fp32": Precision("fp32", "float32"),
    "bf16": Precision("bf16", "bfloat16"),
    "fp16": Precision("fp16", "float16"),
    "4bit": Precision("4bit", "bfloat16", 4),
    "8bit": Precision("8bit", "bfloat16", 8),
}
Q_GROUP_SIZE = 64
_SAFETENSORS_DTYPES = {"F32": "fp32", "BF16": "bf16", "F16": "fp16"}


def parse_precisions(text: str) -> list[Precision]:
    """'bf16,4bit' -> [Precision, ...]; ValueError naming the bad entry (argparse turns it into exit 2)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in PRECISIONS]
    if bad or not names:
        raise ValueError(f"unknown precision {bad[0] if bad else text!r}; use {', '.join(PRECISIONS)}")
    return [PRECISIONS[n] for n in dict.fromkeys(names)]


def stored_precision(model_dir: Path) -> str:
    """The precision a model directory holds: its quantization bits, else its weights' float dtype."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    quant = config.get("quantization") or config.get("quantization_config") or {}
    if quant.get("bits"):
        return f"{quant['bits']}bit"
    counts: dict[str, int] = {}
    for path in sorted(Path(model_dir).glob("*.safetensors"))[:1]:
        with open(path, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        for name, info in header.items():
            if name != "__metadata__" and info["dtype"] in _SAFETENSORS_DTYPES:
                counts[info["dtype"]] = counts.get(info["dtype"], 0) + 1
    return _SAFETENSORS_DTYPES[max(counts, key=counts.get)] if counts else "unknown"


def run_convert(source: Path, out: Path, precision: Precision) -> Path:
    """The product's conversion (what `morris convert` runs), in this process."""
    from morris_mlx.models.convert import ConvertOptions, convert_model

    options = ConvertOptions(hf_path=str(source), mlx_path=str(out), force=True, dtype=precision.dtype)
    if precision.bits:
        options.quantize, options.q_bits, options.q_group_size = True, precision.bits, Q_GROUP_SIZE
    return convert_model(options)


def mlx_model_for(source: Path, precision: Precision, cache: Path) -> Path:
    """An MLX model directory of `source` at `precision`, converted once and reused while the source is
    unchanged (the convert manifest records the source's fingerprint)."""
    from morris_mlx.models.default import MANIFEST
    from morris_mlx.models.fingerprint import fingerprint_model

    if precision.name == "auto":
        return source
    out = cache / f"{source.name}-{precision.name}"
    manifest = out / MANIFEST
    if manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("source_fingerprint")
        if recorded == fingerprint_model(source):
            return out
    log.info("converting %s to %s with `morris convert` into %s", source.name, precision.name, out)
    return run_convert(source, out, precision)


def mlx_precision_name(model_dir: Path, precision: Precision) -> str:
    return stored_precision(model_dir) if precision.name == "auto" else precision.name


# torch ------------------------------------------------------------------------------------------------------


def torch_skip_reason(precision: Precision, device: str) -> str | None:
    """Why the torch backend cannot run `precision` here, or None when it can."""
    if not precision.bits:
        return None
    if device != "cuda":
        return f"bitsandbytes {precision.name} needs CUDA; torch runs on {device} here"
    if importlib.util.find_spec("bitsandbytes") is None:
        return (
            "bitsandbytes is not installed (pip install bitsandbytes, or carry its wheel to the GPU machine)"
        )
    return None


def torch_load_kwargs(precision: Precision, device: str) -> dict[str, Any]:
    """from_pretrained keyword arguments for `precision` on `device`."""
    import torch

    from morris_mlx.backends.torch_backend import torch_dtype

    if precision.name == "auto":
        return {"dtype": torch_dtype(device)}
    dtype = getattr(torch, precision.dtype)
    if not precision.bits:
        return {"dtype": dtype}
    from transformers import BitsAndBytesConfig

    if precision.bits == 4:
        # QLoRA's recipe: NF4 with double quantization, bf16 compute.
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    return {"dtype": dtype, "quantization_config": quant, "device_map": {"": 0}}


def torch_precision_name(precision: Precision, device: str) -> str:
    if precision.name != "auto":
        return precision.name
    import torch

    from morris_mlx.backends.torch_backend import torch_dtype

    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[torch_dtype(device)]


@contextlib.contextmanager
def torch_precision(precision: Precision, device: str) -> Iterator[dict[str, Any]]:
    """Make the torch backend load models at `precision` while the block runs; yields the load options."""
    from morris_mlx.backends import torch_backend

    kwargs = torch_load_kwargs(precision, device)
    original = torch_backend.load_options
    torch_backend.load_options = lambda _device: dict(kwargs)
    try:
        yield kwargs
    finally:
        torch_backend.load_options = original
