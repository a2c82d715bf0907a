"""`morris import peft`: a PEFT LoRA adapter as an MLX adapter (`mlx_lm generate --adapter-path` loads it).

The module is named after the command; `import` is a Python keyword, so the CLI loads it with
importlib.import_module("morris_mlx.commands.import").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.files import PEFT_WEIGHTS

EXAMPLE = """examples:
  morris import peft --peft-path ~/peft/zephyr-morris --out adapters/zephyr-morris
  morris generate "5G" --adapter-path adapters/zephyr-morris
  mlx_lm generate --model BASE_DIR --adapter-path adapters/zephyr-morris --prompt "5G"
  morris import peft --peft-path ~/peft/old-adapter --allow-pickle    # adapter_model.bin only
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris import",
        description="Import a PEFT LoRA adapter (adapter_model.safetensors + adapter_config.json) as an "
        "MLX adapter. It is checked against the base model first: another base's adapter, DoRA, rsLoRA "
        "or unsupported target modules are refused and nothing is written.",
        epilog=EXAMPLE,
    )
    p.add_argument("format", choices=["peft"], help="what to import from")
    p.add_argument("--peft-path", required=True, metavar="DIR", help="the PEFT adapter directory")
    p.add_argument(
        "--out", metavar="DIR", help="output directory (default: the adapters folder, named after the source)"
    )
    p.add_argument(
        "--model",
        metavar="DIR",
        help="base model to check against (default: the adapter's base_model_name_or_path when on this "
        "machine, else the configured base or the embedded default)",
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept a pickled adapter_model.bin: read as weights only and re-saved as safetensors (needs "
        "the torch extra). Off: pickle files can run code when loaded",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx.export.actions import import_peft
    from morris_mlx.paths import adapters_dir
    from morris_mlx.pickled import resave_peft
    from morris_mlx.registry import check_name, get_adapter

    source = Path(args.peft_path).expanduser()
    with tempfile.TemporaryDirectory(prefix="morris-resave-") as scratch:
        if args.allow_pickle and is_pickled_peft(source):
            info = get_adapter(str(resave_peft(source, Path(scratch) / source.name)))
        else:
            info = get_adapter(args.peft_path)
        out = Path(args.out) if args.out else adapters_dir() / check_name(f"{info.name}-mlx")
        print(import_peft(info.path, out, model=args.model, force=args.force))
    return 0


def is_pickled_peft(folder: Path) -> bool:
    from morris_mlx.pickled import PEFT_PICKLE

    return (folder / PEFT_PICKLE).is_file() and not (folder / PEFT_WEIGHTS).is_file()
