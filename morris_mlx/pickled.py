"""Pickle checkpoints (pytorch_model.bin, adapter_model.bin) re-saved as safetensors, on explicit request.

Everything else in morris loads safetensors only: unpickling a file can run code. `--allow-pickle` on
`morris convert` and `morris import peft` is the one door for older checkpoints; even then the file is
read with `torch.load(weights_only=True)`, which unpickles tensors and plain containers and refuses any
other object, and what comes out is safetensors, so nothing downstream ever sees the pickle.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError, first_line
from morris_mlx.files import ADAPTER_CONFIG, PEFT_PICKLED_WEIGHTS, PEFT_WEIGHTS

log = logging.getLogger("morris")

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
PEFT_PICKLE = PEFT_PICKLED_WEIGHTS
# Everything of a Hugging Face model folder but its weights: config, tokenizer, chat template.
MODEL_SIDE_FILES = ("*.json", "*.model", "*.txt", "*.jinja", "tokenizer*")


def pickled_files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.suffix in PICKLE_SUFFIXES)


def pickled_adapter_refused(adapter_path: Path) -> MorrisError:
    """The error for an adapter folder that holds only a pickled adapter_model.bin."""
    return MorrisError(
        f"{adapter_path} holds a pickled {PEFT_PICKLE}, refused (pickle can run code when loaded); "
        f"if you trust it, `morris import peft --peft-path {adapter_path} --allow-pickle` re-saves it"
    )


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MorrisError(
            "reading a pickle checkpoint needs torch; install the torch extra (pip install 'morris_mlx[torch]')"
        ) from None
    return torch


def resave_model(source: Path, dest: Path, trust_remote_code: bool = False) -> Path:
    """A Hugging Face model folder with pickle weights -> `dest` with the same model in safetensors."""
    _torch()
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor bars are noise in a CLI
    log.warning("reading pickle weights of %s (weights only) and re-saving them as safetensors", source)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(source), dtype="auto", use_safetensors=False, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001 - transformers and torch.load raise many types here
        first = first_line(exc)
        raise MorrisError(
            f"cannot read the pickle weights in {source}: {first} (a file that holds more than tensors is "
            "refused even with --allow-pickle)"
        ) from None
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest), safe_serialization=True)
    for pattern in MODEL_SIDE_FILES:
        for item in source.glob(pattern):
            target = dest / item.name
            if item.is_file() and not target.exists():
                shutil.copy2(item, target)
    return dest


def resave_peft(source: Path, dest: Path) -> Path:
    """A PEFT adapter folder with adapter_model.bin -> `dest` with adapter_model.safetensors."""
    torch = _torch()
    from safetensors.torch import save_file

    weights = source / PEFT_PICKLE
    config = source / ADAPTER_CONFIG
    if not weights.is_file() or not config.is_file():
        raise MorrisError(
            f"{source} has no {PEFT_PICKLE} and adapter_config.json; pass a PEFT adapter folder"
        )
    log.warning("reading %s (weights only) and re-saving it as safetensors", weights)
    try:
        state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, EOFError, RuntimeError for bad bytes
        first = first_line(exc)
        raise MorrisError(
            f"cannot read {weights}: {first} (a file that holds more than tensors is refused even with "
            "--allow-pickle)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MorrisError(
            f"{weights} is not a PEFT state dict (names to tensors); pass a PEFT adapter folder"
        )
    dest.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest / PEFT_WEIGHTS))
    shutil.copy2(config, dest / ADAPTER_CONFIG)
    return dest
