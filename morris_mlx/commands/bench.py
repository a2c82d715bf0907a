"""`morris bench`: training and generation speed and memory, per backend, as JSON."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from morris_mlx.commands.common import ArgumentParser, positive_int
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris bench --out bench.json --markdown bench.md           # embedded default, every backend here
  morris bench --backend mlx --shape zephyr --what generate   # 7B-shaped random weights, no download
  morris bench --from-json mlx.json torch.json --markdown bench.md   # one table from earlier runs
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris bench",
        description="Measure training tokens/s, peak memory, time to first token, prefill and decode tokens/s "
        "(no adapter, adapter fused, adapter apart) for our paths and the plain libraries', side by side. "
        "Warm-up runs are excluded; figures are min/median over repeats.",
        epilog=EXAMPLE,
    )
    p.add_argument("--backend", choices=["all", "mlx", "torch"], default="all")
    p.add_argument("--model", metavar="DIR", help="model directory (default: the embedded default)")
    p.add_argument("--shape", choices=["tiny", "zephyr"], help="random-weight model of this shape instead")
    p.add_argument("--data", metavar="DIR", default="data/processed", help="prepared data for training runs")
    p.add_argument("--what", default="train,generate", help="comma list: train, generate")
    p.add_argument("--iters", type=positive_int, default=12, help="training iterations per run")
    p.add_argument("--batch-size", type=positive_int, default=2)
    p.add_argument("--max-seq-length", type=positive_int, default=512)
    p.add_argument("--rank", type=positive_int, default=16)
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--max-tokens", type=positive_int, default=64, help="tokens per generation run")
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--out", metavar="FILE", help="write the JSON list here (default: stdout)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown table")
    p.add_argument(
        "--from-json", metavar="FILE", nargs="+", help="only merge earlier JSON runs into Markdown"
    )
    return p


def _backends(choice: str) -> list[str]:
    from morris_mlx.backends import mlx_device, torch_device

    available = [name for name, dev in (("mlx", mlx_device()), ("torch", torch_device())) if dev]
    wanted = available if choice == "all" else [choice]
    missing = [b for b in wanted if b not in available]
    if missing or not wanted:
        raise MorrisError(f"backend {', '.join(missing) or choice} is not installed here")
    return wanted


def _model(args, tmp: Path) -> Path:
    from morris_mlx.config import load_config
    from morris_mlx.models.random_model import build_random_model
    from morris_mlx.models.resolve import resolve_model
    from morris_mlx.paths import models_dir

    if args.shape:
        target = models_dir() / f"random-{args.shape}"
        if not (target / "config.json").is_file():
            log.info("building a random-weight %s model in %s", args.shape, target)
            build_random_model(
                target, shape=args.shape, dtype="float16" if args.shape == "zephyr" else "float32"
            )
        return target
    return resolve_model(load_config(overrides={"model.path": args.model}).model)


def run(args) -> list[dict]:
    from morris_mlx.backends import get_backend
    from morris_mlx.bench import measure
    from morris_mlx.bench.record import record

    what = {w.strip() for w in args.what.split(",") if w.strip()}
    if not what <= {"train", "generate"}:
        raise MorrisError(f"--what takes train and/or generate, got {args.what!r}")
    backends = _backends(args.backend)
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir = _model(args, tmp)
        settings = {
            "model": model_dir.name,
            "batch_size": args.batch_size,
            "max_seq_length": args.max_seq_length,
            "rank": args.rank,
            "iters": args.iters,
            "grad_checkpoint": args.grad_checkpoint,
        }
        if "train" in what:
            data_dir = Path(args.data)
            if not (data_dir / "train.jsonl").is_file():
                raise MorrisError(f"{data_dir} has no train.jsonl; run `morris prepare` or pass --data")
            cfg = measure.bench_config(
                args.iters, args.batch_size, args.rank, args.max_seq_length, args.grad_checkpoint
            )
            for name in backends:
                log.info("training on %s (ours)", name)
                records.append(
                    record(
                        f"train:{name}:ours",
                        name,
                        settings,
                        measure.train_ours(name, model_dir, data_dir, cfg),
                    )
                )
            if "mlx" in backends:
                log.info("training on mlx (plain mlx-lm)")
                records.append(
                    record(
                        "train:mlx:plain",
                        "mlx",
                        settings,
                        measure.train_plain_mlx_lm(model_dir, data_dir, cfg),
                    )
                )
        if "generate" in what:
            adapter = measure.make_random_adapter(model_dir, tmp / "adapter", rank=args.rank)
            gen_settings = {**settings, "max_tokens": args.max_tokens, "repeats": args.repeats}
            for name in backends:
                backend = get_backend(name, announce=False)
                generator = backend.load(model_dir)
                for label, adapter_path, fuse in (
                    ("base", None, True),
                    ("fused", adapter, True),
                    ("apart", adapter, False),
                ):
                    log.info("generating on %s (%s)", name, label)
                    generator.set_adapter(adapter_path, fuse=fuse)
                    figures = measure.generate_ours(generator, args.max_tokens, args.repeats)
                    records.append(record(f"generate:{name}:{label}", name, gen_settings, figures))
                del generator
            if "mlx" in backends:
                log.info("generating on mlx (plain mlx-lm)")
                records.append(
                    record(
                        "generate:mlx:plain",
                        "mlx",
                        gen_settings,
                        measure.generate_plain_mlx_lm(model_dir, args.max_tokens, args.repeats),
                    )
                )
            if "torch" in backends:
                from morris_mlx.bench.torch_plain import generate_plain_peft

                log.info("generating on torch (plain transformers generate, unmerged PEFT adapter)")
                records.append(
                    record(
                        "generate:torch:plain-peft",
                        "torch",
                        gen_settings,
                        generate_plain_peft(model_dir, adapter, tmp, args.max_tokens, args.repeats),
                    )
                )
    return records


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx.atomic import write_json, write_text
    from morris_mlx.bench.report import markdown, ratios

    if args.from_json:
        records = []
        for path in args.from_json:
            try:
                records += json.loads(Path(path).read_text())
            except (OSError, ValueError) as exc:
                raise MorrisError(f"cannot read {path} as bench JSON: {exc}") from None
    else:
        import contextlib
        import sys

        # mlx-lm's trainer prints its own progress; keep stdout for the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            records = run(args)
        if args.out:
            write_json(args.out, records)
        else:
            print(json.dumps(records, indent=2))
    if args.markdown:
        write_text(args.markdown, markdown(records))
    for r in ratios(records):
        target = (
            "" if r["target"] is None else f" (target >= {r['target']}: {'met' if r['met'] else 'NOT met'})"
        )
        log.info("%s: %.2fx%s", r["ratio"], r["value"], target)
    return 0
