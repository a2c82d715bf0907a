#!/usr/bin/env bash
# MLX's CUDA 13 build (Python 3.12, x86-64) packed for a GPU machine without a package index, whose
# command calls carry at most 64 MiB each: the ~90 MB mlx-cuda-13 wheel is cut in two, the first part
# in .whl/a, the second with mlx and mlx-lm in .whl/b (both git-ignored). docs/benchmarks/README.md says
# how to join and install them there.
set -euo pipefail
cd "$(dirname "$0")/.."
MLX=${MLX_VERSION:-0.32.4}
MLX_LM=${MLX_LM_VERSION:-0.32.2}
rm -rf .whl && mkdir -p .whl/a .whl/b .whl/download
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_35_x86_64 --dest .whl/download "mlx==$MLX" "mlx-cuda-13==$MLX" "mlx-lm==$MLX_LM"
split --bytes 45M .whl/download/mlx_cuda_13-*.whl .whl/a/mlx_cuda_13.part.
mv .whl/a/mlx_cuda_13.part.ab .whl/b/
mv .whl/download/mlx-*.whl .whl/download/mlx_lm-*.whl .whl/b/
basename .whl/download/mlx_cuda_13-*.whl > .whl/b/WHEEL_NAME
rm -rf .whl/download
du -sh .whl/a .whl/b
