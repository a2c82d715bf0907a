"""`morris bench`: training and generation speed, memory and conversion time, per backend and precision,
as JSON (one object per measurement) and a Markdown table with the ratios the targets are set on."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.commands.common import ArgumentParser, positive_int
from morris_mlx.config import OBJECTIVES
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris bench --out bench.json --markdown bench.md           # embedded default, every backend here
  morris bench --backend mlx --shape zephyr --precision bf16,4bit --what generate,convert
  morris bench --preset qlora-7b --out qlora.json             # 7B QLoRA within 8 GB? (needs a GPU)
  morris bench --what batch --decode-batch-size 8 --articles 16   # morris generate --batch, 8 vs 1 at a time
  morris bench --what train --objective orpo --data data/pairs    # the preference stage's steps
  morris bench --backend torch --what train --rank 32 --dropout 0   # what LoRA dropout costs a step
  morris bench --from-json mlx.json torch.json --markdown bench.md   # one table from earlier runs
"""

WHATS = ("train", "generate", "batch", "convert")

# Named configurations; flags given on the command line win over them.
PRESETS: dict[str, dict[str, Any]] = {
    # The 7B QLoRA memory check: Zephyr's exact shape in 4 bits, batch 1, 2,048 tokens, gradient
    # checkpointing, rank 16; it must peak within 8 GB. Synthetic data fills every sequence to 2,048 tokens.
    "qlora-7b": {
        "shape": "zephyr",
        "precision": "4bit",
        "backend": "mlx",
        "what": "train",
        "batch_size": 1,
        "max_seq_length": 2048,
        "grad_checkpoint": True,
        "rank": 16,
        "iters": 8,
        "data": "synthetic",
        "memory_limit_gb": 8.0,
    },
}
NEEDS_GPU = {"qlora-7b"}


def _precisions(text: str) -> list:
    from morris_mlx.bench.precision import parse_precisions

    try:
        return parse_precisions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dropout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dropout: give a number in [0, 1), e.g. 0 or 0.1")
    return value


def build_parser() -> ArgumentParser:
    from morris_mlx.models.random_model import SHAPES

    p = ArgumentParser(
        prog="morris bench",
        description="Measure training tokens/s, peak memory, time to first token, prefill and decode tokens/s "
        "(no adapter, adapter fused, adapter apart), decode bandwidth and conversion time for our paths and "
        "the plain libraries', side by side, per backend and precision. Warm-up runs are excluded; figures "
        "are min/median over repeats.",
        epilog=EXAMPLE,
    )
    p.add_argument("--backend", choices=["all", "mlx", "torch"], default="all")
    p.add_argument("--model", metavar="DIR", help="model directory (default: the embedded default)")
    p.add_argument("--shape", choices=sorted(SHAPES), help="random-weight model of this shape instead")
    p.add_argument(
        "--precision",
        type=_precisions,
        default="auto",
        metavar="LIST",
        help="comma list of auto, fp32, bf16, fp16, 4bit, 8bit (auto: the model as stored for MLX, the "
        "device's dtype for torch). MLX converts with `morris convert`; torch 4/8-bit uses bitsandbytes",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        default="data/processed",
        help="prepared data for training runs, or 'synthetic' for examples that fill every sequence",
    )
    p.add_argument("--what", default="train,generate", help="comma list: " + ", ".join(WHATS))
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named configuration (flags given win)")
    p.add_argument("--force", action="store_true", help="run a GPU preset on a CPU anyway")
    p.add_argument("--iters", type=positive_int, default=12, help="training iterations per run (2 warm-up)")
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        default="sft",
        help="what training optimizes (default: %(default)s); dpo and orpo train on a pairs folder "
        "(`morris pairs`) given as --data",
    )
    p.add_argument("--batch-size", type=positive_int, default=2)
    p.add_argument("--max-seq-length", type=positive_int, default=512)
    p.add_argument("--rank", type=positive_int, default=16)
    p.add_argument(
        "--dropout",
        type=_dropout,
        metavar="P",
        help="dropout on the LoRA input for training runs (default: the product's, lora.dropout)",
    )
    p.add_argument("--grad-checkpoint", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--memory-limit-gb", type=float, help="check training's peak memory against this")
    p.add_argument("--max-tokens", type=positive_int, default=64, help="tokens per generation run")
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument(
        "--decode-batch-size",
        type=positive_int,
        default=8,
        help="--what batch: articles decoded together, timed against one at a time",
    )
    p.add_argument("--articles", type=positive_int, default=16, help="--what batch: articles per timed run")
    p.add_argument(
        "--peak-bandwidth-gbs",
        type=float,
        help="the device's peak memory bandwidth, where the built-in table does not know it",
    )
    p.add_argument("--cache", metavar="DIR", help="converted models (default: MORRIS_HOME/models/bench)")
    p.add_argument("--out", metavar="FILE", help="write the JSON list here (default: stdout)")
    p.add_argument("--markdown", metavar="FILE", help="also write a Markdown table")
    p.add_argument(
        "--from-json", metavar="FILE", nargs="+", help="only merge earlier JSON runs into Markdown"
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Two passes, so that a preset supplies defaults and explicit flags still win over it."""
    parser = build_parser()
    known, _ = parser.parse_known_args(argv)
    if known.preset:
        # An explicit --model replaces the preset's random-weight shape (a real Zephyr, say).
        preset = {k: v for k, v in PRESETS[known.preset].items() if not (k == "shape" and known.model)}
        parser.set_defaults(preset=known.preset, **preset)
    return parser.parse_args(argv)


# What runs where --------------------------------------------------------------------------------------------


def _backends(choice: str) -> list[str]:
    from morris_mlx.backends import mlx_device, torch_device

    available = [name for name, dev in (("mlx", mlx_device()), ("torch", torch_device())) if dev]
    wanted = available if choice == "all" else [choice]
    missing = [b for b in wanted if b not in available]
    if missing or not wanted:
        raise MorrisError(f"backend {', '.join(missing) or choice} is not installed here")
    return wanted


def device_label(backend: str) -> str:
    """cpu, metal or cuda for MLX; cuda, mps or cpu for torch."""
    from morris_mlx.backends import mlx_device, torch_device

    if backend == "torch":
        return torch_device() or "cpu"
    if mlx_device() == "cpu":
        return "cpu"
    return "metal" if platform.system() == "Darwin" else "cuda"


def _parse_what(text: str) -> set[str]:
    what = {w.strip() for w in text.split(",") if w.strip()}
    if not what or not what <= set(WHATS):
        raise MorrisError(f"--what takes a comma list of {', '.join(WHATS)}, got {text!r}")
    return what


def _check_args(args: argparse.Namespace, what: set[str], devices: dict[str, str]) -> None:
    from morris_mlx.bench.measure import WARMUP_STEPS

    if "train" in what and args.iters <= WARMUP_STEPS:
        raise MorrisError(
            f"--iters {args.iters} leaves nothing to time after {WARMUP_STEPS} warm-up steps; use 3+"
        )
    if "train" in what and args.objective != "sft" and args.data == "synthetic":
        raise MorrisError(
            f"--data synthetic makes supervised examples; --objective {args.objective} trains on preference "
            "pairs: pass a folder made by `morris pairs` as --data"
        )
    on_cpu = [b for b, d in devices.items() if d == "cpu"]
    if args.preset in NEEDS_GPU and on_cpu and not args.force:
        raise MorrisError(
            f"--preset {args.preset} needs a GPU, but {', '.join(on_cpu)} runs on the CPU here, where a 7B "
            "model trains for hours; run it on Metal or CUDA, or pass --force (with --shape tiny to check it)"
        )


def _model(args: argparse.Namespace) -> Path:
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


def _data(args: argparse.Namespace, tmp: Path) -> Path:
    from morris_mlx.bench.data import write_synthetic_data

    if args.data == "synthetic":
        return write_synthetic_data(tmp / "data", args.max_seq_length, args.batch_size)
    data_dir = Path(args.data)
    if not (data_dir / "train.jsonl").is_file():
        raise MorrisError(
            f"{data_dir} has no train.jsonl; run `morris prepare`, pass --data DIR, or --data synthetic"
        )
    return data_dir


# Measuring --------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every measurement of one invocation shares."""

    args: argparse.Namespace
    what: set[str]
    source: Path
    tmp: Path
    cache: Path
    data_dir: Path | None
    adapter: Path | None
    peak_bandwidth_gbs: float | None

    def settings(self, precision: str, generate: bool = False) -> dict[str, Any]:
        a = self.args
        lora = self.train_config().lora  # the product's LoRA settings with the flags given here
        settings: dict[str, Any] = {
            "model": self.source.name,
            "shape": a.shape,
            "precision": precision,
            "preset": a.preset,
            "batch_size": a.batch_size,
            "max_seq_length": a.max_seq_length,
            "rank": a.rank,
            "dropout": lora.dropout,
            "lora_targets": lora.target_modules,
            "iters": a.iters,
            "grad_checkpoint": a.grad_checkpoint,
            "data": "synthetic" if a.data == "synthetic" else Path(a.data).name,
            "repeats": a.repeats,
        }
        if a.objective != "sft":  # records made before the flag existed are all supervised
            settings["objective"] = a.objective
        if a.memory_limit_gb is not None:
            settings["memory_limit_gb"] = a.memory_limit_gb
        if generate:
            settings["max_tokens"] = a.max_tokens
        return settings

    def batch_settings(self, precision: str, batch_size: int) -> dict[str, Any]:
        a = self.args
        return {
            **self.settings(precision, generate=True),
            "decode_batch_size": batch_size,
            "articles": a.articles,
        }

    def train_config(self):
        from morris_mlx.bench.measure import bench_config

        a = self.args
        return bench_config(
            a.iters, a.batch_size, a.rank, a.max_seq_length, a.grad_checkpoint, a.objective, a.dropout
        )


def _with_bandwidth(bench: Bench, figures: dict[str, Any], nbytes: int) -> dict[str, Any]:
    from morris_mlx.bench.bandwidth import decode_bandwidth

    runs = figures["decode_tokens_per_second"]["runs"]
    return {**figures, **decode_bandwidth(runs, nbytes, bench.peak_bandwidth_gbs)}


def _train_rows(bench: Bench, name: str, model_dir: Path, precision: str, device: str) -> list[dict]:
    from morris_mlx.bench import measure
    from morris_mlx.bench.record import record

    cfg = bench.train_config()
    settings = bench.settings(precision)
    log.info("training on %s, %s (ours)", name, precision)
    measure.reset_peak_memory(name)
    rows = [
        record(
            f"train:{name}:ours",
            name,
            settings,
            measure.train_ours(name, model_dir, bench.data_dir, cfg),
            device,
        )
    ]
    if name == "mlx" and bench.args.objective == "sft":  # mlx-lm's own trainer is supervised only
        log.info("training on mlx, %s (plain mlx-lm)", precision)
        measure.reset_peak_memory(name)
        figures = measure.train_plain_mlx_lm(model_dir, bench.data_dir, cfg)
        rows.append(record("train:mlx:plain", name, settings, figures, device))
    return rows


def _generate_rows(
    bench: Bench, name: str, model_dir: Path, precision: str, device: str, load_kwargs: dict | None
) -> list[dict]:
    from morris_mlx.backends import get_backend
    from morris_mlx.bench import measure
    from morris_mlx.bench.bandwidth import weight_bytes
    from morris_mlx.bench.record import record

    a = bench.args
    settings = bench.settings(precision, generate=True)
    measure.reset_peak_memory(name)
    generator = get_backend(name, announce=False).load(model_dir)
    nbytes = weight_bytes(generator)
    rows = []
    for label, adapter_path, fuse in (
        ("base", None, True),
        ("fused", bench.adapter, True),
        ("apart", bench.adapter, False),
    ):
        log.info("generating on %s, %s (%s)", name, precision, label)
        generator.set_adapter(adapter_path, fuse=fuse)
        measure.reset_peak_memory(name)  # each row's peak: the weights plus its own generation
        figures = _with_bandwidth(bench, measure.generate_ours(generator, a.max_tokens, a.repeats), nbytes)
        rows.append(record(f"generate:{name}:{label}", name, settings, figures, device))
    del generator
    gc.collect()
    measure.reset_peak_memory(name)
    if name == "mlx":
        log.info("generating on mlx, %s (plain mlx-lm)", precision)
        figures = measure.generate_plain_mlx_lm(model_dir, a.max_tokens, a.repeats)
        rows.append(
            record("generate:mlx:plain", name, settings, _with_bandwidth(bench, figures, nbytes), device)
        )
    else:
        from morris_mlx.bench.torch_plain import generate_plain_peft

        log.info("generating on torch, %s (plain transformers generate, unmerged PEFT adapter)", precision)
        figures = generate_plain_peft(
            model_dir, bench.adapter, bench.tmp, a.max_tokens, a.repeats, device, load_kwargs or {}
        )
        rows.append(
            record(
                "generate:torch:plain-peft", name, settings, _with_bandwidth(bench, figures, nbytes), device
            )
        )
    gc.collect()
    return rows


def _batch_rows(bench: Bench, name: str, model_dir: Path, precision: str, device: str) -> list[dict]:
    """`morris generate --batch` with the adapter fused: one at a time, then --decode-batch-size at once.
    Both rows share the settings the ratio groups on; decode_batch_size tells them apart."""
    from morris_mlx.backends import get_backend
    from morris_mlx.bench import measure
    from morris_mlx.bench.record import record

    a = bench.args
    generator = get_backend(name, announce=False).load(model_dir, bench.adapter)
    rows = []
    for label, size in (("one-at-a-time", 1), ("batched", a.decode_batch_size)):
        log.info("batch generation on %s, %s: %d articles, batch size %d", name, precision, a.articles, size)
        measure.reset_peak_memory(name)
        figures = measure.generate_batch_ours(generator, size, a.articles, a.max_tokens, a.repeats)
        rows.append(
            record(f"batch:{name}:{label}", name, bench.batch_settings(precision, size), figures, device)
        )
    del generator
    gc.collect()
    return rows


def _mlx_rows(bench: Bench, precision) -> list[dict]:
    from morris_mlx.bench import measure
    from morris_mlx.bench.precision import mlx_model_for, mlx_precision_name, stored_precision
    from morris_mlx.bench.record import record

    device = device_label("mlx")
    rows = []
    if "convert" in bench.what:
        name = stored_precision(bench.source) if precision.name == "auto" else precision.name
        log.info("converting %s to MLX %s with `morris convert`", bench.source.name, name)
        figures = measure.convert_mlx(bench.source, precision, bench.tmp, bench.args.repeats)
        rows.append(record("convert:mlx", "mlx", bench.settings(name), figures, device))
    if not bench.what & {"train", "generate", "batch"}:
        return rows
    model_dir = mlx_model_for(bench.source, precision, bench.cache)
    name = mlx_precision_name(model_dir, precision)
    if "train" in bench.what:
        rows += _train_rows(bench, "mlx", model_dir, name, device)
    if "generate" in bench.what:
        rows += _generate_rows(bench, "mlx", model_dir, name, device, None)
    if "batch" in bench.what:
        rows += _batch_rows(bench, "mlx", model_dir, name, device)
    return rows


def _torch_rows(bench: Bench, precision) -> list[dict]:
    from morris_mlx.bench.precision import torch_precision, torch_precision_name, torch_skip_reason
    from morris_mlx.bench.record import record

    # Conversion is MLX's alone: the torch backend reads Hugging Face directories as they are.
    device = device_label("torch")
    name = torch_precision_name(precision, device)
    rows: list[dict] = []
    reason = torch_skip_reason(precision, device)
    if reason:
        names = (
            [f"train:torch:{w}" for w in ("ours",) if "train" in bench.what]
            + [
                f"generate:torch:{w}"
                for w in ("base", "fused", "apart", "plain-peft")
                if "generate" in bench.what
            ]
            + [f"batch:torch:{w}" for w in ("one-at-a-time", "batched") if "batch" in bench.what]
        )
        log.warning("torch %s skipped: %s", name, reason)
        return rows + [record(n, "torch", bench.settings(name), {}, device, skipped=reason) for n in names]
    with torch_precision(precision, device) as load_kwargs:
        if "train" in bench.what:
            rows += _train_rows(bench, "torch", bench.source, name, device)
        if "generate" in bench.what:
            rows += _generate_rows(bench, "torch", bench.source, name, device, load_kwargs)
        if "batch" in bench.what:
            rows += _batch_rows(bench, "torch", bench.source, name, device)
    return rows


def run(args: argparse.Namespace) -> list[dict]:
    from morris_mlx.bench.bandwidth import accelerator_name, peak_bandwidth_gbs
    from morris_mlx.bench.measure import make_random_adapter
    from morris_mlx.paths import models_dir

    what = _parse_what(args.what)
    backends = _backends(args.backend)
    _check_args(args, what, {b: device_label(b) for b in backends})
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = _model(args)
        bench = Bench(
            args=args,
            what=what,
            source=source,
            tmp=tmp,
            cache=Path(args.cache).expanduser() if args.cache else models_dir() / "bench",
            data_dir=_data(args, tmp) if "train" in what else None,
            adapter=make_random_adapter(source, tmp / "adapter", rank=args.rank)
            if what & {"generate", "batch"}
            else None,
            peak_bandwidth_gbs=args.peak_bandwidth_gbs or peak_bandwidth_gbs(accelerator_name()),
        )
        for precision in args.precision:
            for name in backends:
                records += _mlx_rows(bench, precision) if name == "mlx" else _torch_rows(bench, precision)
    return records


# Reading earlier runs and reporting ---------------------------------------------------------------------


def read_records(paths: list[str]) -> list[dict]:
    """Records from earlier `morris bench` JSON files; one-line errors for files that are not that."""
    records: list[dict] = []
    for path in paths:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise MorrisError(
                f"cannot read {path} as bench JSON ({reason}); pass a file `morris bench --out` wrote"
            ) from None
        if not isinstance(loaded, list) or not all(
            isinstance(r, dict) and "measurement" in r and isinstance(r.get("settings"), dict) for r in loaded
        ):
            raise MorrisError(
                f"{path} is JSON but not a list of bench measurements; pass a file `morris bench --out` wrote"
            )
        records += loaded
    return records


def _log_targets(records: list[dict]) -> None:
    from morris_mlx.bench.report import limits, ratios

    for r in ratios(records):
        target = ""
        if r["met"] is not None:
            target = f" (target >= {r['target']}: {'met' if r['met'] else 'NOT met'})"
        log.info("%s: %.2fx%s", r["ratio"], r["value"], target)
    for c in limits(records):
        verdict = "" if c["met"] is None else f": {'met' if c['met'] else 'NOT met'}"
        log.info("%s: %s (target %s)%s", c["limit"], c["value"], c["target"], verdict)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from morris_mlx.atomic import check_file_target, write_json, write_text
    from morris_mlx.bench.report import markdown

    out = check_file_target(args.out, "--out") if args.out else None
    markdown_out = check_file_target(args.markdown, "--markdown") if args.markdown else None
    if args.from_json:
        records = read_records(args.from_json)
    else:
        import contextlib
        import sys

        # mlx-lm's trainer and `morris convert` print their own progress; keep stdout for the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            records = run(args)
        if out:
            write_json(out, records)
        else:
            print(json.dumps(records, indent=2))
    if markdown_out:
        write_text(markdown_out, markdown(records))
    _log_targets(records)
    return 0
