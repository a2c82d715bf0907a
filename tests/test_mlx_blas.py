"""MLX's reference BLAS on a Linux CPU: found without importing MLX, reported once with the fix, and
replaced by a preloaded BLAS only for command lines that do MLX work and no torch work."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from morris_mlx import mlx_blas

linux_wheel = pytest.mark.skipif(
    mlx_blas.reference_blas() is None, reason="not the mlx[cpu] wheel on Linux: no reference BLAS to replace"
)


@linux_wheel
def test_the_reference_blas_of_the_mlx_cpu_wheel_is_found():
    lib = mlx_blas.reference_blas()
    assert platform.system() == "Linux" and lib.is_file() and lib.name.startswith("libblas-")
    assert lib.parent.name == "mlx_cpu.libs"


def test_only_mlx_command_lines_are_candidates(monkeypatch):
    assert mlx_blas.mlx_only("serve", [])
    assert mlx_blas.mlx_only("train", ["--backend", "mlx", "--iters", "5"])
    assert mlx_blas.mlx_only("generate", ["5G", "--backend=mlx"])
    assert mlx_blas.mlx_only("pairs", ["--data", "d", "--backend", "mlx"])
    assert not mlx_blas.mlx_only("prepare", ["--backend", "mlx"])
    assert not mlx_blas.mlx_only("train", ["--backend", "torch"])
    assert not mlx_blas.mlx_only("train", ["--backend"])  # incomplete: argparse will say so
    # auto may pick torch when it is installed: a preload would slow it, so no.
    monkeypatch.setattr(mlx_blas.importlib.util, "find_spec", lambda name: object())
    assert not mlx_blas.mlx_only("train", [])
    monkeypatch.setattr(mlx_blas.importlib.util, "find_spec", lambda name: None)
    assert mlx_blas.mlx_only("train", [])  # no torch at all: auto can only mean MLX


@linux_wheel
def test_the_warning_comes_once_with_the_fix(monkeypatch, caplog):
    monkeypatch.delenv(mlx_blas.PRELOADED_FLAG, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setattr(mlx_blas, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="morris"):
        mlx_blas.warn_if_slow()
        mlx_blas.warn_if_slow()
    messages = [r.getMessage() for r in caplog.records if "reference BLAS" in r.getMessage()]
    assert len(messages) == 1 and "libopenblas0-pthread" in messages[0] and "pip install mkl" in messages[0]


def test_no_warning_once_a_fast_blas_is_preloaded(monkeypatch, caplog):
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
    monkeypatch.setattr(mlx_blas, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="morris"):
        mlx_blas.warn_if_slow()
    assert not caplog.records


def test_preload_env_keeps_an_existing_preload_and_marks_the_restart(monkeypatch, tmp_path):
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    env = mlx_blas.preload_env(tmp_path / "libopenblas.so.0")
    assert env["LD_PRELOAD"].split(os.pathsep) == [str(tmp_path / "libopenblas.so.0"), "/opt/other.so"]
    assert env[mlx_blas.PRELOADED_FLAG]
    assert mlx_blas.preload_env(Path("/x/libmkl_rt.so.3"))["MKL_THREADING_LAYER"] == "GNU"


def test_morris_blas_names_the_library(monkeypatch, tmp_path):
    lib = tmp_path / "libblas-custom.so"
    monkeypatch.setenv(mlx_blas.EXPLICIT, str(lib))
    assert mlx_blas.fast_blas() is None  # named but missing: nothing is preloaded
    lib.write_bytes(b"")
    assert mlx_blas.fast_blas() == lib


@linux_wheel
def test_an_mlx_command_restarts_once_with_the_blas_preloaded(tmp_path):
    # Preloading MLX's own reference BLAS is harmless and always present: it stands in for OpenBLAS.
    env = {k: v for k, v in os.environ.items() if k not in (mlx_blas.PRELOADED_FLAG, mlx_blas.OPT_OUT)}
    env.update({mlx_blas.EXPLICIT: str(mlx_blas.reference_blas()), "MORRIS_HOME": str(tmp_path)})
    command = [sys.executable, "-m", "morris_mlx", "--verbose", "generate", "--backend", "mlx", "--help"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: morris generate" in done.stdout
    assert done.stderr.count("re-executing with") == 1  # the restarted process does not restart again
    torch_line = [*command[:5], "--backend", "torch", "--help"]
    done = subprocess.run(torch_line, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "re-executing" not in done.stderr
