"""The torch fallback backend: transformers + peft on CUDA, MPS or the CPU.

This module holds what training and generation share: the dtype for a device, loading a model
directory (safetensors only, SDPA attention), and reading adapters of either format. An MLX adapter
(adapters.safetensors, as mlx-lm writes it) is converted to a PEFT directory on the fly through
morris_mlx.adapter_format (docs/mlx-peft-mapping.md), so a user can train on one backend and generate on
the other.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from morris_mlx.adapter_format.convert import mlx_to_peft
from morris_mlx.adapter_format.provenance import verify_adapter
from morris_mlx.backends.base import Backend, Generator
from morris_mlx.errors import MorrisError, first_line
from morris_mlx.files import ADAPTER_CONFIG, MLX_WEIGHTS, PEFT_WEIGHTS
from morris_mlx.pickled import PEFT_PICKLE, pickled_adapter_refused

log = logging.getLogger("morris")

__all__ = ["ADAPTER_CONFIG", "MLX_WEIGHTS", "PEFT_WEIGHTS", "TorchBackend"]


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft 0.21 calls a transformers method deprecated in 5.x on every wrap; that warning is not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def torch_dtype(device: str) -> Any:
    """fp32 on the CPU (bf16 matmuls there are slow and inexact); bf16 where the device supports it."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device == "mps":
        try:
            (torch.ones(1, dtype=torch.bfloat16, device="mps") + 1).cpu()
            return torch.bfloat16
        except (RuntimeError, TypeError):  # older macOS: no bf16 on Metal
            return torch.float32
    return torch.float32


def load_options(device: str) -> dict[str, Any]:
    """from_pretrained's dtype (and quantization) settings; `morris bench --precision` swaps this out."""
    return {"dtype": torch_dtype(device)}


def peak_memory_gb(device: str) -> float:
    """Peak accelerator memory, or the process's peak resident set on the CPU."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    if device == "mps" and hasattr(torch, "mps"):
        return torch.mps.driver_allocated_memory() / 1e9
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9  # bytes on macOS, KiB on Linux


def load_tokenizer(model_dir: Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise MorrisError(f"cannot read the tokenizer in {model_dir}: {exc}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise MorrisError(
            f"the tokenizer in {model_dir} has no chat template; use an instruct/chat model "
            "(its tokenizer_config.json needs a chat_template)"
        )
    return tokenizer


def load_model(model_dir: Path, device: str, trust_remote_code: bool = False) -> Any:
    """The causal LM in `model_dir` on `device`, in eval mode; errors become one-line MorrisErrors."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from morris_mlx.models.resolve import check_model_dir

    check_model_dir(Path(model_dir))
    hf_logging.disable_progress_bar()  # a per-tensor bar on every load is noise in a CLI
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir),
            **load_options(device),
            attn_implementation="sdpa",
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError, KeyError) as exc:
        # transformers' messages run to several paragraphs (upgrade advice); the first line says what failed.
        first = first_line(exc)
        raise MorrisError(
            f"transformers cannot load the model in {model_dir}: {first} (check config.json's model_type; "
            "custom architectures need trust_remote_code, off unless you set it)"
        ) from None
    finally:
        hf_logging.enable_progress_bar()
    # bitsandbytes places quantized weights on the device itself and refuses a later .to().
    return (model if getattr(model, "hf_quantizer", None) else model.to(device)).eval()


def adapter_format(adapter_path: Path) -> str:
    """'peft' or 'mlx'; MorrisError when the folder holds neither."""
    adapter_path = Path(adapter_path)
    if not adapter_path.is_dir():
        raise MorrisError(f"adapter folder {adapter_path} does not exist; pass a trained adapter's folder")
    if (adapter_path / PEFT_WEIGHTS).is_file():
        return "peft"
    if (adapter_path / MLX_WEIGHTS).is_file():
        return "mlx"
    if (adapter_path / PEFT_PICKLE).is_file():
        raise pickled_adapter_refused(adapter_path)
    raise MorrisError(
        f"{adapter_path} holds no adapter weights ({PEFT_WEIGHTS} or {MLX_WEIGHTS}); "
        "pass the folder `morris train` wrote"
    )


@contextlib.contextmanager
def peft_dir(adapter_path: Path, model_dir: Path) -> Iterator[Path]:
    """Yield a PEFT directory for `adapter_path`: itself, or a temporary conversion of an MLX adapter."""
    adapter_path = Path(adapter_path)
    if adapter_format(adapter_path) == "peft":
        verify_adapter(adapter_path)  # an MLX adapter is checked where it is read, in the conversion
        yield adapter_path
        return
    with tempfile.TemporaryDirectory(prefix="morris-peft-") as tmp:
        yield mlx_to_peft(adapter_path, Path(tmp), model_dir)


class TorchBackend(Backend):
    """transformers + peft behind the Backend protocol."""

    name = "torch"

    def __init__(self, device: str = "cpu", trust_remote_code: bool = False) -> None:
        self.device = device
        self.trust_remote_code = trust_remote_code

    def load(self, model_dir: Path, adapter_path: Path | None = None, fuse: bool = True) -> Generator:
        from morris_mlx.backends.torch_generate import TorchGenerator

        model_dir = Path(model_dir)
        if adapter_path is not None:
            adapter_format(Path(adapter_path))  # fail on a bad path before the slow model load
        tokenizer = load_tokenizer(model_dir, self.trust_remote_code)
        model = load_model(model_dir, self.device, self.trust_remote_code)
        generator = TorchGenerator(model, tokenizer, model_dir, self.device)
        if adapter_path is not None:
            generator.set_adapter(Path(adapter_path), fuse=fuse)
        return generator

    def trainer(self, objective: str = "sft") -> Any:
        if objective == "sft":
            from morris_mlx.backends.torch_train import TorchTrainer

            return TorchTrainer(self.device)
        from morris_mlx.backends.torch_prefer import TorchPreferenceTrainer

        return TorchPreferenceTrainer(self.device)
