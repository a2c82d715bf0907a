"""Turning articles into chat-format training data: read, clean, de-duplicate, cut, split, write.

Kept light on import (no transformers) so other modules can use `load_split` cheaply.
"""

from morris_mlx.dataset.jsonl import load_split

__all__ = ["load_split"]
