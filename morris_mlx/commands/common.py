"""Argparse pieces shared by the commands: config flags mapped onto `section.key` overrides."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from morris_mlx.config import Config, load_config


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as our one-line error with exit code 2 (argparse's own code)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (CLI flags win over it)")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="DIR", help="model directory (default: configured base, else embedded)"
    )
    parser.add_argument("--backend", choices=["auto", "mlx", "torch"], help="backend (default: auto)")


def config_from_args(args: argparse.Namespace, mapping: dict[str, str]) -> Config:
    """Resolve the config: defaults < -c FILE < flags. `mapping` maps argparse dests to `section.key`."""
    overrides = {key: getattr(args, dest, None) for dest, key in mapping.items()}
    return load_config(getattr(args, "config", None), overrides)


MODEL_MAPPING = {"model": "model.path", "backend": "model.backend"}


def adapter_base_model(adapter_path: Path | None) -> Path | None:
    """The base model an adapter was trained on, when its provenance names one that is still on disk."""
    if adapter_path is None:
        return None
    from morris_mlx.adapter_format.provenance import read_provenance

    provenance = read_provenance(adapter_path) or {}
    path = (provenance.get("base_model") or {}).get("path")
    return Path(path) if path and Path(path).is_dir() else None


def load_generator(args: argparse.Namespace, cfg: Any) -> Any:
    """The backend's Generator for the model and adapter the flags (or the adapter's provenance) name."""
    from morris_mlx.backends import get_backend
    from morris_mlx.errors import MorrisError
    from morris_mlx.models.resolve import resolve_model

    adapter_path = Path(args.adapter_path) if args.adapter_path else None
    if adapter_path is not None and not adapter_path.is_dir():
        raise MorrisError(
            f"adapter directory {adapter_path} does not exist; pass the folder `morris train` wrote"
        )
    if cfg.model.path is None and (base := adapter_base_model(adapter_path)) is not None:
        cfg.model.path = str(base)
    model_dir = resolve_model(cfg.model)
    backend = get_backend(cfg.model.backend, trust_remote_code=cfg.model.trust_remote_code)
    return backend.load(model_dir, adapter_path, fuse=cfg.generate.fuse)
