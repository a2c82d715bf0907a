"""`morris generate "TOPIC"`: write an article in the writer's voice, streamed to stdout."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from morris_mlx.commands.common import (
    MODEL_MAPPING,
    ArgumentParser,
    adapter_base_model,
    add_config_arg,
    add_model_args,
    config_from_args,
    positive_int,
)

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris generate "5G" --max-tokens 40                     # embedded default, no adapter
  morris generate "network slicing" --adapter-path adapters/morris --temp 0.7 --seed 1
  morris generate "open RAN" --adapter-path adapters/morris --time-limit 30 --no-fuse
"""

MAPPING = {
    **MODEL_MAPPING,
    "max_tokens": "generate.max_tokens",
    "temp": "generate.temp",
    "top_p": "generate.top_p",
    "top_k": "generate.top_k",
    "min_p": "generate.min_p",
    "repetition_penalty": "generate.repetition_penalty",
    "seed": "generate.seed",
    "time_limit": "generate.time_limit",
    "system_prompt": "generate.system_prompt",
    "fuse": "generate.fuse",
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris generate",
        description="Generate an article on TOPIC with the model's chat template and the voice's system "
        "prompt, streamed to stdout as it is written.",
        epilog=EXAMPLE,
    )
    p.add_argument("topic", help="what the article is about")
    add_config_arg(p)
    add_model_args(p)
    p.add_argument("--adapter-path", metavar="DIR", help="a trained adapter (MLX or PEFT directory)")
    p.add_argument("--max-tokens", type=positive_int)
    p.add_argument("--temp", type=float, help="temperature; 0 is greedy")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--seed", type=int, help="seed for reproducible sampling")
    p.add_argument("--time-limit", type=float, metavar="SECONDS", help="stop and keep the partial text")
    p.add_argument("--system-prompt", help="replace the voice's system prompt")
    p.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        default=None,
        help="keep the adapter apart from the weights (default: fused, faster)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, MAPPING)

    from morris_mlx.backends import get_backend
    from morris_mlx.errors import MorrisError
    from morris_mlx.models.resolve import resolve_model
    from morris_mlx.prompts import article_messages

    messages = article_messages(args.topic, cfg.generate.system_prompt)
    adapter_path = Path(args.adapter_path) if args.adapter_path else None
    if adapter_path is not None and not adapter_path.is_dir():
        raise MorrisError(
            f"adapter directory {adapter_path} does not exist; pass the folder `morris train` wrote"
        )
    if cfg.model.path is None and (base := adapter_base_model(adapter_path)) is not None:
        cfg.model.path = str(base)
    model_dir = resolve_model(cfg.model)
    backend = get_backend(cfg.model.backend, trust_remote_code=cfg.model.trust_remote_code)
    generator = backend.load(model_dir, adapter_path, fuse=cfg.generate.fuse)
    last = None
    for chunk in generator.stream(messages, cfg.generate):
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
        last = chunk
    sys.stdout.write("\n")
    if last is not None:
        note = {"time": " (time limit reached; partial text)", "length": " (max tokens reached)"}
        log.info(
            "%d tokens, %.1f tok/s, prompt %d tokens%s",
            last.generation_tokens,
            last.generation_tps,
            last.prompt_tokens,
            note.get(last.finish_reason or "", ""),
        )
    return 0
