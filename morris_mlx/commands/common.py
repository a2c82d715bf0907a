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
