"""Synthetic chat data for `morris bench --data synthetic`: examples long enough to fill every training
sequence, so tokens per step (and so peak memory) are the configured batch x length, whatever the corpus.
Speed and memory do not depend on what the words say."""

from __future__ import annotations

import json
import random
from pathlib import Path

_WORDS = (
    "the operator promised that network slicing would change everything and shareholders are still "
    "waiting while open RAN edge computing and fibre were each hailed as the industry's saviour what "
    "could possibly go wrong plenty as it turned out capital expenditure fell jobs were cut towers sold"
).split()


def _example(rng: random.Random, words: int) -> dict:
    body = " ".join(rng.choice(_WORDS) for _ in range(words))
    return {
        "messages": [
            # A short prompt leaves most of a short test sequence to the assistant turn, which is trained on.
            {"role": "system", "content": "Gloomy telecom news."},
            {"role": "user", "content": "Write about: spectrum"},
            {"role": "assistant", "content": f"# Spectrum\n\n{body}"},
        ]
    }


def write_synthetic_data(out: Path, max_seq_length: int, batch_size: int, seed: int = 0) -> Path:
    """train/valid/test.jsonl whose every example is at least `max_seq_length` tokens (a word is at least
    one token in any tokenizer), truncated to it by the trainers."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"train": max(8, 2 * batch_size), "valid": max(2, batch_size), "test": 2}
    for split, n in sizes.items():
        rows = [_example(rng, max_seq_length + 16) for _ in range(n)]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out
