"""Which base model an adapter belongs to: --model, else the one its provenance names, else the one its
own config names (when that is on this machine)."""

from __future__ import annotations

import logging
from pathlib import Path

from morris_mlx.models.resolve import check_model_dir, local_base
from morris_mlx.registry import AdapterInfo

log = logging.getLogger("morris")


def named_base(info: AdapterInfo) -> str | None:
    """The base model an adapter names: provenance path, else its config's model / base_model_name_or_path."""
    base = info.provenance.get("base_model")
    if isinstance(base, dict) and base.get("path"):
        return str(base["path"])
    return info.config.get("model") or info.config.get("base_model_name_or_path") or None


def locate_base_model(info: AdapterInfo, explicit: str | None) -> Path | None:
    """The base model directory for `info`, or None when it names none that is on this machine."""
    if explicit:
        model_dir = check_model_dir(Path(explicit).expanduser())
        _warn_if_other(info, model_dir)
        return model_dir
    candidates = []
    base = info.provenance.get("base_model")
    if isinstance(base, dict):
        candidates += [base.get("path"), base.get("name")]
    candidates += [info.config.get("model"), info.config.get("base_model_name_or_path")]
    for candidate in candidates:
        if not candidate:
            continue
        found = local_base(str(candidate))
        if found is not None and (found / "config.json").is_file():
            return check_model_dir(found)
    return None


def _warn_if_other(info: AdapterInfo, model_dir: Path) -> None:
    """A different fingerprint is only a warning: a re-saved copy of the same base differs too, and the
    shape check that follows catches a truly different model."""
    base = info.provenance.get("base_model")
    expected = base.get("fingerprint") if isinstance(base, dict) else None
    if not expected:
        return
    from morris_mlx.models.fingerprint import fingerprint_model

    try:
        actual = fingerprint_model(model_dir)
    except OSError:
        return
    if actual != expected:
        log.warning(
            "%s is not the model %s was trained on (%s); continuing because the shapes are checked",
            model_dir,
            info.name,
            base.get("path") or base.get("name"),
        )
