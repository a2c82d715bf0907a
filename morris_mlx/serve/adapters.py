"""The adapters a server offers: named on the command line, resolved through the registry, checked
against the base model before the first request so that a bad one stops the start, not a request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from morris_mlx.errors import MorrisError
from morris_mlx.registry import AdapterInfo, check_name, get_adapter

if TYPE_CHECKING:
    from morris_mlx.backends.mlx_generate import MLXGenerator

log = logging.getLogger("morris")


@dataclass(frozen=True)
class ServedAdapter:
    name: str  # what clients put in the request's "model" field
    source: Path  # the directory the user named (MLX or PEFT)
    mlx_path: Path  # an mlx-lm adapter directory: `source` itself, or its import into the work dir
    format: str  # "mlx" or "peft", as found


def parse_adapter_spec(spec: str) -> tuple[str | None, str]:
    """`NAME=DIR_OR_REGISTRY_NAME` or a bare `DIR_OR_REGISTRY_NAME` (served under the adapter's own name)."""
    name, sep, ref = spec.partition("=")
    if not sep:
        return None, spec
    if not name or not ref:
        raise MorrisError(f"--adapter {spec!r} is incomplete; write NAME=DIR or a registry name")
    return check_name(name), ref


def resolve_adapters(specs: list[str], reserved: set[str]) -> list[tuple[str, AdapterInfo]]:
    """(served name, registry info) per --adapter, with names unique and clear of the base's names."""
    resolved: list[tuple[str, AdapterInfo]] = []
    for spec in specs:
        name, ref = parse_adapter_spec(spec)
        info = get_adapter(ref)
        name = name or info.name
        if name in reserved:
            raise MorrisError(
                f"adapter name {name!r} clashes with a name of the base model; serve it as OTHER={ref}"
            )
        if any(name == seen for seen, _ in resolved):
            raise MorrisError(f"two adapters are served as {name!r}; give each its own NAME=DIR")
        resolved.append((name, info))
    return resolved


def prepare_adapters(
    resolved: list[tuple[str, AdapterInfo]],
    generator: MLXGenerator,
    work_dir: Path,
) -> dict[str, ServedAdapter]:
    """Convert PEFT adapters into `work_dir` once, then load each on the base to prove it fits."""
    from morris_mlx.export.actions import import_peft

    served: dict[str, ServedAdapter] = {}
    for name, info in resolved:
        mlx_path = info.path
        if info.format == "peft":
            # Converted once here rather than on every switch (load_mlx_adapter would redo it each time).
            mlx_path = import_peft(info.path, work_dir / name, model=str(generator.model_dir))
        try:
            generator.set_adapter(mlx_path, fuse=False)
        except MorrisError as exc:
            raise MorrisError(f"adapter {name!r}: {exc}") from None
        finally:
            generator.set_adapter(None)
        served[name] = ServedAdapter(name=name, source=info.path, mlx_path=mlx_path, format=info.format)
        log.info("adapter %s: %s (%s)", name, info.path, info.format)
    return served
