"""What every export/import output records about where it came from.

Adapter outputs get a morris_adapter.json (the registry reads it) carrying the source's history plus a
`source` entry; fused models and GGUF files get a morris_export.json. The source's morris_config.json is
copied as is, so the settings that made the weights travel with them.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morris_mlx import __version__
from morris_mlx.atomic import file_digests, sha256_file, write_json
from morris_mlx.config import CONFIG_FILENAME
from morris_mlx.files import ADAPTER_WEIGHTS, MLX_WEIGHTS, PEFT_WEIGHTS, PROVENANCE_FILENAME
from morris_mlx.registry import AdapterInfo

EXPORT_RECORD = "morris_export.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def source_entry(info: AdapterInfo, action: str) -> dict[str, Any]:
    weights = info.path / (MLX_WEIGHTS if info.format == "mlx" else PEFT_WEIGHTS)
    return {
        "action": action,
        "path": str(info.path.resolve()),
        "name": info.name,
        "format": info.format,
        "weights_sha256": sha256_file(weights),
        "morris_version": __version__,
        "time": _now(),
    }


def base_entry(info: AdapterInfo, model_dir: Path | None, named: str | None) -> dict[str, Any] | None:
    """The source's base-model record, else one built from the model found now, else the named base."""
    base = info.provenance.get("base_model")
    if isinstance(base, dict):
        return base
    if model_dir is not None:
        from morris_mlx.models.fingerprint import fingerprint_model

        return {
            "path": str(model_dir.resolve()),
            "name": model_dir.name,
            "fingerprint": fingerprint_model(model_dir),
        }
    return {"path": None, "name": named} if named else None


def write_adapter_provenance(
    out_dir: Path,
    final_name: str,
    info: AdapterInfo,
    adapter_format: str,
    action: str,
    model_dir: Path | None,
    named_base: str | None,
) -> None:
    """morris_adapter.json for an exported/imported adapter, keeping the source's data, config, metrics."""
    # "files" describes the source's own files; the output's are recorded afresh below.
    skip = ("name", "format", "created", "source", "files")
    keep = {k: v for k, v in info.provenance.items() if k not in skip}
    record = {
        **keep,
        "name": final_name,
        "format": adapter_format,
        "backend": info.backend,
        "created": _now(),
        "base_model": base_entry(info, model_dir, named_base),
        "source": source_entry(info, action),
    }
    if info.provenance.get("source"):
        record["source"]["previous"] = info.provenance["source"]
    record["files"] = file_digests(out_dir, [ADAPTER_WEIGHTS[adapter_format]])
    write_json(out_dir / PROVENANCE_FILENAME, record)
    copy_config(info.path, out_dir)


def write_export_record(
    out_dir: Path, kind: str, info: AdapterInfo, model_dir: Path, extra: dict[str, Any] | None = None
) -> None:
    """morris_export.json beside a fused model or GGUF file."""
    write_json(
        out_dir / EXPORT_RECORD,
        {
            "kind": kind,
            "created": _now(),
            "adapter": source_entry(info, f"export {kind}"),
            "adapter_provenance": info.provenance or None,
            "base_model": base_entry(info, model_dir, None),
            "base_model_dir": str(model_dir.resolve()),
            **(extra or {}),
        },
    )
    copy_config(info.path, out_dir)


def copy_config(source_dir: Path, out_dir: Path) -> None:
    src = source_dir / CONFIG_FILENAME
    if src.is_file():
        shutil.copyfile(src, out_dir / CONFIG_FILENAME)
