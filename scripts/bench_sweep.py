"""Benchmark sweep: every backend this machine has x model x precision x {train, generate,
convert}, plus the 7B QLoRA memory check, each as its own `morris bench` process, merged into one table.

    python scripts/bench_sweep.py --list           # the plan for this machine, with what is skipped and why
    python scripts/bench_sweep.py                  # run it into docs/benchmarks/<date>-<machine>/
    python scripts/bench_sweep.py --quick          # smoke test: tiny random model, a few steps, a temp folder
    python scripts/bench_sweep.py --backends mlx --models zephyr --precisions 4bit   # one slice

Each job writes `<backend>-<model>-<precision>.json` into the output folder and its log into `logs/`; a job
whose JSON exists is not run again, so a sweep cut off by a time limit continues where it stopped. What
cannot run here is written to `skipped.json` with the reason, and a job that fails is recorded there too,
then the folder's README.md is made with `morris bench --from-json` (ratios and target verdicts included).

MLX and torch never share a process: MLX's CPU build needs OpenBLAS preloaded to be usable on Linux, and
torch in the same process then thrashes threads (docs/benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
ZEPHYR_PARAMS = 7.24e9
# Bytes per parameter as loaded, scales and biases of the quantized formats included (group size 64).
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "8bit": 1.125, "4bit": 0.625}
# Room for activations, optimizer state and the KV cache on top of the weights.
HEADROOM_GB = 8.0


@dataclass
class Machine:
    name: str  # folder-name slug
    devices: dict[str, str]  # backend -> cpu | cuda | metal | mps
    accelerator: str | None
    memory_gb: float  # the accelerator's, else the machine's


@dataclass
class Job:
    name: str
    backend: str
    model: str
    precision: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None
    note: str | None = None


# The machine ------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _memory_gb(devices: dict[str, str]) -> float:
    if "cuda" in devices.values():
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / 1e9
    if "metal" in devices.values():
        import mlx.core as mx

        return mx.device_info().get("memory_size", 0) / 1e9
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def detect_machine() -> Machine:
    from morris_mlx.backends import mlx_device, torch_device
    from morris_mlx.bench.bandwidth import accelerator_name
    from morris_mlx.commands.bench import device_label

    devices = {b: device_label(b) for b, dev in (("mlx", mlx_device()), ("torch", torch_device())) if dev}
    accelerator = accelerator_name()
    name = _slug(accelerator.replace("NVIDIA", "")) if accelerator else f"cpu-{os.cpu_count()}core"
    return Machine(name, devices, accelerator, _memory_gb(devices))


# The plan ---------------------------------------------------------------------------------------------------


def precisions_for(backend: str, device: str) -> dict[str, str | None]:
    """Precision -> None (run) or the reason it is skipped on this backend and device."""
    if device != "cpu":
        return {"bf16": None, "4bit": None}  # `morris bench` itself records torch 4-bit without CUDA/bnb
    if backend == "mlx":
        return {
            "fp32": None,
            "bf16": "MLX's CPU build runs bf16 5-15x slower than fp32 (no BLAS path; docs/mlx-cpu-blas.md)",
            "4bit": "MLX's 4-bit matmuls on a CPU are 5-15x slower than fp32 (docs/benchmarks/2026-11-25-cpu-2core.md): no QLoRA on a CPU",
        }
    return {
        "fp32": None,
        "bf16": "torch bf16 matmuls on a CPU are slow and inexact; the torch backend uses fp32 there",
        "4bit": "bitsandbytes 4-bit needs CUDA",
    }


def model_skip(model: str, precision: str, machine: Machine, device: str) -> str | None:
    if model != "zephyr":
        return None
    if device == "cpu":
        return "a 7B model on the CPU takes hours per measurement; run this part on a GPU"
    need = ZEPHYR_PARAMS * BYTES_PER_PARAM[precision] / 1e9 + HEADROOM_GB
    if machine.memory_gb < need:
        return f"7B in {precision} needs about {need:.0f} GB; this device has {machine.memory_gb:.0f} GB"
    return None


def bench_flags(model: str, args: argparse.Namespace) -> list[str]:
    """Per-model settings: the embedded default as in the 2026-11-25 CPU run; the 7B shape as the H100
    figures in docs/backend-choice.md (batch 4 x 1024); everything tiny in --quick."""
    if args.quick:
        return "--shape tiny --iters 3 --batch-size 1 --max-seq-length 128 --max-tokens 8 --repeats 1".split()
    repeats = ["--repeats", str(args.repeats)]
    if model == "zephyr":
        return (
            "--shape zephyr --iters 8 --batch-size 4 --max-seq-length 1024 --max-tokens 128".split() + repeats
        )
    return "--iters 12 --batch-size 2 --max-seq-length 512 --max-tokens 64".split() + repeats


def job_env(backend: str, device: str) -> dict[str, str]:
    if backend == "mlx" and device == "cpu" and platform.system() == "Linux" and OPENBLAS.is_file():
        return {"LD_PRELOAD": str(OPENBLAS)}
    return {}


def plan(machine: Machine, args: argparse.Namespace) -> list[Job]:
    jobs: list[Job] = []
    models = ["tiny"] if args.quick else args.models
    for backend, device in machine.devices.items():
        if args.backends and backend not in args.backends:
            continue
        precisions = precisions_for(backend, device)
        if args.quick:  # one precision per backend: the first this device runs
            precisions = {next(p for p, why in precisions.items() if why is None): None}
        for model in models:
            for precision, why in precisions.items():
                if args.precisions and precision not in args.precisions:
                    continue
                what = [w for w in args.what if w != "convert" or backend == "mlx"]  # conversion is MLX's
                if not what:
                    continue
                job = Job(f"{backend}-{model}-{precision}", backend, model, precision)
                job.skip = why or model_skip(model, precision, machine, device)
                job.argv = [
                    "--backend",
                    backend,
                    "--precision",
                    precision,
                    "--what",
                    ",".join(what),
                    "--data",
                    args.data,
                    *bench_flags(model, args),
                ]
                job.env = job_env(backend, device)
                if args.peak_bandwidth_gbs:
                    job.argv += ["--peak-bandwidth-gbs", str(args.peak_bandwidth_gbs)]
                jobs.append(job)
        if backend == "mlx" and (not args.backends or "mlx" in args.backends) and "train" in args.what:
            jobs.append(qlora_job(machine, device, args))
    return jobs


def qlora_job(machine: Machine, device: str, args: argparse.Namespace) -> Job:
    job = Job("mlx-qlora-7b", "mlx", "zephyr", "4bit", env=job_env("mlx", device))
    if args.quick:
        job.argv = ["--preset", "qlora-7b", "--force", *bench_flags("tiny", args)]
    else:
        job.argv = ["--preset", "qlora-7b"]
        job.skip = model_skip("zephyr", "4bit", machine, device)
    return job


# Running ----------------------------------------------------------------------------------------------------


def morris(argv: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.CompletedProcess:
    with open(log, "w") if log else open(os.devnull, "w") as err:
        return subprocess.run(
            [sys.executable, "-m", "morris_mlx", *argv],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def skip_record(job: Job, reason: str, machine: Machine) -> dict:
    from morris_mlx.bench.record import record

    settings = {"model": job.model, "precision": job.precision}
    return record(f"sweep:{job.name}", job.backend, settings, {}, machine.devices.get(job.backend), reason)


def run_jobs(jobs: list[Job], out: Path, machine: Machine) -> list[dict]:
    """Run the jobs not done yet; returns skip records for those skipped or failed."""
    skipped = []
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for job in jobs:
        target = out / f"{job.name}.json"
        if job.skip:
            print(f"skip {job.name}: {job.skip}", file=sys.stderr)
            skipped.append(skip_record(job, job.skip, machine))
            continue
        if target.is_file():
            print(f"done {job.name} (remove {target.name} to measure again)", file=sys.stderr)
            continue
        log = out / "logs" / f"{job.name}.log"
        print(f"run  {job.name}: morris bench {' '.join(job.argv)}", file=sys.stderr, flush=True)
        result = morris(["bench", *job.argv, "--out", str(target)], job.env, log)
        if result.returncode:
            reason = f"failed (exit {result.returncode}): {_last_line(log)}"
            print(f"FAIL {job.name}: {reason}", file=sys.stderr)
            skipped.append(skip_record(job, reason, machine))
    return skipped


def setup_default(out: Path) -> str | None:
    """Make the embedded default ready; the reason it cannot be, or None."""
    log = out / "logs" / "setup-default.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    result = morris(["setup-default"], {}, log)
    return None if result.returncode == 0 else f"the embedded default is not set up: {_last_line(log)}"


def use_default_shape(job: Job, reason: str) -> None:
    """Speed and memory depend on the shape, not the weights: SmolLM2-135M's shape stands in for it."""
    job.argv += ["--shape", "smollm2"]
    job.note = f"{reason}; ran --shape smollm2 (the embedded default's exact shape, random weights)"


def merge(out: Path) -> int:
    files = sorted(str(p) for p in out.glob("*.json") if p.name != "sweep.json")
    if not files:
        print("nothing measured", file=sys.stderr)
        return 1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "morris_mlx",
            "bench",
            "--from-json",
            *files,
            "--markdown",
            str(out / "README.md"),
        ],
        cwd=REPO,
    )
    return result.returncode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="output folder (default: docs/benchmarks/<date>-<machine>)")
    p.add_argument("--quick", action="store_true", help="tiny random model, a few steps: a smoke test")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    p.add_argument("--backends", type=lambda s: s.split(","), help="comma list: mlx, torch")
    p.add_argument("--models", type=lambda s: s.split(","), default=["default", "zephyr"])
    p.add_argument("--precisions", type=lambda s: s.split(","), help="only these (e.g. bf16,4bit)")
    p.add_argument("--what", type=lambda s: s.split(","), default=["train", "generate", "convert"])
    p.add_argument("--data", default="synthetic", help="training data folder, or synthetic (default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peak-bandwidth-gbs", type=float, help="for a device the built-in table lacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = detect_machine()
    stamp = date.today().isoformat()
    if args.out is None:
        quick_root = Path(tempfile.gettempdir())
        args.out = (
            (quick_root / f"morris-bench-{stamp}-{machine.name}-quick")
            if args.quick
            else (REPO / "docs" / "benchmarks" / f"{stamp}-{machine.name}")
        )
    jobs = plan(machine, args)
    if args.list:
        print(f"machine {machine.name}: {machine.devices}, {machine.memory_gb:.0f} GB; output {args.out}")
        for job in jobs:
            env = " ".join(f"{k}={v}" for k, v in job.env.items())
            what = (
                f"skip: {job.skip}"
                if job.skip
                else f"{env + ' ' if env else ''}morris bench {' '.join(job.argv)}"
            )
            print(f"{job.name:22} {what}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.quick and any(j.model == "default" and not j.skip for j in jobs):
        reason = setup_default(args.out)
        if reason:
            print(f"{reason}; measuring a random-weight model of its exact shape instead", file=sys.stderr)
            for job in jobs:
                if job.model == "default":
                    use_default_shape(job, reason)
    (args.out / "sweep.json").write_text(
        json.dumps({"machine": asdict(machine), "jobs": [asdict(j) for j in jobs]}, indent=2)
    )
    skipped = run_jobs(jobs, args.out, machine)
    if skipped:
        (args.out / "skipped.json").write_text(json.dumps(skipped, indent=2))
    else:
        (args.out / "skipped.json").unlink(missing_ok=True)
    code = merge(args.out)
    print(args.out / "README.md")
    failed = [r for r in skipped if r["skipped"].startswith("failed")]
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
