"""`morris convert`: a hub id or local Hugging Face directory to MLX, optionally quantized (QLoRA)."""

from __future__ import annotations

import logging

from morris_mlx.commands.common import ArgumentParser

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris convert --hf-path HuggingFaceH4/zephyr-7b-beta -q --q-bits 4     # 7B for QLoRA on an 8 GB Mac
  morris convert --hf-path ~/models/my-hf-model --mlx-path ~/models/my-mlx --dtype bfloat16
  morris convert --hf-path ~/models/old-bin-model --allow-pickle   # pytorch_model.bin only: re-saved first
"""

def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris convert",
        description="Convert a Hugging Face model to MLX with mlx-lm's converter. Records the source and its "
        "fingerprint beside the result; refuses to overwrite a finished model unless --force.",
        epilog=EXAMPLE,
    )
    p.add_argument("--hf-path", default="HuggingFaceH4/zephyr-7b-beta", help="hub id or local HF directory")
    p.add_argument("--mlx-path", metavar="DIR", help="output (default: MORRIS_HOME/models/<name>[-<bits>bit])")
    p.add_argument("-q", "--quantize", action="store_true", help="quantize (for QLoRA)")
    p.add_argument("--q-bits", type=int, choices=[4, 8], default=4)
    p.add_argument("--q-group-size", type=int, choices=[32, 64, 128], default=64)
    p.add_argument(
        "--dtype", choices=["float16", "bfloat16", "float32"], help="weights' dtype (default: the source model's)"
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx.models.convert import ConvertOptions, convert_model

    print(convert_model(ConvertOptions(**vars(args))))
    return 0
