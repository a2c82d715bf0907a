"""`morris train`: LoRA fine-tune a model on prepared data (MLX or torch backend)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from morris_mlx.commands.common import (
    MODEL_MAPPING,
    ArgumentParser,
    add_config_arg,
    add_model_args,
    config_from_args,
    positive_int,
)
from morris_mlx.config import OBJECTIVES, TrainConfig, field_help
from morris_mlx.errors import MorrisError
from morris_mlx.files import PROVENANCE_FILENAME

log = logging.getLogger("morris")

EXAMPLE = """examples:
  morris train --iters 40                          # embedded default, data/processed, auto backend
  morris train --model ~/models/zephyr-7b-4bit --data data/processed --adapter-path adapters/morris
  morris train --adapter-path adapters/morris --resume   # continue after an interruption
  morris pairs --out data/pairs && morris train --objective orpo --data data/pairs   # preference stage
  morris train --distributed --processes 2 --batch-size 2  # data parallel on this machine
  morris train --backend mlx --distributed --hostfile hosts.json --batch-size 8   # several Macs

hostfile (mlx.launch's format; every host needs this repository and the data at the same path):
  [{"ssh": "mac1.local", "ips": ["10.0.0.1"]}, {"ssh": "mac2.local", "ips": ["10.0.0.2"]}]
"""

MAPPING = {
    **MODEL_MAPPING,
    "preset": "train.preset",
    "objective": "train.objective",
    "beta": "train.beta",
    "min_updates": "train.min_updates",
    "patience": "train.patience",
    "val_smoothing": "train.val_smoothing",
    "iters": "train.iters",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "grad_accumulation": "train.grad_accumulation",
    "learning_rate": "train.learning_rate",
    "weight_decay": "train.weight_decay",
    "neftune_alpha": "train.neftune_alpha",
    "max_seq_length": "train.max_seq_length",
    "steps_per_eval": "train.steps_per_eval",
    "save_every": "train.save_every",
    "grad_checkpoint": "train.grad_checkpoint",
    "mask_prompt": "train.mask_prompt",
    "warmup_steps": "train.warmup_steps",
    "lr_schedule": "train.lr_schedule",
    "seed": "train.seed",
    "rank": "lora.rank",
    "alpha": "lora.alpha",
    "dropout": "lora.dropout",
    "target_modules": "lora.target_modules",
    "num_layers": "lora.num_layers",
}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris train",
        description="LoRA fine-tune a model on train/valid.jsonl. LoRA defaults are the recipe sweep's winner "
        "(rank 32, alpha 64, no dropout, attention and MLP projections of all layers; docs/recipe.md); the "
        "schedule is sized from the data (--preset auto) or the original Morris Bot's (--preset original: r16 "
        "on q/k/v/o, lr 1e-4, 2 epochs, batch 1, accumulation 8).",
        epilog=EXAMPLE,
    )
    add_config_arg(p)
    add_model_args(p)
    p.add_argument(
        "--data", metavar="DIR", default="data/processed", help="prepared data (default: %(default)s)"
    )
    p.add_argument(
        "--adapter-path", metavar="DIR", help="where the adapter goes (default: adapters/<model>-<time>)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the adapter's last checkpoint")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--iters", type=positive_int, help="iterations (micro-batches)")
    group.add_argument("--epochs", type=float, help="passes over the training set")
    p.add_argument(
        "--preset",
        choices=["auto", "original"],
        help="auto: schedule sized from the data (default); original: the original Morris Bot's",
    )
    p.add_argument("--objective", choices=list(OBJECTIVES), help=field_help(TrainConfig, "objective"))
    p.add_argument("--beta", type=float, metavar="B", help=field_help(TrainConfig, "beta"))
    p.add_argument("--min-updates", type=int, help="floor on optimizer updates (auto preset)")
    p.add_argument("--patience", type=int, help="validations without improvement before stopping (0: never)")
    p.add_argument("--val-smoothing", type=float, metavar="S", help=field_help(TrainConfig, "val_smoothing"))
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--grad-accumulation", type=positive_int, help="micro-batches per optimizer update")
    p.add_argument("--learning-rate", "--lr", type=float)
    p.add_argument("--weight-decay", type=float, metavar="W", help=field_help(TrainConfig, "weight_decay"))
    p.add_argument("--neftune-alpha", type=float, metavar="A", help=field_help(TrainConfig, "neftune_alpha"))
    p.add_argument("--max-seq-length", type=positive_int)
    p.add_argument("--steps-per-eval", type=positive_int)
    p.add_argument("--save-every", type=positive_int)
    p.add_argument("--grad-checkpoint", action="store_true", default=None)
    p.add_argument(
        "--no-mask-prompt",
        dest="mask_prompt",
        action="store_false",
        default=None,
        help="train on the prompt tokens too",
    )
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--seed", type=int)
    p.add_argument("--rank", type=positive_int)
    p.add_argument("--alpha", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--target-modules", nargs="+", metavar="NAME", help="e.g. q_proj k_proj v_proj o_proj")
    p.add_argument("--num-layers", type=int, help="adapt the last N blocks (-1: all)")
    dist = p.add_argument_group("data-parallel training (--batch-size is the global batch)")
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="launch one process per rank: mlx.launch for MLX, torchrun (DDP) for torch",
    )
    where = dist.add_mutually_exclusive_group()
    where.add_argument("--processes", type=positive_int, help="processes on this machine (default 2)")
    where.add_argument("--hostfile", metavar="FILE", help="mlx.launch hostfile: several machines (MLX)")
    dist.add_argument(
        "--dist-backend", choices=["ring", "mpi"], default="ring", help="MLX transport (default: %(default)s)"
    )
    return p


# Launcher flags and how many values each takes; the ranks get the command line without them.
LAUNCH_FLAGS = {"--distributed": 0, "--processes": 1, "--hostfile": 1, "--dist-backend": 1}


def strip_launch_flags(argv: list[str]) -> list[str]:
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = LAUNCH_FLAGS[name] if "=" not in arg else 0
            continue
        out.append(arg)
    return out


def launch_distributed(args, argv: list[str], backend_name: str, adapter_path: Path, batch_size: int) -> int:
    """Start the ranks with the engine's own launcher and wait; rank 0 writes the adapter."""
    import subprocess

    from morris_mlx.distributed import launch_plan
    from morris_mlx.training.plan import check_global_batch

    child_argv = [*strip_launch_flags(argv), "--backend", backend_name, "--adapter-path", str(adapter_path)]
    plan = launch_plan(
        backend_name,
        child_argv,
        args.processes,
        Path(args.hostfile) if args.hostfile else None,
        args.dist_backend,
    )
    check_global_batch(batch_size, plan.processes)
    log.info("launching %d %s processes: %s", plan.processes, backend_name, " ".join(plan.command))
    started = time.time()
    code = subprocess.run(plan.command).returncode
    provenance = adapter_path / PROVENANCE_FILENAME
    # mlx.launch can exit 0 when a rank failed, so success is rank 0's finished adapter, written now.
    if code != 0 or not provenance.is_file() or provenance.stat().st_mtime < started:
        raise MorrisError(
            f"distributed training failed (launcher exit code {code}); see the ranks' messages above. "
            f"Resume with the same command plus --resume"
        )
    return 0


def default_adapter_path(model_dir: Path) -> Path:
    from morris_mlx.paths import adapters_dir

    return adapters_dir() / f"{model_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def main(argv: list[str] | None = None) -> int:
    import sys

    from morris_mlx.distributed import env_rank, launched

    argv = list(sys.argv[2:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if launched() and env_rank() != 0:
        logging.getLogger("morris").setLevel(logging.WARNING)  # one voice: rank 0 reports
    cfg = config_from_args(args, MAPPING)
    data_dir = Path(args.data)
    if not data_dir.is_dir():
        raise MorrisError(f"data directory {data_dir} does not exist; run `morris prepare` first")

    from morris_mlx.backends import get_backend
    from morris_mlx.models.resolve import resolve_model

    model_dir = resolve_model(cfg.model)
    if args.resume and not args.adapter_path:
        raise MorrisError("--resume needs --adapter-path DIR naming the run to continue")
    if launched() and not args.adapter_path:
        raise MorrisError(
            "under torchrun or mlx.launch pass --adapter-path DIR, so that every rank names the same run"
        )
    adapter_path = Path(args.adapter_path) if args.adapter_path else default_adapter_path(model_dir)
    if args.distributed and cfg.train.objective != "sft":
        raise MorrisError("preference training (--objective dpo|orpo) runs in one process; drop --distributed")
    if args.distributed and not launched():
        from morris_mlx.backends import choose

        # Rank 0 prints the result, as a single process would.
        return launch_distributed(
            args, argv, choose(cfg.model.backend).backend, adapter_path, cfg.train.batch_size
        )
    backend = get_backend(cfg.model.backend, trust_remote_code=cfg.model.trust_remote_code)
    log.info("model %s -> adapter %s", model_dir, adapter_path)
    try:
        result = backend.train(cfg, model_dir, data_dir, adapter_path, resume=args.resume)
    except RuntimeError as exc:
        if "memory" in str(exc).lower() or "malloc" in str(exc).lower():
            raise MorrisError(
                "out of memory while training; try --batch-size 1, --grad-checkpoint, a shorter "
                "--max-seq-length or a quantized model (morris convert -q)"
            ) from None
        raise
    if env_rank() != 0:
        return 0
    best = f"{result.best_val_loss:.3f}" if result.best_val_loss is not None else "n/a"
    print(f"adapter: {result.adapter_path} ({result.steps} iterations, best validation loss {best})")
    print(f'generate with: morris generate "5G" --adapter-path {result.adapter_path}')
    return 0
