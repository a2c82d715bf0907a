"""The provenance file beside every adapter (morris_adapter.json): read it, and warn on a base mismatch."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from morris_mlx.atomic import verify_files
from morris_mlx.files import PROVENANCE_FILENAME
from morris_mlx.models.fingerprint import fingerprint_model

log = logging.getLogger("morris")


def read_provenance(adapter_dir: Path) -> dict[str, Any] | None:
    path = Path(adapter_dir) / PROVENANCE_FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def warn_if_other_base(adapter_path: Path, model_dir: Path) -> None:
    """Same-shaped bases load each other's adapters without error, so say so when provenance differs."""
    provenance = read_provenance(adapter_path) or {}
    expected = (provenance.get("base_model") or {}).get("fingerprint")
    if expected and expected != fingerprint_model(model_dir):
        log.warning(
            "adapter %s was trained on %s, not on %s; its output may be meaningless",
            adapter_path,
            provenance["base_model"].get("path"),
            model_dir,
        )


def trained_system_prompt(adapter_path: Path | None) -> str | None:
    """The system prompt the adapter was trained with, so generation asks in the voice it learned."""
    if adapter_path is None:
        return None
    prompt = (read_provenance(adapter_path) or {}).get("system_prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def verify_adapter(path: Path) -> None:
    """Check an adapter's files against the sizes and sha256 recorded when it was finished (in its
    morris_adapter.json); MorrisError naming the damaged file. Adapters without that record pass."""
    files = (read_provenance(Path(path)) or {}).get("files")
    if isinstance(files, dict) and files:
        verify_files(
            path, files, f"adapter {path}", "train it again, or copy it again from where it came from"
        )
