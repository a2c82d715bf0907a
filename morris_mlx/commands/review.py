"""`morris review FILE|-`: list what a person must check in a generated article before publishing it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.errors import MorrisError

EXAMPLE = """examples:
  morris review article.md                       # Markdown checklist; exit 1 when anything needs checking
  morris generate "open RAN" | morris review -   # review what was just written
  morris review articles.jsonl --json            # every article of a batch run, as JSON
  morris review article.md --adapter-path adapters/morris --terms review-terms.toml

It lists, with line:column positions: direct quotes and who they are attributed to; numbers, money and
percentages; dates; named people and organisations; sentences stating a fact about a named party; runs of
12+ words also found in the bundled corpus or the adapter's training data (read from its provenance); and
terms from a do-not-publish list (TOML, see data/README.md; default MORRIS_HOME/review-terms.toml if it
exists). Input: Markdown or plain text (front matter and the attribution footer are skipped), or JSONL
lines from `morris generate --batch` (positions then index each line's "text").
Exit codes: 0 nothing flagged, 1 something needs review, 2 bad input.
"""


@dataclass
class Item:
    text: str
    label: str
    line: int | None = None  # the JSONL line it came from
    topic: str | None = None
    adapter: str | None = None  # as the batch record names it


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris review",
        usage="morris review FILE|- [--json] [--adapter-path DIR] [--data DIR] [--terms FILE]",
        description="Check a generated article before it is published: list the quotes, figures, dates, "
        "names, claims about named parties and copied text a person must verify.",
        epilog=EXAMPLE,
    )
    p.add_argument("file", metavar="FILE|-", help="the article (Markdown, text or batch JSONL); - reads stdin")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown checklist")
    p.add_argument(
        "--adapter-path",
        metavar="DIR",
        help="the adapter that wrote it (a folder or a registry name): its training data is searched for "
        "copied spans (default: the adapter a batch record names)",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="DIR",
        help="another prepared data folder (train/valid.jsonl) to search for copied spans; repeatable",
    )
    p.add_argument("--terms", metavar="FILE", help="do-not-publish list (TOML); see data/README.md")
    return p


# Reading ---------------------------------------------------------------------------------------------


def read_source(name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read()
        where = "standard input"
    else:
        path = Path(name)
        if path.is_dir():
            raise MorrisError(f"{path} is a folder; pass an article file (Markdown, text or JSONL)")
        if not path.is_file():
            raise MorrisError(f"{path} does not exist; pass an article file, or - to read standard input")
        data = path.read_bytes()
        where = str(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MorrisError(f"{where} is not UTF-8 (line {line}); re-save it as UTF-8 text") from None
    if not text.strip():
        raise MorrisError(f"{where} is empty; there is nothing to review")
    return text


def parse_items(text: str, name: str) -> list[Item]:
    """One item for a Markdown or text article; one per line for JSONL from `morris generate --batch`."""
    first = text.lstrip()[:1]
    if not (name.lower().endswith(".jsonl") or first == "{"):
        return [Item(text=text, label=name)]
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MorrisError(f"{where} is not JSON ({exc.msg}); pass one article object a line") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise MorrisError(f'{where} has no "text" string; pass the JSONL `morris generate --batch` writes')
        topic = record.get("topic") if isinstance(record.get("topic"), str) else None
        adapter = record.get("adapter") if isinstance(record.get("adapter"), str) else None
        items.append(Item(record["text"], f"{name} line {n}", n, topic, adapter))
    if not items:
        raise MorrisError(f"{name} holds no articles")
    return items


# Reviewing -------------------------------------------------------------------------------------------


def adapter_dir(name: str) -> Path:
    """An adapter folder, or one the registry knows by that name (MorrisError if neither)."""
    from morris_mlx.registry import get_adapter

    return get_adapter(name).path


def reviewers_for(items: list[Item], args: Any) -> list[Any]:
    """A reviewer per item: the flag's adapter, else the one its batch record names (built once each)."""
    from morris_mlx.review import make_reviewer

    fixed = adapter_dir(args.adapter_path) if args.adapter_path else None
    made: dict[str | None, Any] = {}
    chosen = []
    for item in items:
        adapter: Path | None = fixed
        if adapter is None and item.adapter:
            adapter = Path(item.adapter)
        key = str(adapter) if adapter else None
        if key not in made:
            made[key] = make_reviewer(adapter, tuple(args.data), args.terms)
        chosen.append(made[key])
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for d in args.data:
        if not Path(d).is_dir():
            raise MorrisError(f"--data {d} is not a folder; pass a prepared data folder (train.jsonl, ...)")
    name = "standard input" if args.file == "-" else args.file
    items = parse_items(read_source(args.file), name)
    reviewers = reviewers_for(items, args)
    results = [(item, reviewer, reviewer.review(item.text)) for item, reviewer in zip(items, reviewers, strict=True)]
    flagged = any(flags for _, _, flags in results)
    if args.json:
        print(json.dumps(as_json(name, results), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(as_markdown(results))
    return 1 if flagged else 0


def as_markdown(results: list[tuple[Item, Any, list[Any]]]) -> str:
    from morris_mlx.review.checklist import to_markdown

    parts = []
    for item, reviewer, flags in results:
        title = item.label if len(results) > 1 or item.line else None
        if title and item.topic:
            title += f" ({item.topic})"
        notes = [f"copied spans were looked for in {'; '.join(reviewer.compared_with)}", *reviewer.notes]
        parts.append(to_markdown(flags, item.text, title=title, notes=notes))
    return "\n".join(parts)


def as_json(name: str, results: list[tuple[Item, Any, list[Any]]]) -> dict[str, Any]:
    from morris_mlx.review.checklist import to_json

    articles = []
    for item, reviewer, flags in results:
        articles.append(
            {
                "source": item.label,
                "line": item.line,
                "topic": item.topic,
                **to_json(flags, item.text),
                "compared_with": list(reviewer.compared_with),
                "notes": list(reviewer.notes),
            }
        )
    return {
        "source": name,
        "needs_review": any(a["needs_review"] for a in articles),
        "articles": articles,
    }
