"""Decode against the memory-bandwidth limit: batch-1 decoding reads every weight once per token, so
weight bytes x tokens/s is the bandwidth achieved, and its share of the device's peak says how much
speed is left on the table (the issue's target: 70% for a 7B model in bf16 on a GPU).

The weight bytes are the parameters as loaded (quantized ones packed, scales included), which leaves out
the KV cache (small at these prompt lengths) and counts an untied input-embedding table that decoding
only gathers from (under 2% of a 7B model): the figure is accurate to a few per cent, not better.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from morris_mlx.bench.measure import summarise

# Vendor figures in GB/s, most specific pattern first. Binned Apple chips (fewer GPU cores) have less:
# an M3 Max with 30 GPU cores 300, an M4 Max with 32 cores 410; pass --peak-bandwidth-gbs for those.
PEAK_BANDWIDTH_GBS: list[tuple[str, float]] = [
    (r"\bH200\b", 4800.0),
    (r"\bH100 NVL\b", 3900.0),
    (r"\bH100 PCIe\b", 2000.0),
    (r"\bH100\b", 3350.0),  # SXM5, named "NVIDIA H100 80GB HBM3"
    (r"\bA100\b.*80GB.*PCIe", 1935.0),
    (r"\bA100-SXM4-80GB\b", 2039.0),
    (r"\bA100\b", 1555.0),
    (r"\bL40S\b", 864.0),
    (r"\bL4\b", 300.0),
    (r"\bRTX 4090\b", 1008.0),
    (r"\bM1 Ultra\b", 800.0),
    (r"\bM1 Max\b", 400.0),
    (r"\bM1 Pro\b", 200.0),
    (r"\bM1\b", 68.25),
    (r"\bM2 Ultra\b", 800.0),
    (r"\bM2 Max\b", 400.0),
    (r"\bM2 Pro\b", 200.0),
    (r"\bM2\b", 100.0),
    (r"\bM3 Ultra\b", 819.0),
    (r"\bM3 Max\b", 400.0),
    (r"\bM3 Pro\b", 150.0),
    (r"\bM3\b", 100.0),
    (r"\bM4 Max\b", 546.0),
    (r"\bM4 Pro\b", 273.0),
    (r"\bM4\b", 120.0),
]


def peak_bandwidth_gbs(device_name: str | None) -> float | None:
    """The vendor's peak memory bandwidth for a device name, or None when it is not in the table."""
    if not device_name:
        return None
    for pattern, gbs in PEAK_BANDWIDTH_GBS:
        if re.search(pattern, device_name):
            return gbs
    return None


@functools.cache
def accelerator_name() -> str | None:
    """The GPU's name as its driver reports it (torch's CUDA, else MLX's GPU), or None on a CPU.
    Cached: every record asks, and the answer does not change within a process."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import mlx.core as mx

        if mx.default_device() == mx.gpu:
            return str(mx.device_info().get("device_name") or "") or None
    except ImportError:
        pass
    return None


def weight_bytes(generator: Any) -> int:
    """Bytes of the loaded model's parameters (read before an adapter is attached)."""
    if generator.backend == "mlx":
        from mlx.utils import tree_flatten

        return sum(v.nbytes for _, v in tree_flatten(generator.model.parameters()))
    return sum(p.numel() * p.element_size() for p in generator.model.parameters())


def decode_bandwidth(decode_runs: list[float], nbytes: int, peak_gbs: float | None) -> dict[str, Any]:
    """Achieved GB/s per timed run and, where the peak is known, its share of the peak."""
    achieved = [nbytes * rate / 1e9 for rate in decode_runs]
    figures: dict[str, Any] = {"weight_gb": nbytes / 1e9, "decode_bandwidth_gbs": summarise(achieved)}
    if peak_gbs:
        figures["peak_bandwidth_gbs"] = peak_gbs
        figures["decode_bandwidth_fraction"] = summarise([gbs / peak_gbs for gbs in achieved])
    return figures
