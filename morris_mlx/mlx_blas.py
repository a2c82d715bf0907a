"""MLX's CPU build on Linux and the BLAS it multiplies with.

The `mlx[cpu]` wheel links a reference BLAS of its own (netlib, in `mlx_cpu.libs/`): an fp32 matmul of
the size a 135M model trains with ran at 8 GFLOP/s on the 2-core build machine, and at 200 with MKL
preloaded (docs/mlx-cpu-blas.md). An optimised BLAS that exports the same `cblas_*` symbols, loaded
first with LD_PRELOAD, is what libmlx then calls.

A preload only takes effect at process start, so a command that will do MLX work re-executes itself
once with it. Only MLX work: with OpenBLAS preloaded, torch training ran 5x slower on 2 cores (its
threads and OpenBLAS's fought), so a process that may use torch is left alone and told how instead.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import logging
import os
import platform
import sys
from pathlib import Path

log = logging.getLogger("morris")

PRELOADED_FLAG = "MORRIS_BLAS_PRELOADED"  # set on the re-executed process, so it happens once
OPT_OUT = "MORRIS_NO_BLAS_PRELOAD"  # set to 1 to keep MLX's own BLAS
EXPLICIT = "MORRIS_BLAS"  # path to a BLAS library to preload, overriding the search
KNOWN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)
FIX = (
    "install OpenBLAS (Debian/Ubuntu: `sudo apt-get install libopenblas0-pthread`) or, without root, "
    "`pip install mkl`; morris then preloads it for MLX work (or set MORRIS_BLAS=/path/to/libblas.so)"
)

_warned = False


def reference_blas() -> Path | None:
    """The reference BLAS bundled with the mlx[cpu] wheel on Linux, found without importing mlx."""
    if platform.system() != "Linux":
        return None
    spec = importlib.util.find_spec("mlx")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "mlx_cpu.libs"
    found = sorted(libs.glob("libblas-*.so*")) if libs.is_dir() else []
    return found[0] if found else None


def fast_blas() -> Path | None:
    """An optimised BLAS with plain cblas symbols: MORRIS_BLAS, the system's OpenBLAS, or pip's MKL."""
    explicit = os.environ.get(EXPLICIT)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    candidates = [Path(p) for p in KNOWN_PATHS]
    found = ctypes.util.find_library("openblas")
    if found:
        candidates.insert(0, Path(found) if os.sep in found else Path("/usr/lib") / found)
    candidates += sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so*"))
    return next((p for p in candidates if p.is_file()), None)


def is_preloaded() -> bool:
    preload = os.environ.get("LD_PRELOAD", "")
    return bool(os.environ.get(PRELOADED_FLAG)) or any(
        name in preload for name in ("openblas", "mkl_rt", "libblis")
    )


def slow_blas_in_use() -> bool:
    return reference_blas() is not None and not is_preloaded()


def warn_if_slow() -> None:
    """Say once per process that MLX is about to multiply with its reference BLAS, and how to fix it."""
    global _warned
    if _warned or not slow_blas_in_use():
        return
    _warned = True
    log.warning(
        "MLX on this Linux CPU uses its bundled reference BLAS, 10-100x slower than an optimised one; %s", FIX
    )


def mlx_only(command: str, args: list[str]) -> bool:
    """Whether this command line will do MLX work and no torch work (so a preload cannot slow torch)."""
    if command == "serve":
        return True
    if command not in ("train", "pairs", "generate", "eval", "bench", "tui", "export"):
        return False
    for i, arg in enumerate(args):
        if arg == "--backend=mlx" or (arg == "--backend" and args[i + 1 : i + 2] == ["mlx"]):
            return True
    return importlib.util.find_spec("torch") is None


def preload_env(library: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LD_PRELOAD"] = os.pathsep.join(filter(None, [str(library), env.get("LD_PRELOAD")]))
    env[PRELOADED_FLAG] = str(library)
    if library.name.startswith("libmkl_rt"):
        # MKL's own OpenMP runtime ships in another pip package; GNU's is always there.
        env.setdefault("MKL_THREADING_LAYER", "GNU")
    return env


def reexec_with_fast_blas(command: str, args: list[str]) -> None:
    """Replace this process by the same command with a fast BLAS preloaded, when that is safe; else return.

    Called before anything is read or written, from the CLI of a real process only.
    """
    if os.environ.get(OPT_OUT) or not slow_blas_in_use() or not mlx_only(command, args):
        return
    library = fast_blas()
    if library is None:
        return  # the MLX code path says why it is slow and how to fix it
    log.debug("re-executing with %s preloaded for MLX", library)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "morris_mlx", *sys.argv[1:]], preload_env(library))
