#!/usr/bin/env bash
# The main job on the embedded default model, offline: prepare the bundled corpus, train a small
# adapter, generate an article with it. `make demo` runs this inside the project's virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${MORRIS_BACKEND:-auto}
adapter="adapters/demo-$(date +%Y%m%d-%H%M%S)"

echo "== 1/4 embedded default model (converted once, then verified)"
model=$(morris setup-default | tail -n 1)

echo "== 2/4 prepare the bundled corpus -> data/processed"
morris prepare --model "$model" --out data/processed --max-seq-length 1024

echo "== 3/4 train a LoRA adapter -> $adapter"
morris train --model "$model" --data data/processed --adapter-path "$adapter" --backend "$backend" \
  --max-seq-length 1024

echo "== 4/4 generate with it"
morris generate "why every telco now says it is an AI company" --model "$model" \
  --adapter-path "$adapter" --backend "$backend" --max-tokens 300 --seed 7

echo
echo "Adapter: $adapter"
echo "Open it in the TUI:  .venv/bin/morris tui --adapter-path $adapter"
