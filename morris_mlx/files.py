"""The names of the files and folders morris writes, in one place.

Adapter files keep the names their libraries use, so each folder loads there unchanged: mlx-lm reads
`adapters.safetensors` + `adapter_config.json`, PEFT reads `adapter_model.safetensors` +
`adapter_config.json`.
"""

from __future__ import annotations

MLX_WEIGHTS = "adapters.safetensors"
MLX_LAST_WEIGHTS = "last_adapters.safetensors"  # mlx-lm's name for the weights at the end of a run
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_PICKLED_WEIGHTS = "adapter_model.bin"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = {"mlx": MLX_WEIGHTS, "peft": PEFT_WEIGHTS}
BACKEND_OF_FORMAT = {"mlx": "mlx", "peft": "torch"}  # the training backend that writes each format

PROVENANCE_FILENAME = "morris_adapter.json"  # ours, beside the adapter; written last
METRICS_FILENAME = "metrics.jsonl"
CHECKPOINTS_DIRNAME = "checkpoints"
CHECKPOINT_STATE = "state.json"  # the training loop's own state inside a checkpoint

PAIRS_RECORD = "pairs.json"  # beside preference pairs: what made them

MODEL_CONFIG = "config.json"
