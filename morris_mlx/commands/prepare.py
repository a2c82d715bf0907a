"""`morris prepare`: clean, de-duplicate, cut and split articles into chat-format train/valid/test.jsonl."""

from __future__ import annotations

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.config import DataConfig, ModelConfig, field_help

EXAMPLE = """example:
  morris prepare                                   # the bundled corpus -> data/processed
  morris prepare --voice ledger --out data/ledger  # the second bundled voice
  morris prepare --raw data/raw/articles.jsonl --out data/mine --seed 7
  morris prepare --train-parts 512                 # also train on parts of each training article
  morris prepare --train-parts 512 --parts-per-article 1   # ... one part of each, picked at random
  python -m mlx_lm lora --model MODEL --train --data data/processed
"""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="morris prepare",
        description="Turn articles (the bundled corpus, or scraped JSONL with --raw) into chat-format "
        "train/valid/test.jsonl that mlx-lm and the torch backend read unchanged, plus stats.json. "
        "Cleans boilerplate, drops duplicates and non-prose, cuts long articles at paragraph boundaries "
        "to fit the model's tokenizer, and splits by article, the same way for the same seed.",
        epilog=EXAMPLE,
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file ([data] and [model] tables)")
    parser.add_argument("--raw", nargs="+", metavar="FILE", help=field_help(DataConfig, "raw"))
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        help="folder of Markdown articles to use instead of the bundled corpus",
    )
    parser.add_argument("--voice", metavar="NAME", help=field_help(DataConfig, "voice"))
    parser.add_argument("--out", metavar="DIR", help=field_help(DataConfig, "out"))
    parser.add_argument("--seed", type=int, metavar="N", help=field_help(DataConfig, "seed"))
    parser.add_argument("--fold", type=int, metavar="K", help=field_help(DataConfig, "fold"))
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="model folder whose tokenizer measures the examples (default: the configured "
        "base model if local, else the embedded default)",
    )
    parser.add_argument(
        "--max-seq-length", type=int, metavar="N", help=field_help(DataConfig, "max_seq_length")
    )
    parser.add_argument("--train-parts", type=int, metavar="N", help=field_help(DataConfig, "train_parts"))
    parser.add_argument(
        "--parts-per-article", type=int, metavar="N", help=field_help(DataConfig, "parts_per_article")
    )
    parser.add_argument(
        "--open-parts", action="store_true", default=None, help=field_help(DataConfig, "open_parts")
    )
    parser.add_argument("--min-words", type=int, metavar="N", help=field_help(DataConfig, "min_words"))
    parser.add_argument(
        "--valid-fraction", type=float, metavar="F", help=field_help(DataConfig, "valid_fraction")
    )
    parser.add_argument(
        "--test-fraction", type=float, metavar="F", help=field_help(DataConfig, "test_fraction")
    )
    parser.add_argument(
        "--no-general",
        action="store_true",
        help="drop the non-telecom examples (" + field_help(DataConfig, "include_general") + ")",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help=field_help(ModelConfig, "trust_remote_code"),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from morris_mlx.config import load_config
    from morris_mlx.dataset.prepare import prepare, write_prepared
    from morris_mlx.dataset.stats import format_summary

    cfg = load_config(
        args.config,
        {
            "data.raw": args.raw,
            "data.out": args.out,
            "data.voice": args.voice,
            "data.seed": args.seed,
            "data.fold": args.fold,
            "data.max_seq_length": args.max_seq_length,
            "data.train_parts": args.train_parts,
            "data.parts_per_article": args.parts_per_article,
            "data.open_parts": args.open_parts,
            "data.min_words": args.min_words,
            "data.valid_fraction": args.valid_fraction,
            "data.test_fraction": args.test_fraction,
            "data.include_general": False if args.no_general else None,
            "model.path": args.model,
            "model.trust_remote_code": args.trust_remote_code,
        },
    )
    prepared = prepare(cfg, corpus_dir=args.corpus)
    out = write_prepared(prepared, cfg.data.out, cfg)
    print(format_summary(prepared.stats, str(out)))
    return 0
