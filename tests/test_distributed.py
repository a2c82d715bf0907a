"""Data-parallel training: 2 processes on this machine (MLX ring backend via mlx.launch; torch gloo via
torchrun) give the same adapter and losses as one process with the same global batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_chat_data

from morris_mlx.cli import main as morris
from morris_mlx.commands.train import strip_launch_flags
from morris_mlx.training import read_metrics

# Dropout draws differ between one batch of 2 and two batches of 1, so it is off for the comparison.
COMMON = ["--batch-size", "2", "--iters", "8", "--dropout", "0", "--rank", "4", "--steps-per-eval", "4",
          "--save-every", "4", "--learning-rate", "1e-3"]


def weights(adapter_dir, backend: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    name = "adapters.safetensors" if backend == "mlx" else "adapter_model.safetensors"
    return load_file(str(adapter_dir / name))


def run_pair(tiny_model, tmp_path, backend: str, extra: list[str]):
    data = write_chat_data(tmp_path / "data")
    args = ["train", "--backend", backend, "--model", str(tiny_model), "--data", str(data), *COMMON, *extra]
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert morris([*args, "--adapter-path", str(single)]) == 0
    assert morris([*args, "--adapter-path", str(multi), "--distributed", "--processes", "2"]) == 0
    return single, multi


def assert_same_training(single, multi, backend: str) -> None:
    a, b = weights(single, backend), weights(multi, backend)
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
    assert any(np.abs(v).max() > 0 for k, v in b.items() if "lora_b" in k.lower())  # it trained
    for kind, key in (("train", "loss"), ("val", "val_loss")):
        one = [(r["step"], r[key]) for r in read_metrics(single) if r["kind"] == kind]
        two = [(r["step"], r[key]) for r in read_metrics(multi) if r["kind"] == kind]
        assert one and [s for s, _ in one] == [s for s, _ in two]
        np.testing.assert_allclose([v for _, v in one], [v for _, v in two], rtol=1e-5)
    plan = next(r for r in read_metrics(multi) if r["kind"] == "plan")
    assert plan["world_size"] == 2
    provenance = json.loads((multi / "morris_adapter.json").read_text())
    assert provenance["metrics"]["steps"] == 8


@pytest.mark.slow
def test_mlx_two_processes_equal_one_with_the_same_global_batch(tiny_model, tmp_path):
    single, multi = run_pair(tiny_model, tmp_path, "mlx", [])
    assert_same_training(single, multi, "mlx")


@pytest.mark.slow
def test_torch_ddp_two_processes_equal_one_with_accumulation(tiny_model, tmp_path):
    # Accumulation exercises DDP's no_sync on the micro-steps between updates.
    single, multi = run_pair(tiny_model, tmp_path, "torch", ["--grad-accumulation", "2"])
    assert_same_training(single, multi, "torch")


def test_global_batch_must_divide_over_the_processes(tiny_model, tmp_path, capsys):
    data = write_chat_data(tmp_path / "data")
    code = morris(["train", "--backend", "torch", "--model", str(tiny_model), "--data", str(data),
                   "--batch-size", "3", "--distributed", "--processes", "2", "--adapter-path", str(tmp_path / "a")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "divisible by the 2 processes" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "content, backend, message",
    [
        (None, "mlx", "does not exist"),
        ("{not json", "mlx", "not valid JSON"),
        ('[{"host": "mac1"}]', "mlx", "JSON list of hosts"),
        ('[{"ssh": "mac1"}]', "torch", "torchrun --nnodes"),
    ],
)
def test_bad_hostfiles_are_refused_before_anything_starts(tiny_model, tmp_path, capsys, content, backend, message):
    data = write_chat_data(tmp_path / "data")
    hostfile = tmp_path / "hosts.json"
    if content is not None:
        hostfile.write_text(content)
    code = morris(["train", "--backend", backend, "--model", str(tiny_model), "--data", str(data),
                   "--distributed", "--hostfile", str(hostfile), "--adapter-path", str(tmp_path / "a")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "a").exists()


def test_ranks_get_the_command_line_without_the_launcher_flags():
    argv = ["--data", "d", "--distributed", "--processes", "2", "--hostfile=h.json", "--dist-backend", "ring",
            "--iters", "4"]
    assert strip_launch_flags(argv) == ["--data", "d", "--iters", "4"]
