"""Preference pairs: the prompt of a prepared example, the writer's reply (chosen) and another model's
reply to the same prompt (rejected), for DPO or ORPO training.

The file format is TRL's conversational preference format, one JSON object a line:

    {"prompt": [{"role": "system", ...}, {"role": "user", ...}],
     "chosen": [{"role": "assistant", "content": "the writer's article"}],
     "rejected": [{"role": "assistant", "content": "the base model's article"}]}

so a pairs folder also trains with TRL's DPOTrainer or mlx-lm-lora as it stands. Tokenizing follows the
supervised examples (mlx-lm's ChatDataset with a masked prompt): a reply's tokens are the chat template
over prompt + reply, and the loss starts where the templated prompt (with its generation prompt) ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.dataset.jsonl import check_example, read_json_lines
from morris_mlx.errors import MorrisError

PAIR_SPLITS = ("train", "valid")
MAKE_PAIRS = "build them with `morris pairs --data PREPARED --out PAIRS`"


def pair_from_example(example: dict[str, Any], rejected: str) -> dict[str, Any]:
    """A preference pair from a prepared chat example: its reply chosen over `rejected`."""
    messages = example["messages"]
    return {
        "prompt": messages[:-1],
        "chosen": [messages[-1]],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def check_pair(row: object, where: str) -> dict[str, Any]:
    """`row` if it is a preference pair as `pair_from_example` writes it."""
    if isinstance(row, dict) and "messages" in row and "chosen" not in row:
        raise MorrisError(f"{where}: a supervised chat example, not a preference pair; {MAKE_PAIRS}")
    if not isinstance(row, dict) or not all(k in row for k in ("prompt", "chosen", "rejected")):
        raise MorrisError(f"{where}: expected an object with 'prompt', 'chosen' and 'rejected'; {MAKE_PAIRS}")
    if not isinstance(row["prompt"], list) or not row["prompt"]:
        raise MorrisError(f"{where}: 'prompt' must be a non-empty list of messages")
    for key in ("chosen", "rejected"):
        reply = row[key]
        if not (isinstance(reply, list) and len(reply) == 1 and isinstance(reply[0], dict)):
            raise MorrisError(f"{where}: '{key}' must be a list holding one assistant message")
        check_example({"messages": [*row["prompt"], reply[0]]}, where)
        if not reply[0]["content"].strip():
            raise MorrisError(f"{where}: the {key} reply is empty; rebuild the pairs")
    return row


def load_pairs(data_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """The checked pairs of `split` (train or valid) in `data_dir`."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise MorrisError(f"{path} does not exist; {MAKE_PAIRS}")
    rows = [check_pair(row, where) for row, where in read_json_lines(path, MAKE_PAIRS)]
    if not rows:
        raise MorrisError(f"{path} holds no pairs; {MAKE_PAIRS}")
    return rows


@dataclass
class PairExample:
    """Token ids of prompt + chosen and prompt + rejected; each offset is where its reply's loss starts."""

    chosen: list[int]
    chosen_offset: int
    rejected: list[int]
    rejected_offset: int

    @property
    def length(self) -> int:
        return max(len(self.chosen), len(self.rejected))


def tokenize_pair(row: dict[str, Any], tokenizer: Any) -> PairExample:
    """The pair's two sequences through `tokenizer`'s chat template (a transformers tokenizer, or mlx-lm's
    wrapper around one)."""
    from jinja2 import TemplateError

    try:
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False)
        sequences = [
            tokenizer.apply_chat_template(row["prompt"] + row[key], return_dict=False)
            for key in ("chosen", "rejected")
        ]
    except TemplateError as exc:
        raise MorrisError(
            f"the model's chat template rejects a preference pair ({exc}); build the pairs for this model"
        ) from None
    chosen, rejected = ([int(t) for t in s] for s in sequences)
    return PairExample(chosen, len(prompt), rejected, len(prompt))


def tokenize_pairs(rows: list[dict[str, Any]], tokenizer: Any, max_seq_length: int) -> list[PairExample]:
    """Every pair tokenized, checked to leave reply tokens to learn within `max_seq_length`."""
    pairs = [tokenize_pair(row, tokenizer) for row in rows]
    too_long = sum(p.chosen_offset >= max_seq_length for p in pairs)
    if too_long:
        raise MorrisError(
            f"{too_long} pairs have prompts of {max_seq_length}+ tokens and no reply left to compare; "
            "raise train.max_seq_length or shorten the system prompt"
        )
    return pairs
