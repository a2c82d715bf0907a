"""Crash safety: `morris train` killed with SIGKILL at 10 random moments (some while a checkpoint is being
written), resumed with --resume each time until it finishes, ends with the adapter an uninterrupted run
makes. After every kill nothing in the adapter folder passes for finished: no morris_adapter.json, and
every checkpoint folder without the .partial suffix loads and matches its manifest.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from morris_mlx.adapter_format.provenance import verify_adapter
from morris_mlx.atomic import verify_manifest
from morris_mlx.files import CHECKPOINTS_DIRNAME, PROVENANCE_FILENAME
from morris_mlx.training import checkpoints, read_metrics

KILLS = 10
POLL_S = 0.01


def command(backend: str, model: Path, data: Path, out: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "morris_mlx",
        "--quiet",
        "train",
        *("--backend", backend, "--model", str(model), "--data", str(data), "--adapter-path", str(out)),
        *("--iters", "48", "--save-every", "2", "--steps-per-eval", "4", "--grad-accumulation", "1"),
        *("--rank", "4", "--patience", "0", "--learning-rate", "1e-3", "--seed", "3"),
        *("--dropout", "0.1"),  # random masks: a resumed run must draw the ones the uninterrupted run drew
        *(["--resume"] if resume else []),
    ]


# Loaded into every `morris train` process of this test (PYTHONPATH): while the hold file exists, a
# checkpoint folder whose files are written stays .partial (before it is fsynced, manifested and renamed)
# until the test kills the process there; a window of fixed length could close before a poll on a busy
# machine acts on it. Timing only; nothing else changes.
HOLD_CHECKPOINTS = """
import os, time
from pathlib import Path
import morris_mlx.atomic as atomic
_real = atomic._fsync_tree
def _held(directory):
    if Path(directory).parent.name == "checkpoints":
        while os.path.exists(os.environ["MORRIS_TEST_HOLD_FILE"]):
            time.sleep(0.01)
    _real(directory)
atomic._fsync_tree = _held
"""


def start(
    backend: str, model: Path, data: Path, out: Path, tmp: Path, hold_checkpoint: bool = False
) -> subprocess.Popen:
    hooks = tmp / "hooks"
    if not hooks.is_dir():
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(HOLD_CHECKPOINTS)
    hold = tmp / "hold-checkpoint"
    if hold_checkpoint:
        hold.touch()
    else:
        hold.unlink(missing_ok=True)
    env = {
        **os.environ,
        "MORRIS_HOME": str(tmp / "home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(hooks), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MORRIS_TEST_HOLD_FILE": str(hold),
    }
    # Resume whenever a complete checkpoint exists; a run killed before its first one starts afresh.
    resume = bool(checkpoints(out))
    return subprocess.Popen(
        command(backend, model, data, out, resume),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for(proc: subprocess.Popen, condition, timeout: float) -> bool:
    """Poll `condition` until it holds (True) or the process ends or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(POLL_S)
    return False


def checkpoint_being_written(out: Path) -> bool:
    root = out / CHECKPOINTS_DIRNAME
    try:
        return any(name.endswith(".partial") for name in os.listdir(root))
    except FileNotFoundError:
        return False


def planned_since(out: Path, moment: float) -> bool:
    """Whether a run started at `moment` (wall clock) has logged its plan: start-up is over."""
    try:
        return any(r.get("kind") == "plan" and r.get("time", 0) >= moment for r in read_metrics(out))
    except OSError:
        return False


def trained_since(out: Path, moment: float, steps: int) -> bool:
    """Whether the run started at `moment` has reported `steps` training steps."""
    try:
        return sum(r.get("kind") == "train" and r.get("time", 0) >= moment for r in read_metrics(out)) >= steps
    except OSError:
        return False


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def assert_nothing_passes_for_finished(out: Path, backend: str) -> None:
    assert not (out / PROVENANCE_FILENAME).exists(), "an unfinished run looks finished"
    root = out / CHECKPOINTS_DIRNAME
    names = sorted(os.listdir(root)) if root.is_dir() else []
    for name in names:
        path = root / name
        if "." in name:  # step_N.partial (or .deleting): never listed, never loaded
            assert path not in checkpoints(out)
            continue
        assert verify_manifest(path, f"checkpoint {name}", "-"), f"{name} has no manifest"
        json.loads((path / "state.json").read_text())
        for tensor_file in path.glob("*.safetensors"):
            load_tensors(tensor_file)
    weights = out / ("adapters.safetensors" if backend == "mlx" else "adapter_model.safetensors")
    if weights.exists():  # the best adapter so far, replaced atomically at each improvement
        load_tensors(weights)
    for line in (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []:
        json.loads(line)


def run_with_kills(backend: str, model: Path, data: Path, tmp: Path) -> None:
    reference = tmp / "reference"
    began = time.monotonic()
    proc = start(backend, model, data, reference, tmp)
    assert wait_for(proc, lambda: planned_since(reference, 0), timeout=300), proc.communicate()[1][-2000:]
    startup = time.monotonic() - began  # imports, model and data loading: a kill there loses nothing
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    training = time.monotonic() - began - startup

    out = tmp / "killed"
    rng = random.Random(20261124)
    # Moments spread over a run: during start-up, at random times while training, and while a checkpoint
    # folder is being written. Training kills come early in each resumed run so that ten fit in one.
    kinds = ["startup"] * 2 + ["training"] * 5 + ["checkpoint"] * 3
    rng.shuffle(kinds)
    kills: list[str] = []
    for kind in kinds:
        moment = time.time()
        proc = start(backend, model, data, out, tmp, hold_checkpoint=kind == "checkpoint")
        if kind == "startup":
            wait_for(proc, lambda: False, timeout=rng.uniform(0.2, 0.9) * startup)
        else:
            wait_for(proc, lambda moment=moment: planned_since(out, moment), timeout=300)
            # Counted in steps, not seconds: the machine may be busier now than for the reference run,
            # and a window in seconds would then end before anything happened, or after the run did.
            if kind == "training":
                steps = rng.randint(1, 3)
                wait_for(proc, lambda moment=moment, steps=steps: trained_since(out, moment, steps), timeout=300)
            else:
                wait_for(proc, lambda: checkpoint_being_written(out), timeout=300)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            break  # it finished before this kill: nothing left to interrupt
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        kills.append(kind)
        if kind == "checkpoint":  # killed mid-write: the half-made checkpoint is still there, unlisted
            assert checkpoint_being_written(out), kills
        assert_nothing_passes_for_finished(out, backend)

    detail = f"kills {kills}; start-up {startup:.1f} s, training {training:.1f} s"
    assert len(kills) == KILLS, detail
    while not (out / PROVENANCE_FILENAME).exists():
        proc = start(backend, model, data, out, tmp)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]

    weights = "adapters.safetensors" if backend == "mlx" else "adapter_model.safetensors"
    names = [weights] + (["last_adapters.safetensors"] if backend == "mlx" else [])
    for name in names:
        expected, got = load_tensors(reference / name), load_tensors(out / name)
        assert expected.keys() == got.keys()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=f"{name}: {key}; {detail}")
    losses = {r["step"]: r["loss"] for r in read_metrics(reference) if r["kind"] == "train"}
    resumed = {r["step"]: r["loss"] for r in read_metrics(out) if r["kind"] == "train"}
    assert sorted(resumed) == sorted(losses)
    for step, loss in losses.items():
        assert resumed[step] == pytest.approx(loss, abs=1e-5), step
    verify_adapter(out)  # the finished adapter's recorded sizes and hashes hold


@pytest.mark.slow
def test_mlx_training_survives_ten_kills(tiny_model, tiny_data, tmp_path):
    run_with_kills("mlx", tiny_model, tiny_data, tmp_path)


@pytest.mark.slow
def test_torch_training_survives_ten_kills(tiny_model, tiny_data, tmp_path):
    run_with_kills("torch", tiny_model, tiny_data, tmp_path)
