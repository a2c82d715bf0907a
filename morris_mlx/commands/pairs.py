"""`morris pairs`: preference pairs for `morris train --objective dpo|orpo` from prepared data."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from morris_mlx.commands.common import (
    MODEL_MAPPING,
    ArgumentParser,
    add_config_arg,
    add_model_args,
    config_from_args,
    load_generator,
    positive_int,
)
from morris_mlx.errors import MorrisError
from morris_mlx.pairs import REJECTED_WORDS

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris prepare --out data/processed
  morris pairs --data data/processed --out data/pairs          # rejected: the base model's replies
  morris train --objective orpo --data data/pairs --adapter-path adapters/morris-orpo
  morris pairs --data data/processed --out data/pairs-sft --adapter-path adapters/morris   # rejected: an adapter's
  morris pairs --out data/pairs-plain --rejected-system "You are a wire reporter. Write plain, neutral news."
  morris pairs --out data/pairs-others --rejected-from data/raw/other-writers.jsonl   # no model needed
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris pairs",
        description="Build preference pairs without labelling: for every prepared train and valid example, the "
        "writer's article is chosen and the model's own reply to the same prompt (base model, or --adapter-path) "
        "is rejected. Written in TRL's conversational format (prompt/chosen/rejected), with pairs.json "
        "recording how; the folder appears whole or not at all.",
        epilog=EXAMPLE,
    )
    add_config_arg(p)
    add_model_args(p)
    p.add_argument(
        "--data", metavar="DIR", default="data/processed", help="prepared data (default: %(default)s)"
    )
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the pairs' train/valid.jsonl")
    p.add_argument("--adapter-path", metavar="DIR", help="write the rejected replies with this adapter")
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=256,
        help="length of each rejected reply (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=positive_int, default=4, help="replies decoded together (default: %(default)s)"
    )
    p.add_argument(
        "--rejected-system",
        metavar="TEXT",
        help="system prompt the rejected replies are written under (default: each example's own, the "
        "writer's); e.g. a plain newswire voice, so the preference is the writer over other writing on the "
        "same topic. The pairs keep the writer's prompt",
    )
    p.add_argument(
        "--rejected-from",
        metavar="PATH",
        help="other writers' articles, as `morris eval --contrast` takes them: each rejected reply is the "
        "opening of the one closest to the writer's article in words (the same subject, another voice), "
        "instead of a model's reply; no model is loaded",
    )
    p.add_argument(
        "--rejected-words",
        type=positive_int,
        metavar="N",
        help="with --rejected-from: how much of the other writer's opening is rejected, in words (default: "
        f"{REJECTED_WORDS}); shorter openings make each preference step cheaper",
    )
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    from morris_mlx.dataset.jsonl import load_split
    from morris_mlx.dataset.pairs import PAIR_SPLITS
    from morris_mlx.pairs import PairSettings, check_out_dir, make_pairs, make_pairs_from_others
    from morris_mlx.prompts import check_text

    args = build_parser().parse_args(sys.argv[2:] if argv is None else argv)
    cfg = config_from_args(args, MODEL_MAPPING)
    data_dir, out_dir = Path(args.data), Path(args.out)
    if not data_dir.is_dir():
        raise MorrisError(
            f"data directory {data_dir} does not exist; run `morris prepare --out {data_dir}` first"
        )
    check_out_dir(data_dir, out_dir, args.force)
    rejected_system = None
    if args.rejected_system is not None:
        rejected_system = check_text(args.rejected_system, "--rejected-system").strip()
        if not rejected_system:
            raise MorrisError(
                "--rejected-system is empty; pass the system prompt for the rejected replies, or leave it out"
            )
    if args.rejected_words is not None and args.rejected_from is None:
        raise MorrisError(
            "--rejected-words sizes other writers' openings and needs --rejected-from; "
            "a model's rejected replies are sized by --max-tokens"
        )
    for split in PAIR_SPLITS:  # a broken file is reported before minutes of loading a model
        load_split(data_dir, split)
    if args.rejected_from is not None:
        chosen = [flag for flag, value in (("--adapter-path", args.adapter_path),
                                           ("--rejected-system", args.rejected_system)) if value is not None]
        if chosen:
            raise MorrisError(f"--rejected-from takes the rejected replies from other writers; leave out {chosen[0]}")
        counts = make_pairs_from_others(data_dir, out_dir, Path(args.rejected_from), overwrite=args.force,
                                        words=args.rejected_words or REJECTED_WORDS)
        return report(out_dir, counts)
    generator = load_generator(args, cfg)
    settings = PairSettings(
        max_tokens=args.max_tokens, seed=args.seed, batch_size=args.batch_size, rejected_system=rejected_system
    )

    def progress(done: int, total: int) -> None:
        log.info("rejected replies: %d of %d", done, total)

    counts = make_pairs(data_dir, out_dir, generator, settings, overwrite=args.force, progress=progress)
    return report(out_dir, counts)


def report(out_dir: Path, counts: dict[str, int]) -> int:
    print(f"pairs: {out_dir} ({counts['train']} train, {counts['valid']} valid)")
    print(f"train with: morris train --objective orpo --data {out_dir}")
    return 0
