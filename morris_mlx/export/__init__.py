"""Adapters out of and into MLX: PEFT directories, fused Hugging Face models and GGUF files.

The public operations are in `morris_mlx.export.actions` (export_peft, import_peft, export_fused,
export_gguf); the MLX <-> PEFT mapping is in `peft`, the checks in `checks`.
"""
