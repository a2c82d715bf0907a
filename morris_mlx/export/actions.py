"""The four operations behind `morris export` / `morris import`: check everything, then write atomically.

Each one reads and validates its input (adapter config, tensors, fit against the base model) before an
output directory exists; the output is built under `<out>.partial` and renamed into place only when
complete, so bad input or a crash leaves nothing behind.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from morris_mlx.adapter_format.checks import ModelLayout, model_layout
from morris_mlx.adapter_format.convert import read_checked
from morris_mlx.adapter_format.mapping import (
    layers_to_transform,
    read_mlx_adapter,
    write_mlx_adapter,
    write_peft_adapter,
)
from morris_mlx.atomic import atomic_dir
from morris_mlx.config import ModelConfig
from morris_mlx.errors import MorrisError
from morris_mlx.export.locate import locate_base_model, named_base
from morris_mlx.export.provenance import write_adapter_provenance, write_export_record
from morris_mlx.export.server_checks import server_problems
from morris_mlx.paths import overlaps
from morris_mlx.registry import AdapterInfo, get_adapter

log = logging.getLogger("morris")


def check_out(out: str | Path, force: bool, source: Path) -> Path:
    """The output directory, refused when it exists (without --force) or overlaps the source."""
    out = Path(out).expanduser()
    if not out.name or out.name in (".", ".."):
        raise MorrisError(
            f"--out {out} is not a directory name; give a new folder such as exports/morris-peft"
        )
    if overlaps(source, out):
        raise MorrisError(f"--out {out} overlaps the source {source}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise MorrisError(f"--out {out} exists and is a file; choose a folder name")
    if out.exists() and not force:
        raise MorrisError(f"{out} already exists; pass --force to replace it, or choose another --out")
    return out


def _require_base(info: AdapterInfo, model: str | None) -> Path:
    model_dir = locate_base_model(info, model)
    if model_dir is None:
        named = named_base(info)
        raise MorrisError(
            f"cannot find the base model of {info.path}"
            + (f" ({named} is not on this machine)" if named else " (it names none)")
            + "; pass it with --model"
        )
    return model_dir


def export_peft(adapter: str | Path, out: str | Path, model: str | None = None, force: bool = False) -> Path:
    """MLX adapter -> PEFT directory that `PeftModel.from_pretrained(base, out)` loads as is."""
    info = get_adapter(str(adapter))
    if info.format != "mlx":
        raise MorrisError(
            f"{info.path} is already a PEFT adapter; copy it, or import it with `morris import peft`"
        )
    out = check_out(out, force, info.path)
    model_dir = locate_base_model(info, model)
    if model_dir is not None:
        layout = model_layout(model_dir)
        lora, layers, _ = read_checked(info.path, info.format, layout)
    else:
        # Without the base the mapping is still exact; only the fit cannot be checked.
        log.warning("base model of %s not found; exporting without checking shapes (pass --model)", info.name)
        lora, num_layers = read_mlx_adapter(info.path)
        layers = layers_to_transform(lora, num_layers, None)
    base_name = str(model_dir.resolve()) if model_dir is not None else named_base(info)
    with atomic_dir(out, overwrite=force) as tmp:
        write_peft_adapter(lora, tmp, layers, base_name)
        write_adapter_provenance(tmp, out.name, info, "peft", "export peft", model_dir, named_base(info))
        # The export is for other stacks: refuse one that vLLM or TGI would not load.
        if problems := server_problems(tmp, model_dir):
            raise MorrisError(f"the PEFT export would not load in vLLM/TGI: {'; '.join(problems)}")
    return out


def import_peft(
    peft_path: str | Path, out: str | Path, model: str | None = None, force: bool = False
) -> Path:
    """PEFT LoRA directory -> MLX adapter that `mlx_lm generate --adapter-path out` loads as is."""
    info = get_adapter(str(peft_path))
    if info.format != "peft":
        raise MorrisError(f"{info.path} is already an MLX adapter; use it directly with --adapter-path")
    out = check_out(out, force, info.path)
    model_dir = locate_base_model(info, model)
    fallback = model_dir is None
    if model_dir is None:
        from morris_mlx.models.resolve import resolve_model

        model_dir = resolve_model(ModelConfig())
        log.info("the adapter's base is not on this machine; checking it against %s", model_dir)
    layout = model_layout(model_dir)
    try:
        lora, _, num_layers = read_checked(info.path, info.format, layout)
    except MorrisError as exc:
        if fallback and named_base(info) and "another base model" in str(exc):
            raise MorrisError(
                f"{exc} (the adapter names {named_base(info)}, which is not on this machine; "
                "convert it with `morris convert` first)"
            ) from None
        raise
    with atomic_dir(out, overwrite=force) as tmp:
        write_mlx_adapter(lora, tmp, layout.num_layers, num_layers, str(model_dir.resolve()))
        write_adapter_provenance(tmp, out.name, info, "mlx", "import peft", model_dir, named_base(info))
    return out


def _mlx_adapter_dir(info: AdapterInfo, layout: ModelLayout, scratch: Path) -> Path:
    """The adapter as an mlx-lm directory: itself, or a PEFT one converted into `scratch`."""
    lora, _, num_layers = read_checked(info.path, info.format, layout)
    if info.format == "mlx":
        return info.path
    target = scratch / "mlx_adapter"
    target.mkdir()
    write_mlx_adapter(lora, target, layout.num_layers, num_layers, str(layout.model_dir))
    return target


def export_fused(adapter: str | Path, out: str | Path, model: str | None = None, force: bool = False) -> Path:
    """Base + adapter merged into a Hugging Face model directory (de-quantized if the base was not)."""
    from morris_mlx.export.fused import fuse_to_hf

    info = get_adapter(str(adapter))
    out = check_out(out, force, info.path)
    model_dir = _require_base(info, model)
    layout = model_layout(model_dir)
    read_checked(info.path, info.format, layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=".morris-export-", dir=out.parent) as scratch,
        atomic_dir(out, overwrite=force) as tmp,
    ):
        facts = fuse_to_hf(model_dir, _mlx_adapter_dir(info, layout, Path(scratch)), tmp)
        write_export_record(tmp, "fused", info, model_dir, facts)
    return out


def export_gguf(
    adapter: str | Path,
    out: str | Path,
    model: str | None = None,
    force: bool = False,
    outtype: str = "f16",
) -> Path:
    """Base + adapter as one GGUF file (tokenizer and chat template inside) in `out`; returns the file."""
    from morris_mlx.export.fused import fuse_to_hf
    from morris_mlx.export.gguf_export import OUTTYPES, check_gguf_config, write_gguf
    from morris_mlx.export.gguf_vocab import read_vocab

    if outtype not in OUTTYPES:
        raise MorrisError(f"--outtype {outtype!r} is not offered; choose one of {', '.join(OUTTYPES)}")
    info = get_adapter(str(adapter))
    out = check_out(out, force, info.path)
    model_dir = _require_base(info, model)
    layout = model_layout(model_dir)
    check_gguf_config(layout.config, str(model_dir))
    read_vocab(model_dir, int(layout.config["vocab_size"]))  # refuse an unmappable tokenizer before fusing
    read_checked(info.path, info.format, layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    filename = f"{info.name}-{outtype}.gguf"
    with (
        tempfile.TemporaryDirectory(prefix=".morris-export-", dir=out.parent) as scratch,
        atomic_dir(out, overwrite=force) as tmp,
    ):
        fused_dir = Path(scratch) / "fused"
        fused_dir.mkdir()
        facts = fuse_to_hf(model_dir, _mlx_adapter_dir(info, layout, Path(scratch)), fused_dir)
        summary = write_gguf(fused_dir, tmp / filename, outtype, name=info.name)
        write_export_record(tmp, "gguf", info, model_dir, {**facts, **summary, "file": filename})
    return out / filename
