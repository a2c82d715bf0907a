"""The package as a user installs it: a wheel (not an editable checkout), run from a folder that is not
the repository. Bundled corpora, prompts and profiles must come from inside the wheel, and what the
commands make must land under the working directory or MORRIS_HOME, never in site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`python -m build --wheel` on a copy of the sources (so the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "morris_mlx", src / "morris_mlx", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the build tools come from this environment, so the test never downloads.
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)], src, dict(os.environ))
    (built,) = out.glob("morris_mlx-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; its dependencies are borrowed from this environment's
    site-packages through a .pth line (a path line, so the editable install's finder is not loaded)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        venv,
        dict(os.environ),
    )
    return venv


def clean_env(tmp_path: Path, venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MORRIS_", "PYTHON"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        MORRIS_HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    return env


def test_the_wheel_carries_the_bundled_data(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for voice in ("morris", "ledger"):
        assert f"morris_mlx/bundled/voices/{voice}/system.txt" in names
        assert sum(n.startswith(f"morris_mlx/bundled/voices/{voice}/") and n.endswith(".md") for n in names) >= 25
    assert sum(n.startswith("morris_mlx/bundled/contrast/") for n in names) >= 25
    for name in ("prompts/instructions.toml", "prompts/style_markers.toml", "profiles/lightreading.toml"):
        assert f"morris_mlx/bundled/{name}" in names
    assert "morris_mlx/tui/morris.tcss" in names


@pytest.mark.slow
def test_installed_wheel_runs_the_main_job_from_any_folder(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = clean_env(tmp_path, installed)
    morris = str(installed / "bin" / "morris")
    where = run(
        [str(installed / "bin" / "python"), "-c", "import morris_mlx, sys; print(morris_mlx.__file__)"], work, env
    )
    assert where.strip().startswith(str(installed)), where  # the wheel, not the checkout
    assert "setup-default" in run([morris, "--help"], work, env)
    model = run([morris, "setup-default"], work, env).strip().splitlines()[-1]
    assert Path(model).is_relative_to(tmp_path / "home")
    run([morris, "prepare", "--model", model], work, env)
    assert (work / "data" / "processed" / "train.jsonl").is_file()
    article = run(
        [morris, "generate", "network slicing", "--model", model, "--max-tokens", "12", "--seed", "1"], work, env
    )
    assert article.strip()
    site = installed / "lib"
    assert not [p for p in site.rglob("*") if p.name in ("processed", "adapters") or p.suffix == ".jsonl"]
