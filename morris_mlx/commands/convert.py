"""`morris convert`: a hub id or local Hugging Face directory to MLX, optionally quantized (QLoRA)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris convert --hf-path HuggingFaceH4/zephyr-7b-beta -q --q-bits 4     # 7B for QLoRA on an 8 GB Mac
  morris convert --hf-path ~/models/my-hf-model --mlx-path ~/models/my-mlx --dtype bfloat16
  morris convert --hf-path ~/models/old-bin-model --allow-pickle   # pytorch_model.bin only: re-saved first
"""

HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris convert",
        description="Convert a Hugging Face model to MLX with mlx-lm's converter. Records the source and its "
        "fingerprint beside the result; refuses to overwrite a finished model unless --force.",
        epilog=EXAMPLE,
    )
    p.add_argument("--hf-path", default="HuggingFaceH4/zephyr-7b-beta", help="hub id or local HF directory")
    p.add_argument("--mlx-path", metavar="DIR", help="output (default: MORRIS_HOME/models/<name>[-4bit])")
    p.add_argument("-q", "--quantize", action="store_true", help="quantize (for QLoRA)")
    p.add_argument("--q-bits", type=int, choices=[4, 8], default=4)
    p.add_argument("--q-group-size", type=int, choices=[32, 64, 128], default=64)
    p.add_argument(
        "--dtype", choices=["float16", "bfloat16", "float32"], help="weights' dtype (default bf16)"
    )
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--force", action="store_true", help="replace an existing converted model")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle weights (pytorch_model.bin): read as weights only and re-saved as safetensors "
        "before converting (needs the torch extra). Off: pickle files can run code when loaded",
    )
    return p


def fetch_source(hf_path: str, revision: str | None, allow_pickle: bool = False) -> tuple[Path, str]:
    """A local directory for `hf_path`, downloading through huggingface-hub when it is a hub id."""
    local = Path(hf_path).expanduser()
    if local.is_dir():
        return local, "local"
    if local.suffix or hf_path.startswith((".", "/", "~")) or hf_path.count("/") != 1:
        raise MorrisError(f"{hf_path} is neither a local directory nor a hub id like org/name")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        patterns = [*HUB_PATTERNS, "*.bin"] if allow_pickle else HUB_PATTERNS
        path = snapshot_download(hf_path, revision=revision, allow_patterns=patterns)
    except RepositoryNotFoundError:
        raise MorrisError(
            f"hub repository {hf_path} does not exist or needs a token (huggingface-cli login)"
        ) from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise MorrisError(
            f"cannot download {hf_path}: the hub is unreachable ({type(exc).__name__}); download it on a "
            "connected machine and pass its folder to --hf-path, or use `morris setup-default` offline"
        ) from None
    return Path(path), "hub"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx.models.default import MANIFEST
    from morris_mlx.paths import models_dir

    name = (
        Path(args.hf_path).name
        if Path(args.hf_path).expanduser().is_dir()
        else args.hf_path.replace("/", "--")
    )
    suffix = f"-{args.q_bits}bit" if args.quantize else ""
    out = Path(args.mlx_path).expanduser() if args.mlx_path else models_dir() / f"{name}{suffix}"
    if (out / MANIFEST).is_file() and not args.force:
        raise MorrisError(f"{out} already holds a converted model; pass --force to replace it")
    if out.exists() and not (out / MANIFEST).is_file() and any(out.iterdir()) and not args.force:
        raise MorrisError(f"{out} exists and is not a model we converted; choose another --mlx-path")

    source, origin = fetch_source(args.hf_path, args.revision, args.allow_pickle)
    with contextlib.ExitStack() as stack:
        source, resaved = safetensors_source(source, args, stack)
        _convert(args, source, origin, out, resaved)
    print(out)
    return 0


def safetensors_source(
    source: Path, args: argparse.Namespace, stack: contextlib.ExitStack
) -> tuple[Path, bool]:
    """`source`, or with --allow-pickle and pickle weights only, a temporary safetensors copy of it."""
    from morris_mlx.models.resolve import check_model_dir
    from morris_mlx.pickled import pickled_files, resave_model

    if args.allow_pickle and not any(source.glob("*.safetensors")) and pickled_files(source):
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="morris-resave-")))
        return check_model_dir(resave_model(source, scratch / source.name, args.trust_remote_code)), True
    return check_model_dir(source), False


def _convert(args: argparse.Namespace, source: Path, origin: str, out: Path, resaved: bool) -> None:
    from mlx_lm.convert import convert

    from morris_mlx.atomic import atomic_dir, file_digests, write_json
    from morris_mlx.models.default import MANIFEST, fix_rope_config
    from morris_mlx.training import fingerprint_model

    with atomic_dir(out, overwrite=True) as tmp:
        staging = tmp / "model"
        try:
            convert(
                str(source),
                str(staging),
                quantize=args.quantize,
                q_bits=args.q_bits if args.quantize else None,
                q_group_size=args.q_group_size if args.quantize else None,
                dtype=args.dtype,
                trust_remote_code=args.trust_remote_code,
            )
        except (ValueError, KeyError) as exc:
            raise MorrisError(f"mlx-lm cannot convert {args.hf_path}: {exc}") from None
        for item in staging.iterdir():
            shutil.move(str(item), tmp / item.name)
        staging.rmdir()
        fix_rope_config(tmp)
        files = file_digests(tmp)  # check_model_dir compares sizes on every load
        write_json(
            tmp / MANIFEST,
            {
                "source": args.hf_path,
                "origin": origin,
                "revision": args.revision,
                "source_fingerprint": fingerprint_model(source),
                "quantized": args.quantize,
                "q_bits": args.q_bits if args.quantize else None,
                "dtype": args.dtype,
                "resaved_from_pickle": resaved,
                "files": files,
            },
        )
