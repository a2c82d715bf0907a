"""The train screen's preference stage, as plain functions: the objective choice and its beta, what a data
folder holds (chat examples or preference pairs), and where pairs built from a prepared folder go.

What a folder holds is judged by the first record of its train.jsonl, as the training loaders would judge
it, so the screen can say what to do before a model is loaded instead of after.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from morris_mlx.errors import MorrisError

OBJECTIVE_CHOICES = [
    ("supervised (sft)", "sft"),
    ("preference: ORPO", "orpo"),
    ("preference: DPO", "dpo"),
]
BETA_LABELS = {
    "dpo": "Beta (DPO: how far from the base model the adapter may move)",
    "orpo": "Lambda (ORPO: weight of the odds-ratio term)",
}
PAIRS_SUFFIX = "-pairs"
OTHERS_SUFFIX = "-pairs-others"  # pairs that reject other writers' text: a folder apart from the model's


def is_preference(objective: str) -> bool:
    return objective != "sft"


def parse_beta(text: str, objective: str) -> float:
    """The beta (DPO) or lambda (ORPO) typed in the form: a positive, finite number."""
    name = "lambda" if objective == "orpo" else "beta"
    try:
        value = float(text.strip())
    except ValueError:
        raise MorrisError(f"{name}: {text.strip()!r} is not a number; try 0.1") from None
    if not math.isfinite(value) or value <= 0:
        raise MorrisError(f"{name} must be a positive number, got {text.strip()}; try 0.1")
    return value


def data_kind(data_dir: Path) -> str | None:
    """The kind of `data_dir`, "pairs" or "chat", by the first record of its train.jsonl; None when there
    is no readable record."""
    try:
        with open(Path(data_dir) / "train.jsonl", encoding="utf-8") as fh:
            line = next((line for line in fh if line.strip()), "")
        record = json.loads(line) if line else None
    except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON: nothing to judge by
        return None
    if not isinstance(record, dict):
        return None
    if "chosen" in record:
        return "pairs"
    return "chat" if "messages" in record else None


def pairs_dir_for(data_dir: Path, others: bool = False) -> Path:
    """The sibling folder pairs built from `data_dir` go to: data/processed -> data/processed-pairs, or
    data/processed-pairs-others when the rejected side is other writers' text."""
    data_dir = Path(data_dir)
    if not data_dir.name:  # "." or "/": name the sibling after the real folder
        data_dir = data_dir.resolve()
    return data_dir.with_name(data_dir.name + (OTHERS_SUFFIX if others else PAIRS_SUFFIX))


def check_data_kind(data_dir: Path, objective: str) -> None:
    """MorrisError, naming the fix on this screen, when the folder holds the wrong kind for `objective`."""
    kind = data_kind(data_dir)
    if is_preference(objective) and kind == "chat":
        raise MorrisError(
            f"{data_dir} holds chat examples, not preference pairs; press Build pairs to make "
            f"{pairs_dir_for(data_dir)} from it, or pick a pairs folder"
        )
    if not is_preference(objective) and kind == "pairs":
        raise MorrisError(
            f"{data_dir} holds preference pairs; choose a preference objective (ORPO or DPO) for it, "
            "or pick the prepared chat data"
        )
