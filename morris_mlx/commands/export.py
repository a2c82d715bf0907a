"""`morris export peft|fused|gguf`: an adapter in a form other stacks load unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.files import ADAPTER_CONFIG

EXAMPLE = """examples:
  morris export peft  --adapter-path adapters/morris --out exports/morris-peft
      # then: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "exports/morris-peft")
  morris export fused --adapter-path adapters/morris --out exports/morris-fused   # a plain HF model
  morris export gguf  --adapter-path morris --out exports/morris-gguf --outtype q8_0
      # then: llama-cli -m exports/morris-gguf/morris-q8_0.gguf -cnv
"""

FORMATS = {
    "peft": "PEFT LoRA directory (adapter_model.safetensors + adapter_config.json)",
    "fused": "Hugging Face model directory with the adapter merged in (de-quantized if the base was)",
    "gguf": "one llama.cpp GGUF file with tokenizer and chat template",
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris export",
        description="Export a trained adapter (MLX or PEFT) so another stack loads it unchanged:\n"
        + "".join(f"  {name:<6} {what}\n" for name, what in FORMATS.items())
        + "Every input is checked against the base model first; nothing is written unless the whole "
        "export succeeds.",
        epilog=EXAMPLE,
    )
    p.add_argument("format", choices=list(FORMATS), help="what to export to")
    p.add_argument(
        "--adapter-path",
        required=True,
        metavar="DIR",
        help="adapter directory, or a name from `morris adapters list`",
    )
    p.add_argument(
        "--out", metavar="DIR", help="output directory (default: beside the adapter, named ADAPTER-FORMAT)"
    )
    p.add_argument(
        "--model", metavar="DIR", help="base model directory (default: the one the adapter was trained on)"
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--outtype", choices=["f16", "f32", "q8_0"], default="f16", help="GGUF weight type (default: f16)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx.export import actions
    from morris_mlx.registry import get_adapter

    info = get_adapter(args.adapter_path)
    out = Path(args.out) if args.out else info.path.with_name(f"{info.name}-{args.format}")
    if args.format == "peft":
        result = actions.export_peft(info.path, out, model=args.model, force=args.force)
    elif args.format == "fused":
        result = actions.export_fused(info.path, out, model=args.model, force=args.force)
    else:
        result = actions.export_gguf(info.path, out, model=args.model, force=args.force, outtype=args.outtype)
    print(result)
    if args.format == "peft":
        from morris_mlx.export.server_checks import vllm_max_lora_rank

        rank = json.loads((result / ADAPTER_CONFIG).read_text())["r"]
        print(
            f"serve with vLLM: vllm serve BASE --enable-lora --lora-modules {info.name}={result} "
            f"--max-lora-rank {vllm_max_lora_rank(rank)}\n"
            f"or TGI: text-generation-launcher --model-id BASE --lora-adapters {info.name}={result}"
        )
    return 0
