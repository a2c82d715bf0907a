"""fp32 matmul speed of MLX's CPU backend, the number docs/mlx-cpu-blas.md compares across BLAS libraries.

    python scripts/blas_probe.py                                   # MLX's own BLAS
    LD_PRELOAD=/path/to/libmkl_rt.so.3 MKL_THREADING_LAYER=GNU python scripts/blas_probe.py
"""

import time

import mlx.core as mx

M, K, N = 754, 576, 1536  # the embedded default's MLP shape for a 754-token batch
a, b = mx.random.normal((M, K)), mx.random.normal((K, N))
mx.eval(a, b)
for _ in range(2):
    mx.eval(a @ b)
runs = 20
start = time.perf_counter()
for _ in range(runs):
    mx.eval(a @ b)
seconds = (time.perf_counter() - start) / runs
print(f"{2 * M * K * N / seconds / 1e9:.1f} GFLOP/s")
