"""`morris tui`: the Textual terminal UI (write, models and adapters, training, data)."""

from __future__ import annotations

import logging
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.config import ModelConfig, field_help

EXAMPLE = """keys:
  F1 write · F2 models · F3 train · F4 data · Ctrl+P command palette · Ctrl+Q quit
  write: Enter writes · Escape stops (keeps the partial article) · Ctrl+S saves · Ctrl+O copies
         Ctrl+R searches the history · Ctrl+L loads the model now
         Ctrl+T goes to the review checklist (what to check before publishing) · Space ticks an item

example:
  morris tui --adapter-path morris-r16
"""


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="morris tui",
        description="The terminal UI: write articles in the writer's voice, pick and compare adapters,\n"
        "start or watch training, and browse the prepared data. The model loads on first use.",
        epilog=EXAMPLE,
    )
    parser.add_argument("-c", "--config", help="TOML (or YAML) config file")
    parser.add_argument("--model", help=field_help(ModelConfig, "path"))
    parser.add_argument("--adapter-path", help="adapter to start with: a registry name or a directory")
    parser.add_argument(
        "--backend", choices=["auto", "mlx", "torch"], help=field_help(ModelConfig, "backend")
    )
    parser.add_argument("--data", help="prepared data folder shown on the data and train screens")
    parser.add_argument(
        "--terms",
        metavar="FILE",
        help="do-not-publish list (TOML) the review flags (default: MORRIS_HOME/review-terms.toml if it exists)",
    )
    args = parser.parse_args(argv)

    from morris_mlx.config import load_config
    from morris_mlx.models.resolve import check_model_dir

    cfg = load_config(
        args.config,
        {"model.path": args.model, "model.backend": args.backend, "data.out": args.data},
    )
    # Bad paths are refused here, before the screen is taken over, with the usual one-line error.
    model_dir = check_model_dir(Path(args.model).expanduser()) if args.model else None
    adapter_path = None
    if args.adapter_path:
        from morris_mlx.registry import get_adapter

        adapter_path = get_adapter(args.adapter_path).path

    terms = None
    if args.terms:
        from morris_mlx.review.terms import load_terms

        load_terms(args.terms)  # a bad list is refused here, not in a notification later
        terms = Path(args.terms).expanduser()

    from morris_mlx.tui.app import create_app

    app = create_app(model_dir=model_dir, adapter_path=adapter_path, config=cfg, review_terms=terms)
    # Console log lines would scribble over the screen; the log file under MORRIS_HOME keeps them all.
    logger = logging.getLogger("morris")
    consoles = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
    for handler in consoles:
        logger.removeHandler(handler)
    try:
        app.run()
    finally:
        for handler in consoles:
            logger.addHandler(handler)
    return int(app.return_code or 0)
