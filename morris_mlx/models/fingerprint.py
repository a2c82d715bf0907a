"""A cheap identity for a base model, recorded with every adapter and checked on resume and load."""

from __future__ import annotations

import hashlib
from pathlib import Path

from morris_mlx.files import MODEL_CONFIG

SAMPLE_BYTES = 1 << 20


def fingerprint_model(model_dir: Path) -> str:
    """config.json, every safetensors header (names, shapes, dtypes, offsets) and the first and last MiB
    of each file's tensor data. The headers alone cannot tell a fine-tune from its base (Zephyr from
    Mistral: same shapes), the sampled bytes can, since fine-tuning moves every weight. Hashing 14 GB on
    every run would cost more than training a step."""
    digest = hashlib.sha256()
    model_dir = Path(model_dir)
    digest.update((model_dir / MODEL_CONFIG).read_bytes())
    for path in sorted(model_dir.glob("*.safetensors")):
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            digest.update(path.name.encode())
            digest.update(fh.read(min(header_len, 100_000_000)))
            digest.update(fh.read(SAMPLE_BYTES))
            size = path.stat().st_size
            fh.seek(max(fh.tell(), size - SAMPLE_BYTES))
            digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()
