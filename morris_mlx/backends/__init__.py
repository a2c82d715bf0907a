"""Device and backend selection, in one place.

auto: MLX on Apple Silicon (Metal is the point of the product); on NVIDIA, MLX's CUDA build when it is
installed (it trained 1.25x faster than torch+peft on an H100), else torch; on a plain CPU, torch
(2.7x faster than mlx[cpu] with OpenBLAS at training on the 2-core build machine), else MLX.
docs/backend-choice.md has the figures and where they came from.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from dataclasses import dataclass

from morris_mlx.backends.base import Backend
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

BACKENDS = ("mlx", "torch")


@dataclass
class Choice:
    backend: str
    device: str
    reason: str


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def mlx_device() -> str | None:
    """'gpu' (Metal or CUDA) or 'cpu' when MLX is importable, else None."""
    if not _installed("mlx"):
        return None
    try:
        import mlx.core as mx
    except Exception:  # noqa: BLE001 - a broken install is the same as none here
        return None
    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def torch_device() -> str | None:
    """'cuda', 'mps' or 'cpu' when torch, transformers and peft are importable, else None."""
    if not all(_installed(m) for m in ("torch", "transformers", "peft")):
        return None
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def choose(name: str = "auto") -> Choice:
    """Pick the backend for `name` (auto | mlx | torch) and say why."""
    if name not in ("auto", *BACKENDS):
        raise MorrisError(f"unknown backend {name!r}; use auto, mlx or torch")
    if name == "mlx":
        device = mlx_device()
        if device is None:
            raise MorrisError("the mlx backend needs MLX: pip install mlx (macOS) or 'mlx[cpu]' (Linux)")
        return Choice("mlx", device, "asked for")
    if name == "torch":
        device = torch_device()
        if device is None:
            raise MorrisError("the torch backend needs the torch extra: pip install 'morris_mlx[torch]'")
        return Choice("torch", device, "asked for")
    mlx_dev = mlx_device()
    if mlx_dev == "gpu":
        where = "Metal" if platform.system() == "Darwin" else "CUDA"
        return Choice("mlx", "gpu", f"MLX on {where} is the fastest path here")
    torch_dev = torch_device()
    if torch_dev is not None:
        return Choice("torch", torch_dev, f"torch on {torch_dev} beats MLX's CPU build here")
    if mlx_dev == "cpu":
        return Choice("mlx", "cpu", "torch is not installed; MLX on the CPU")
    raise MorrisError("no backend is installed: pip install 'morris_mlx' (MLX) or 'morris_mlx[torch]'")


def get_backend(name: str = "auto", announce: bool = True, trust_remote_code: bool = False) -> Backend:
    """The backend object for `name`; logs which one auto picked and why."""
    choice = choose(name)
    if announce:
        log.info("backend: %s on %s (%s)", choice.backend, choice.device, choice.reason)
    if choice.backend == "mlx":
        from morris_mlx.backends.mlx_backend import MLXBackend
        from morris_mlx.mlx_blas import warn_if_slow

        if choice.device == "cpu":
            warn_if_slow()

        return MLXBackend(trust_remote_code=trust_remote_code)
    from morris_mlx.backends.torch_backend import TorchBackend

    return TorchBackend(device=choice.device, trust_remote_code=trust_remote_code)
