"""Reading a prepared split (chat-format JSONL, as mlx-lm reads it) with errors naming file and line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from morris_mlx.errors import MorrisError

SPLITS = ("train", "valid", "test")
ROLES = ("system", "user", "assistant")


def check_example(example: object, where: str) -> dict:
    """`example` if it is {"messages": [{"role", "content"}, ...]} ending with an assistant turn."""
    if not isinstance(example, dict):
        raise MorrisError(f"{where}: expected a JSON object with 'messages', got {type(example).__name__}")
    messages = example.get("messages")
    if "chosen" in example and messages is None:
        raise MorrisError(f"{where}: a preference pair, not a chat example; train it with --objective dpo or orpo")
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
    if not isinstance(example.get("continues", False), bool):
        raise MorrisError(f"{where}: 'continues' must be true or false (true: the reply is cut, not ended)")
    if messages[-1]["role"] != "assistant":
        raise MorrisError(
            f"{where}: the last message must be the assistant's reply, got {messages[-1]['role']!r}"
        )
    return example


def read_json_lines(path: Path, utf8_fix: str) -> Iterator[tuple[object, str]]:
    """(record, "FILE line N") for each non-blank line; bad JSON or non-UTF-8 text is a MorrisError."""
    with open(path, encoding="utf-8") as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    yield json.loads(line), where
                except json.JSONDecodeError as exc:
                    raise MorrisError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except UnicodeDecodeError as exc:
            raise MorrisError(f"{path}: not UTF-8 text ({exc.reason}); {utf8_fix}") from None


def load_split(data_dir: str | Path, split: str) -> list[dict]:
    """The examples of `split` (train, valid or test) in `data_dir`, each validated."""
    if split not in SPLITS:
        raise MorrisError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise MorrisError(f"{path} does not exist; run `morris prepare --out {data_dir}` first")
    examples = [
        check_example(example, where) for example, where in read_json_lines(path, "re-run `morris prepare`")
    ]
    if not examples:
        raise MorrisError(f"{path} is empty; re-run `morris prepare` with more articles")
    check_against_stats(Path(data_dir), f"{split}.jsonl")
    return examples


def check_against_stats(data_dir: Path, name: str) -> bool:
    """Compare a split with the size and sha256 `morris prepare` recorded in stats.json. A mismatch is a
    warning, not an error: editing the data by hand is legitimate, but a cut or damaged copy should not
    train silently. Returns True when the file matches (or nothing was recorded)."""
    try:
        recorded = json.loads((data_dir / "stats.json").read_text(encoding="utf-8"))["files"][name]
        size, sha256 = int(recorded["size"]), str(recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return True  # prepared by hand or by an older version: nothing to compare with
    from morris_mlx.atomic import sha256_file

    path = data_dir / name
    actual = path.stat().st_size
    if actual == size and sha256_file(path) == sha256:
        return True
    what = f"{actual:,} bytes, {size:,} then" if actual != size else "same size, other bytes"
    logging.getLogger("morris").warning(
        "%s has changed since `morris prepare` wrote it (%s); if you did not edit it, run `morris prepare` again",
        path,
        what,
    )
    return False
