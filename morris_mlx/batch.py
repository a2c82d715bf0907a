"""Batch generation's files: the topics file it reads and the articles JSONL it writes.

Output safety: finished articles are appended, one whole fsynced line each, to a journal beside the
output (`<out>.partial`), and the output itself is written atomically, in input order, only when every
topic is done. So `--out` either does not exist or is complete, however the run ends; and a run cut
short (Ctrl-C, a crash, a lost laptop lid) loses nothing already generated, because running the same
command again takes the journal's articles and generates only the rest. Appending straight to the
output would have made a partial file look complete and, with continuous batching finishing articles
out of order, would have left it out of input order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.atomic import write_jsonl
from morris_mlx.errors import MorrisError

log = logging.getLogger("morris")

ITEM_KEYS = {"topic", "system_prompt", "seed", "max_tokens"}
JOURNAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class BatchItem:
    """One topic of the batch file, with the settings its line overrides (None: the command's)."""

    topic: str
    system_prompt: str | None = None
    seed: int | None = None
    max_tokens: int | None = None


# Reading ------------------------------------------------------------------------------------------------


def read_batch_file(path: str | os.PathLike) -> list[BatchItem]:
    """The topics in `path`: JSONL when it ends in .jsonl or its first line starts with `{`, else plain
    text with one topic a line. Blank lines and `#` comments are skipped in both."""
    path = Path(path)
    if not path.is_file():
        raise MorrisError(f"batch file {path} does not exist; pass a file with one topic a line")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is not part of the first topic
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MorrisError(f"batch file {path} is not UTF-8 (line {line}); re-save it as UTF-8 text") from None
    lines = text.splitlines()
    numbered = [
        (n, s.strip()) for n, s in enumerate(lines, 1) if s.strip() and not s.lstrip().startswith("#")
    ]
    if path.suffix.lower() == ".jsonl" or (numbered and numbered[0][1].startswith("{")):
        items = [_jsonl_item(path, n, line) for n, line in numbered]
    else:
        items = [BatchItem(topic=line) for _, line in numbered]
    if not items:
        raise MorrisError(f"batch file {path} holds no topics; put one topic on each line")
    return items


def _jsonl_item(path: Path, n: int, line: str) -> BatchItem:
    where = f"batch file {path} line {n}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MorrisError(f"{where} is not JSON ({exc.msg}); write one object a line") from None
    if not isinstance(obj, dict):
        raise MorrisError(f'{where} is not a JSON object; write {{"topic": "..."}} on each line')
    unknown = sorted(set(obj) - ITEM_KEYS)
    if unknown:
        raise MorrisError(f"{where} has unknown key {unknown[0]!r}; use only {', '.join(sorted(ITEM_KEYS))}")
    topic = obj.get("topic")
    if not isinstance(topic, str) or not topic.strip():
        raise MorrisError(f'{where} lacks a "topic" string; add "topic": "..." to it')
    system_prompt = obj.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise MorrisError(f'{where}: "system_prompt" must be a string')
    seed, max_tokens = obj.get("seed"), obj.get("max_tokens")
    if seed is not None and not _whole(seed):
        raise MorrisError(f'{where}: "seed" must be a whole number')
    if max_tokens is not None and not (_whole(max_tokens) and max_tokens > 0):
        raise MorrisError(f'{where}: "max_tokens" must be a positive whole number')
    return BatchItem(topic.strip(), system_prompt or None, seed, max_tokens)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no seed


# Writing ------------------------------------------------------------------------------------------------


def journal_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + JOURNAL_SUFFIX)


def load_journal(
    out: str | os.PathLike, expected: list[dict[str, Any]]
) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Articles a cut-short run already finished: (the ones this run takes, by input index; the others).
    One is taken only when its topic and its whole recipe (model, adapter, backend, settings) match
    `expected[index]`, so changing a flag between runs never mixes two recipes in one file. The others
    stay in the journal for a run with their settings. A torn last line (a crash mid-write) is skipped."""
    path = journal_path(out)
    if not path.is_file():
        return {}, []
    done: dict[int, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            index = record["index"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if isinstance(index, int) and 0 <= index < len(expected) and _same_recipe(record, expected[index]):
            done[index] = record
        else:
            others.append(record)
    if others:
        log.warning(
            "%s: %d article(s) from another recipe or topic list are not used; they stay there for a run "
            "with their settings (--force clears them)",
            path,
            len(others),
        )
    return done, others


def _same_recipe(record: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in expected.items())


class Journal:
    """Appends whole, fsynced JSON lines, so each line on disk is one complete article."""

    def __init__(self, out: str | os.PathLike, kept: Iterable[dict[str, Any]]) -> None:
        # Rewritten first with only the articles kept, so a torn last line from a crash cannot swallow
        # the next article appended after it.
        self.path = journal_path(out)
        write_jsonl(self.path, list(kept))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def finish_output(
    out: str | os.PathLike, records: dict[int, dict[str, Any]], others: Sequence[dict[str, Any]] = ()
) -> None:
    """Write every article to `out` in input order (atomically), then drop the journal, or keep in it
    only the `others` of another recipe that this run did not use."""
    rows = [{k: v for k, v in records[i].items() if k != "index"} for i in sorted(records)]
    write_jsonl(out, rows)
    if others:
        write_jsonl(journal_path(out), list(others))
        log.warning(
            "kept %d article(s) of another recipe in %s; delete it (or pass --force next time) if you do not "
            "need them",
            len(others),
            journal_path(out),
        )
    else:
        journal_path(out).unlink(missing_ok=True)
