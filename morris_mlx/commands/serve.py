"""`morris serve`: an OpenAI-compatible HTTP server (mlx-lm's) for a base model and its adapters."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from morris_mlx.commands.common import (
    MODEL_MAPPING,
    ArgumentParser,
    adapter_base_model,
    add_config_arg,
    config_from_args,
    positive_int,
)
from morris_mlx.config import ModelConfig, field_help

log = logging.getLogger("morris")

API_KEY_ENV = "MORRIS_API_KEY"

EXAMPLE = f"""examples:
  morris serve --adapter morris=adapters/morris          # base + one adapter on 127.0.0.1:8080
  morris serve --adapter adapters/morris --adapter terse=adapters/terse-peft --max-tokens 300
  {API_KEY_ENV}=s3cret morris serve --host 0.0.0.0 --adapter morris   # other machines need the key

  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "morris", "messages": [{{"role": "user", "content": "Write about 5G"}}]}}'

Add "morris_review": true to a request to get, in a "morris_review" field of the reply (of the last
chunk when streaming), what to check in the generated text before publishing it (`morris review --json`).

The request's "model" picks the base (its id in GET /v1/models, or "base") or an adapter by its NAME.
Requests bring their own messages: no system prompt is added. For the writer's voice send what
morris_mlx.prompts.article_messages(topic) builds. An API key on the command line shows in `ps`;
prefer the {API_KEY_ENV} environment variable.
"""

MAPPING = {
    "model": MODEL_MAPPING["model"],
    "trust_remote_code": "model.trust_remote_code",
    "max_tokens": "generate.max_tokens",
    "temp": "generate.temp",
    "top_p": "generate.top_p",
    "top_k": "generate.top_k",
    "min_p": "generate.min_p",
    "repetition_penalty": "generate.repetition_penalty",
    "fuse": "generate.fuse",
}


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0-65535 (0 picks a free port)")
    return value


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris serve",
        description="Serve a base model and any number of LoRA adapters over an OpenAI-compatible HTTP API "
        "(chat completions, streaming, /v1/models), built on mlx-lm's server with continuous batching.",
        epilog=EXAMPLE,
    )
    add_config_arg(p)
    p.add_argument(
        "--model",
        metavar="DIR",
        help="base model directory (default: the adapters' base, "
        "else the configured base, else the embedded default)",
    )
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve an adapter (MLX or PEFT folder, or a name from `morris adapters list`) as model NAME; "
        "a bare DIR or registry name is served under its own name; repeat for more",
    )
    p.add_argument(
        "--host", default="127.0.0.1", metavar="ADDR", help="address to listen on (default: 127.0.0.1)"
    )
    p.add_argument(
        "--port", type=port_number, default=8080, metavar="N", help="port (default: 8080; 0 picks a free one)"
    )
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"require `Authorization: Bearer KEY` on every request but /health (default: ${API_KEY_ENV}); "
        "needed to listen beyond localhost",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed by CORS, e.g. http://localhost:3000 (default: none)",
    )
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        metavar="N",
        help="default completion length when a request sets none",
    )
    p.add_argument("--temp", type=float, metavar="T", help="default temperature; requests may override")
    p.add_argument("--top-p", type=float, metavar="P", help="default nucleus threshold")
    p.add_argument("--top-k", type=int, metavar="K", help="default top-k (0 disables)")
    p.add_argument("--min-p", type=float, metavar="P", help="default min-p (0 disables)")
    p.add_argument(
        "--repetition-penalty", type=float, metavar="R", help="default repetition penalty (1.0 disables)"
    )
    p.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        default=None,
        help="keep adapters apart from the weights: instant switches, slower decoding (default: fused)",
    )
    p.add_argument(
        "--decode-concurrency",
        type=positive_int,
        default=16,
        metavar="N",
        help="requests decoded together (default: 16)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=1 << 20,
        metavar="N",
        help="largest request body (default: 1 MiB)",
    )
    p.add_argument(
        "--terms",
        metavar="FILE",
        help='do-not-publish list (TOML) flagged by requested reviews ("morris_review": true)',
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help=field_help(ModelConfig, "trust_remote_code"),
    )
    return p


def _require_mlx() -> None:
    from morris_mlx.errors import MorrisError

    try:
        import mlx_lm.server  # noqa: F401
    except ImportError as exc:
        raise MorrisError(
            f"`morris serve` runs on MLX and it is not usable here ({exc}); "
            "install it with `pip install mlx-lm` (on Linux also `mlx[cpu]` or `mlx[cuda13]`)"
        ) from None


# Both stop the server, whatever this process inherited: a shell starts background jobs with SIGINT
# ignored, and Python then leaves it ignored, so `morris serve &` would not stop on `kill -INT`.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_signals(handler: Any) -> dict[int, Any]:
    """Install `handler` for both stop signals; returns the previous handlers."""
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, MAPPING)
    terms = None
    if args.terms:
        from morris_mlx.review.terms import load_terms

        load_terms(args.terms)  # a bad list stops the start, not the first reviewed request
        terms = Path(args.terms).expanduser()
    _require_mlx()
    from morris_mlx.mlx_blas import warn_if_slow

    warn_if_slow()

    from morris_mlx.models.resolve import resolve_model
    from morris_mlx.registry import get_adapter
    from morris_mlx.serve.adapters import parse_adapter_spec
    from morris_mlx.serve.models import Sampling
    from morris_mlx.serve.security import check_bind
    from morris_mlx.serve.server import MorrisServer, ServeOptions

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    check_bind(args.host, api_key)
    if cfg.model.path is None and args.adapter:
        base = adapter_base_model(get_adapter(parse_adapter_spec(args.adapter[0])[1]).path)
        cfg.model.path = str(base) if base is not None else None
    model_dir = resolve_model(cfg.model)
    gen = cfg.generate
    options = ServeOptions(
        host=args.host,
        port=args.port,
        api_key=api_key,
        max_body_bytes=args.max_body_bytes,
        allowed_origins=tuple(args.allow_origin),
        fuse=gen.fuse,
        decode_concurrency=args.decode_concurrency,
        trust_remote_code=cfg.model.trust_remote_code,
        review_terms=terms,
        sampling=Sampling(
            max_tokens=gen.max_tokens,
            temp=gen.temp,
            top_p=gen.top_p,
            top_k=gen.top_k,
            min_p=gen.min_p,
            repetition_penalty=gen.repetition_penalty,
        ),
    )
    log.info("loading %s%s", model_dir, f" and {len(args.adapter)} adapter(s)" if args.adapter else "")
    server = MorrisServer(Path(model_dir), args.adapter, options)
    in_main = threading.current_thread() is threading.main_thread()
    previous = _stop_signals(_raise_interrupt) if in_main else {}
    try:
        log.info("models: %s", ", ".join(server.model_names))
        log.info("serving on %s%s (Ctrl-C stops)", server.url, " with an API key" if api_key else "")
        print(server.url, flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        if in_main:
            _stop_signals(signal.SIG_IGN)  # a second signal must not cut the clean-up short
        server.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
