"""What the data screen shows of a prepared data folder: stats.json as tables, read without assuming
its exact keys, and sample examples from train.jsonl. When stats.json is missing, counts and lengths
(in words) are measured from the split files instead."""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError
from morris_mlx.prompts import GENERATE_INSTRUCTION

SPLITS = ("train", "valid", "test")
STATS_FILENAME = "stats.json"


@dataclass
class Section:
    """One table: a title, column names, and rows of cells already formatted as text."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Example:
    topic: str
    system: str
    article: str


def resolve_data_dir(text: str) -> Path:
    """The folder as typed; a relative one is under the working directory, where `morris prepare` wrote it."""
    return Path(text.strip() or "data/processed").expanduser()


BARS = "▁▂▃▄▅▆▇█"


def histogram(value: Any) -> str | None:
    """A histogram ({"counts": [...], "bin_width": n}) as a one-line bar chart, else None."""
    if not isinstance(value, dict):
        return None
    counts = value.get("counts")
    if not isinstance(counts, list) or not counts or not all(isinstance(c, (int, float)) for c in counts):
        return None
    top = max(counts) or 1
    bars = "".join(" " if c == 0 else BARS[min(len(BARS) - 1, int(c / top * (len(BARS) - 1)))] for c in counts)
    width = value.get("bin_width")
    return f"{bars} (bins of {width})" if isinstance(width, (int, float)) else bars


def fmt(value: Any) -> str:
    bars = histogram(value)
    if bars is not None:
        return bars
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        if len(value) <= 6 and all(not isinstance(v, (dict, list)) for v in value):
            return ", ".join(fmt(v) for v in value)
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return f"{{{len(value)} keys}}"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or (
        isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)
    )


def stats_sections(stats: dict[str, Any]) -> list[Section]:
    """Tables for any stats.json shape: scalars in a summary, a dict of scalars as key/value rows, a dict
    of dicts (per split, per reason) as a grid whose columns are the inner keys."""
    summary: list[list[str]] = []
    sections: list[Section] = []
    for key, value in stats.items():
        title = str(key).replace("_", " ")
        if _is_scalar(value) or value == {}:
            summary.append([title, "none" if value in ({}, []) else fmt(value)])
        elif isinstance(value, dict) and all(_is_scalar(v) for v in value.values()):
            sections.append(Section(title, ["", "value"], [[str(k), fmt(v)] for k, v in value.items()]))
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            columns: list[str] = []
            for inner in value.values():
                columns += [str(c) for c in inner if str(c) not in columns]
            rows = [[str(k)] + [fmt(v.get(c, "")) for c in columns] for k, v in value.items()]
            sections.append(Section(title, ["", *columns], rows))
        elif isinstance(value, dict):
            sections.append(Section(title, ["", "value"], [[str(k), fmt(v)] for k, v in value.items()]))
        else:
            summary.append([title, fmt(value)])
    if summary:
        sections.insert(0, Section("summary", ["", "value"], summary))
    return sections


def read_stats(data_dir: Path) -> dict[str, Any] | None:
    """stats.json as a dict, None when there is none; MorrisError when it is not a JSON object."""
    path = Path(data_dir) / STATS_FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MorrisError(f"{path} is not valid JSON ({exc}); run `morris prepare` again") from None
    if not isinstance(data, dict):
        raise MorrisError(f"{path} holds no JSON object; run `morris prepare` again")
    return data


def _example(record: Any) -> Example | None:
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        return None
    by_role: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            by_role.setdefault(str(message.get("role")), message["content"])
    if "assistant" not in by_role:
        return None
    topic = by_role.get("user", "").strip()
    lead = GENERATE_INSTRUCTION.split("{topic}")[0]
    if topic.startswith(lead):  # the standard request: show just its topic
        topic = topic[len(lead):].strip()
    return Example(topic=topic, system=by_role.get("system", ""), article=by_role["assistant"])


def read_examples(path: Path, limit: int = 200) -> list[Example]:
    """The first `limit` readable chat examples of a split file (bad lines skipped)."""
    if not Path(path).is_file():
        return []
    found: list[Example] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in itertools.islice(fh, limit * 2):
            try:
                example = _example(json.loads(line))
            except ValueError:
                continue
            if example is not None:
                found.append(example)
            if len(found) >= limit:
                break
    return found


def measure_splits(data_dir: Path) -> dict[str, Any]:
    """Counts and article lengths in words per split, for a folder with no stats.json."""
    examples: dict[str, int] = {}
    words: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        path = Path(data_dir) / f"{split}.jsonl"
        if not path.is_file():
            continue
        lengths = [len(e.article.split()) for e in read_examples(path, limit=10**9)]
        examples[split] = len(lengths)
        if lengths:
            words[split] = {
                "min": min(lengths),
                "median": statistics.median(lengths),
                "max": max(lengths),
            }
    if not examples:
        raise MorrisError(
            f"{data_dir} holds no train/valid/test.jsonl; run `morris prepare` or pick another folder"
        )
    return {"examples": examples, "article words (measured; no stats.json)": words}
