"""`morris eval`: measure how far an adapter moved the model toward the writer's voice."""

from __future__ import annotations

import json
import logging
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
from morris_mlx.errors import MorrisError
from morris_mlx.files import MLX_WEIGHTS, PAIRS_RECORD, PEFT_WEIGHTS

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris eval --adapter-path adapters/morris                       # report in adapters/morris/eval/
  morris eval --adapter-path adapters/morris --prompts 20 --max-tokens 400 --out runs/eval-r16
  morris eval --adapter-path adapters/morris --contrast data/raw/other-writers.jsonl   # your own contrast set
  morris eval --adapter-path adapters/morris-r8    # a second adapter on the same data reuses the base model's half

writes FILE.json (every number), FILE.md (the same, explained) and FILE.svg (base vs adapter chart)
"""

DEFAULT_DATA = Path("data/processed")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris eval",
        description="Compare the base model with base + adapter: held-out perplexity on the test split (and on "
        "generic text), then text generated from the same prompts with the same seeds, scored against the "
        "writer's training corpus: Burrows' Delta, character n-gram distance, an attribution classifier, "
        "style markers (rates per 1,000 words) and repetition/copy checks. Deterministic for a seed.",
        epilog=EXAMPLE,
    )
    add_config_arg(p)
    add_model_args(p)
    p.add_argument("--adapter-path", metavar="DIR", required=True, help="the trained adapter to evaluate")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="prepared data with train/test.jsonl (default: the data the "
        "adapter was trained on, else data/processed)",
    )
    p.add_argument("--out", metavar="FILE", help="report path without suffix (default: ADAPTER/eval/report)")
    p.add_argument(
        "--seed", type=int, default=0, help="base seed; prompt i samples with seed + i (default: 0)"
    )
    p.add_argument(
        "--max-tokens", type=positive_int, default=300, help="tokens per generated text (default: 300)"
    )
    p.add_argument(
        "--prompts",
        type=positive_int,
        default=12,
        help="generation prompts, at most: held-out instructions (each asked equally often when there are "
        "fewer) plus up to 3 off-topic ones; attribution counts the held-out replies (default: 12)",
    )
    p.add_argument(
        "--contrast",
        metavar="PATH",
        help="other writers on the same topics: a folder of Markdown articles, JSONL with messages/body/text, "
        "or text with '---' between documents (default: the bundled contrast corpus). Its perplexity drop "
        "against the writer's gives specificity; it is also the classifier's non-writer side",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="compute the base model's replies and perplexities again, and keep them, instead of reusing "
        "those of an earlier eval with the same model, data and settings (MORRIS_HOME/eval-cache)",
    )
    return p


def resolve_data(arg: str | None, adapter_path: Path) -> Path:
    if arg:
        data = Path(arg).expanduser()
    else:
        from morris_mlx.adapter_format.provenance import read_provenance

        trained_on = ((read_provenance(adapter_path) or {}).get("data") or {}).get("path")
        data = Path(trained_on) if trained_on and Path(trained_on).is_dir() else DEFAULT_DATA
        data = prepared_behind(data)
    for split in ("train", "test"):
        if not (data / f"{split}.jsonl").is_file():
            raise MorrisError(f"{data} has no {split}.jsonl; run `morris prepare` or pass --data DIR")
    return data


def prepared_behind(data: Path) -> Path:
    """The prepared data a preference-pairs folder was built from (its test split is there), else `data`."""
    try:
        source = Path(json.loads((data / PAIRS_RECORD).read_text(encoding="utf-8"))["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return data
    return source if source.is_dir() else data


def check_adapter(path: Path) -> Path:
    if not path.is_dir():
        raise MorrisError(f"adapter directory {path} does not exist; train one with `morris train` first")
    if not any((path / name).is_file() for name in (MLX_WEIGHTS, PEFT_WEIGHTS)):
        raise MorrisError(
            f"{path} holds no adapter weights (adapters.safetensors); pass a trained adapter dir"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, MODEL_MAPPING)
    adapter_path = check_adapter(Path(args.adapter_path).expanduser())
    data_dir = resolve_data(args.data, adapter_path)
    from morris_mlx.paths import CONTRAST_DIR

    contrast = Path(args.contrast).expanduser() if args.contrast else CONTRAST_DIR
    if not contrast.exists():
        raise MorrisError(f"contrast corpus {contrast} does not exist; pass an existing file or folder to --contrast")

    if cfg.model.path:
        from morris_mlx.models.resolve import check_model_dir

        model_dir = check_model_dir(Path(cfg.model.path).expanduser())
    else:
        from morris_mlx.models.resolve import resolve_model

        model_dir = adapter_base_model(adapter_path) or resolve_model(cfg.model)
    out = Path(args.out).expanduser() if args.out else adapter_path / "eval" / "report"

    from morris_mlx.atomic import check_file_target
    from morris_mlx.evaluation.report import report_paths, summarise, write_report

    for path in report_paths(out):  # before the minutes of evaluation that would end in writing them
        check_file_target(path, "--out")
    from morris_mlx.evaluation.run import EvalOptions, run_eval

    options = EvalOptions(
        adapter_path=adapter_path,
        model_dir=model_dir,
        data_dir=data_dir,
        backend=cfg.model.backend,
        trust_remote_code=cfg.model.trust_remote_code,
        seed=args.seed,
        max_tokens=args.max_tokens,
        prompts=args.prompts,
        contrast=contrast,
        generate=cfg.generate,
        cache=not args.no_cache,
    )
    log.info("evaluating %s on %s against %s", adapter_path, model_dir, data_dir)
    report = run_eval(options)
    paths = write_report(report, out)
    width = max(len(r.measure) for r in summarise(report))
    print(f"{'measure':<{width}}  {'base':>9}  {'adapter':>9}  {'target':>9}  change")
    for row in summarise(report):
        print(
            f"{row.measure:<{width}}  {row.base:>9}  {row.adapter:>9}  {row.target:>9}  {row.change} {row.verdict}"
        )
    for path in paths:
        print(path)
    return 0
