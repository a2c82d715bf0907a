"""`morris` entry point.

Each subcommand lives in its own module under `morris_mlx.commands` with a `main(argv) -> int`, the
mlx-lm way. This file only knows their names and one-line summaries, so `morris --help` imports
neither mlx nor torch; the module is imported when its command runs.
"""

from __future__ import annotations

import importlib
import logging
import sys

from morris_mlx import __version__
from morris_mlx.errors import MorrisError, explain, one_line

COMMANDS: dict[str, str] = {
    "setup-default": "make the embedded default model ready offline; prints its directory last",
    "scrape": "collect a writer's public articles into data/raw/*.jsonl",
    "prepare": "clean, split and chat-format articles into train/valid/test.jsonl",
    "convert": "convert a Hugging Face model to MLX (optionally quantized)",
    "train": "LoRA fine-tune a model on prepared data (or on preference pairs: --objective dpo|orpo)",
    "pairs": "preference pairs from prepared data: the writer's article chosen, the model's rejected",
    "generate": "write an article on a topic, streamed to stdout",
    "review": "list what to check in a generated article before publishing it",
    "eval": "measure how far an adapter moved the model toward the writer's voice",
    "export": "export an adapter: peft | fused | gguf",
    "import": "import an adapter: peft",
    "adapters": "list, show, rename or delete trained adapters",
    "bench": "measure training and generation speed and memory (JSON out)",
    "tui": "the Textual terminal UI",
    "serve": "OpenAI-compatible HTTP server on localhost",
}

USAGE = f"""usage: morris [--verbose | --quiet] [--version] COMMAND [ARGS...]

Teach a chat model to write in one writer's voice.

commands:
{chr(10).join(f"  {name:<15} {summary}" for name, summary in COMMANDS.items())}

Run `morris COMMAND --help` for a command's options and an example.

example:
  morris setup-default && morris prepare && morris train --iters 50 && morris generate "5G"
"""


def _module_name(command: str) -> str:
    return "morris_mlx.commands." + command.replace("-", "_")


def main(argv: list[str] | None = None) -> int:
    """Run the `morris` CLI; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = quiet = False
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-h", "--help"):
            print(USAGE)
            return 0
        if flag == "--version":
            print(f"morris {__version__}")
            return 0
        if flag in ("-v", "--verbose"):
            verbose = True
        elif flag in ("-q", "--quiet"):
            quiet = True
        else:
            print(f"morris: error: unknown option {flag!r}; see `morris --help`", file=sys.stderr)
            return 2
    if not args:
        print(USAGE)
        return 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(
            f"morris: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2

    from morris_mlx.log import setup_logging

    setup_logging(verbose=verbose, quiet=quiet)
    if argv is None:  # a real process: it may restart itself with a fast BLAS for MLX (mlx_blas.py)
        from morris_mlx.mlx_blas import reexec_with_fast_blas

        reexec_with_fast_blas(command, rest)
    try:
        module = importlib.import_module(_module_name(command))
        return int(module.main(rest) or 0)
    except MorrisError as exc:
        if verbose:
            logging.getLogger("morris").exception("error")
        print(f"morris {command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "; continue with `morris train --adapter-path DIR --resume`" if command == "train" else ""
        print(f"morris {command}: error: interrupted; nothing half-written was kept{again}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: one line, never a bare traceback
        # The log file always gets the traceback; the console only with --verbose.
        logging.getLogger("morris").debug("morris %s failed", command, exc_info=True)
        hint = explain(exc)
        if hint is None:
            message = one_line(str(exc)) or "no message"
            hint = f"{type(exc).__name__}: {message}"
            if not verbose:
                hint += " (run with --verbose for the traceback)"
        print(f"morris {command}: error: {hint}", file=sys.stderr)
        return 2
