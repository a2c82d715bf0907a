"""`morris generate "TOPIC"`: write an article in the writer's voice, streamed to stdout; or
`morris generate --batch FILE --out FILE`: many articles with batched decoding, to a JSONL file."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from morris_mlx.commands.common import (
    MODEL_MAPPING,
    ArgumentParser,
    add_config_arg,
    add_model_args,
    config_from_args,
    load_generator,
    positive_int,
)

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris generate "5G" --max-tokens 40                     # embedded default, no adapter
  morris generate "network slicing" --adapter-path adapters/morris --temp 0.7 --seed 1
  morris generate "open RAN" --adapter-path adapters/morris --time-limit 30 --no-fuse
  morris generate --batch topics.txt --out articles.jsonl --adapter-path adapters/morris --batch-size 8
  morris generate "spectrum auctions" --adapter-path adapters/morris --review   # + what to check

batch files (--batch FILE):
  JSONL when the name ends in .jsonl or the first line starts with "{": one object a line with a
  "topic" and, optionally, its own "system_prompt", "seed" and "max_tokens"; otherwise plain text,
  one topic a line. Blank lines and lines starting with # are skipped in both.
  The output JSONL has one object per topic, in input order: topic, text, finish_reason,
  prompt_tokens, generation_tokens, model, adapter, backend, settings, created (and review, with
  --review: needs_review, counts and the flags, as `morris review --json` gives them). It appears only when
  every topic is done; finished articles wait in OUT.partial meanwhile, so running the same command
  again after Ctrl-C or a crash resumes where it stopped (--force starts afresh).
"""

DEFAULT_BATCH_SIZE = 8  # on the 2-core CPU, 8 at once gave 3.1x (MLX) and 3.6x (torch) the tokens/s of 1 (README)

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
        usage="morris generate (TOPIC | --batch FILE --out FILE) [options]",
        description="Generate an article on TOPIC with the model's chat template and the voice's system "
        "prompt, streamed to stdout as it is written; or, with --batch, one article for each topic in "
        "FILE, decoded several at a time, into a JSONL file.",
        epilog=EXAMPLE,
    )
    p.add_argument("topic", nargs="?", help="what the article is about")
    p.add_argument("--batch", metavar="FILE", help="topics file (see below); needs --out")
    p.add_argument("--out", metavar="FILE", help="with --batch: the articles JSONL to write")
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help=f"with --batch: articles decoded together (default: {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--force", action="store_true", help="with --batch: overwrite --out and ignore an earlier partial run"
    )
    add_config_arg(p)
    add_model_args(p)
    p.add_argument("--adapter-path", metavar="DIR", help="a trained adapter (MLX or PEFT directory)")
    p.add_argument("--max-tokens", type=positive_int)
    p.add_argument("--temp", type=float, help="temperature; 0 is greedy")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument(
        "--seed",
        type=int,
        help="seed for reproducible sampling (with --batch: each article draws as if run alone with it)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop and keep the partial text (with --batch: per article)",
    )
    p.add_argument("--system-prompt", help="replace the voice's system prompt")
    p.add_argument(
        "--review",
        action="store_true",
        help="append the checklist `morris review` gives (quotes, figures, names, copied text, ...); "
        "with --batch, store it in each article's \"review\" field",
    )
    p.add_argument(
        "--terms", metavar="FILE", help="with --review: a do-not-publish list (TOML, see data/README.md)"
    )
    p.add_argument(
        "--no-fuse",
        dest="fuse",
        action="store_false",
        default=None,
        help="keep the adapter apart from the weights (default: fused, faster)",
    )
    return p


def check_mode(args: argparse.Namespace) -> None:
    """One TOPIC or one --batch run, with the flags that go with it; MorrisError otherwise."""
    from morris_mlx.errors import MorrisError

    if args.topic is not None and args.batch is not None:
        raise MorrisError("pass either a TOPIC or --batch FILE, not both")
    if args.terms is not None and not args.review:
        raise MorrisError("--terms goes with --review; add --review or drop --terms")
    if args.batch is None:
        if args.topic is None:
            raise MorrisError('pass a TOPIC, e.g. morris generate "5G", or --batch FILE --out FILE for many')
        if args.out is not None or args.force or args.batch_size is not None:
            raise MorrisError(
                "--out, --batch-size and --force go with --batch FILE; drop them or add --batch"
            )
        return
    if args.out is None:
        raise MorrisError("--batch needs --out FILE for the articles JSONL")
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH_SIZE
    if args.batch_size <= 0:
        raise MorrisError(f"--batch-size must be positive (got {args.batch_size})")
    out = Path(args.out)
    if out.resolve() == Path(args.batch).resolve():
        raise MorrisError(f"--out {out} is the batch file itself; choose another --out")
    if out.is_dir():
        raise MorrisError(f"--out {out} is a directory; pass a file name such as articles.jsonl")
    if out.exists() and not args.force:
        raise MorrisError(f"{out} already exists; pass --force to overwrite it or choose another --out")


def load_reviewer(args: argparse.Namespace) -> Any:
    """The reviewer --review asks for (None without it), made before generating so that a bad term list
    fails in a second rather than after the articles."""
    if not args.review:
        return None
    from morris_mlx.review import make_reviewer

    return make_reviewer(Path(args.adapter_path) if args.adapter_path else None, terms_path=args.terms)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_mode(args)
    cfg = config_from_args(args, MAPPING)
    if cfg.generate.system_prompt is None and args.adapter_path:
        from morris_mlx.adapter_format.provenance import trained_system_prompt

        # Ask in the voice the adapter was trained to answer (another bundled voice, or a scraped writer's).
        cfg.generate.system_prompt = trained_system_prompt(Path(args.adapter_path))
    reviewer = load_reviewer(args)
    if args.batch is not None:
        return generate_batch(args, cfg, reviewer)

    from morris_mlx.prompts import article_messages

    messages = article_messages(args.topic, cfg.generate.system_prompt)
    generator = load_generator(args, cfg)
    last = None
    pieces: list[str] = []
    for chunk in generator.stream(messages, cfg.generate):
        sys.stdout.write(chunk.text)
        sys.stdout.flush()
        pieces.append(chunk.text)
        last = chunk
    sys.stdout.write("\n")
    if reviewer is not None:
        from morris_mlx.review.checklist import to_markdown

        text = "".join(pieces)
        # The checklist's line:column positions refer to the article as printed above it.
        sys.stdout.write("\n" + to_markdown(reviewer.review(text), text, notes=reviewer.notes))
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


# Batch --------------------------------------------------------------------------------------------------


def item_settings(base: Any, item: Any) -> Any:
    """The command's GenerateConfig with what the item's JSONL line overrides."""
    overrides = {
        k: getattr(item, k) for k in ("system_prompt", "seed", "max_tokens") if getattr(item, k) is not None
    }
    return dataclasses.replace(base, **overrides)


def recipe(topic: str, settings: Any, generator: Any) -> dict[str, Any]:
    """What made an article, besides chance: written with it, and compared on resume."""
    return {
        "topic": topic,
        "model": str(generator.model_dir),
        "adapter": str(generator.adapter_path) if generator.adapter_path else None,
        "backend": generator.backend,
        "settings": dataclasses.asdict(settings),
    }


def article(index: int, made: dict[str, Any], result: Any) -> dict[str, Any]:
    return {
        "index": index,  # journal only: finish_output drops it
        "topic": made["topic"],
        "text": result.text,
        "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens,
        "generation_tokens": result.generation_tokens,
        **{k: made[k] for k in ("model", "adapter", "backend", "settings")},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def review_record(reviewer: Any, text: str) -> dict[str, Any]:
    from morris_mlx.review.checklist import to_json

    return to_json(reviewer.review(text), text)


def generate_batch(args: argparse.Namespace, cfg: Any, reviewer: Any = None) -> int:
    from morris_mlx.batch import Journal, finish_output, load_journal, read_batch_file
    from morris_mlx.prompts import article_messages

    items = read_batch_file(args.batch)
    settings = [item_settings(cfg.generate, item) for item in items]
    conversations = [
        article_messages(item.topic, s.system_prompt) for item, s in zip(items, settings, strict=True)
    ]
    generator = load_generator(args, cfg)
    recipes = [recipe(item.topic, s, generator) for item, s in zip(items, settings, strict=True)]
    done, others = ({}, []) if args.force else load_journal(args.out, recipes)
    pending = [i for i in range(len(items)) if i not in done]
    if done:
        log.info("resuming: %d of %d articles were finished by an earlier run", len(done), len(items))
    journal = Journal(args.out, [*done.values(), *others])
    started = time.perf_counter()
    try:
        results = generator.generate_batch(
            [conversations[i] for i in pending], [settings[i] for i in pending], args.batch_size
        )
        tokens = write_articles(results, pending, recipes, journal, done, reviewer) if pending else 0
    except BaseException:
        journal.close()
        if done:
            log.warning(
                "kept %d finished article(s) in %s; run the same command again to resume",
                len(done),
                journal.path,
            )
        elif not others:
            journal.path.unlink(missing_ok=True)  # nothing to resume: leave no trace
        raise
    journal.close()
    if reviewer is not None:
        for record in done.values():  # articles an earlier run without --review finished
            record.setdefault("review", review_record(reviewer, record["text"]))
    finish_output(args.out, done, others)
    elapsed = time.perf_counter() - started
    log.info(
        "%d articles -> %s (%d new): %d tokens in %.1f s, %.1f tok/s, batch size %d on %s",
        len(done),
        args.out,
        len(pending),
        tokens,
        elapsed,
        tokens / elapsed if elapsed > 0 else 0.0,
        args.batch_size,
        generator.backend,
    )
    return 0


def write_articles(
    results: Any,
    pending: list[int],
    recipes: list[dict[str, Any]],
    journal: Any,
    done: dict[int, dict[str, Any]],
    reviewer: Any = None,
) -> int:
    """Journal each article as it finishes (into `done` too); returns the tokens generated."""
    tokens = 0
    for n, (k, result) in enumerate(results, 1):
        index = pending[k]
        done[index] = article(index, recipes[index], result)
        if reviewer is not None:
            done[index]["review"] = review_record(reviewer, result.text)
        journal.append(done[index])
        tokens += result.generation_tokens
        log.info(
            "[%d/%d] %s: %d tokens (%s)",
            n,
            len(pending),
            recipes[index]["topic"],
            result.generation_tokens,
            result.finish_reason,
        )
    return tokens
