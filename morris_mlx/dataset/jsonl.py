"""Reading a prepared split (chat-format JSONL, as mlx-lm reads it) with errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

from morris_mlx.errors import MorrisError

SPLITS = ("train", "valid", "test")
ROLES = ("system", "user", "assistant")


def check_example(example: object, where: str) -> dict:
    """`example` if it is {"messages": [{"role", "content"}, ...]} ending with an assistant turn."""
    if not isinstance(example, dict):
        raise MorrisError(f"{where}: expected a JSON object with 'messages', got {type(example).__name__}")
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MorrisError(f"{where}: missing a non-empty 'messages' list; re-run `morris prepare`")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise MorrisError(f"{where}: messages[{i}] must be an object with 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise MorrisError(
                f"{where}: messages[{i}] has role {message.get('role')!r}; expected one of {', '.join(ROLES)}"
            )
        if not isinstance(message.get("content"), str):
            raise MorrisError(f"{where}: messages[{i}] has no text 'content'")
    if messages[-1]["role"] != "assistant":
        raise MorrisError(
            f"{where}: the last message must be the assistant's reply, got {messages[-1]['role']!r}"
        )
    return example


def load_split(data_dir: str | Path, split: str) -> list[dict]:
    """The examples of `split` (train, valid or test) in `data_dir`, each validated."""
    if split not in SPLITS:
        raise MorrisError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise MorrisError(f"{path} does not exist; run `morris prepare --out {data_dir}` first")
    examples = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    example = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MorrisError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
                examples.append(check_example(example, where))
    except UnicodeDecodeError as exc:
        raise MorrisError(f"{path}: not UTF-8 text ({exc.reason}); re-run `morris prepare`") from None
    if not examples:
        raise MorrisError(f"{path} is empty; re-run `morris prepare` with more articles")
    return examples
