"""stats.json (counts per split, drops by reason, token lengths) and the printed summary."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from morris_mlx.dataset.article import Article
from morris_mlx.dataset.chat import Example
from morris_mlx.dataset.clean import words
from morris_mlx.dataset.jsonl import SPLITS

HISTOGRAM_BINS = 8


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile: an actual example length, never an interpolation."""
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def token_summary(lengths: list[int], max_tokens: int) -> dict[str, Any]:
    if not lengths:
        return {"count": 0, "total": 0}
    values = sorted(lengths)
    width = math.ceil(max_tokens / HISTOGRAM_BINS)
    counts = Counter(min(v // width, HISTOGRAM_BINS - 1) for v in values)
    return {
        "count": len(values),
        "total": sum(values),
        "min": values[0],
        "mean": round(sum(values) / len(values), 1),
        "p50": _percentile(values, 50),
        "p90": _percentile(values, 90),
        "max": values[-1],
        # counts of examples in equal-width length bins from 0 to the token limit
        "histogram": {"bin_width": width, "counts": [counts.get(b, 0) for b in range(HISTOGRAM_BINS)]},
    }


def build_stats(
    *,
    splits: dict[str, list[Article]],
    examples: dict[str, list[Example]],
    read: int,
    dropped: list[dict[str, str]],
    removed_paragraphs: Counter,
    settings: dict[str, Any],
) -> dict[str, Any]:
    parts = Counter()
    for split in SPLITS:
        for example in examples[split]:
            if not example.extra:
                parts[example.article_id] = example.parts
    return {
        "settings": settings,
        "articles_read": read,
        "articles": {s: len(splits[s]) for s in SPLITS},
        "examples": {s: len(examples[s]) for s in SPLITS},
        "kinds": {s: dict(sorted(Counter(a.kind for a in splits[s]).items())) for s in SPLITS},
        "words": {s: sum(len(words(a.body)) for a in splits[s]) for s in SPLITS},
        "dropped": dict(sorted(Counter(d["reason"] for d in dropped).items())),
        "dropped_items": dropped,
        "removed_paragraphs": dict(sorted(removed_paragraphs.items())),
        "cut_articles": sum(1 for n in parts.values() if n > 1),
        "max_parts": max(parts.values(), default=0),
        "train_parts_beside": sum(e.extra for e in examples["train"]),
        "tokens": {
            **{s: token_summary([e.tokens for e in examples[s]], settings["max_seq_length"]) for s in SPLITS},
            "all": token_summary([e.tokens for s in SPLITS for e in examples[s]], settings["max_seq_length"]),
        },
        "split_articles": {
            s: [{"id": a.id, "title": a.title, "kind": a.kind, "parts": parts[a.id]} for a in splits[s]]
            for s in SPLITS
        },
    }


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "none"


def format_summary(stats: dict[str, Any], out: str) -> str:
    kept = sum(stats["articles"].values())
    lines = [
        f"prepared {kept} of {stats['articles_read']} articles -> {sum(stats['examples'].values())} examples "
        f"in {out}",
        f"  {'split':<6} {'articles':>8} {'examples':>8} {'words':>8}   tokens min / median / p90 / max",
    ]
    for split in SPLITS:
        tokens = stats["tokens"][split]
        lengths = (
            f"{tokens['min']} / {tokens['p50']} / {tokens['p90']} / {tokens['max']}"
            if tokens["count"]
            else "-"
        )
        lines.append(
            f"  {split:<6} {stats['articles'][split]:>8} {stats['examples'][split]:>8} "
            f"{stats['words'][split]:>8}   {lengths}"
        )
    settings = stats["settings"]
    lines += [
        f"  dropped: {_counts(stats['dropped'])}",
        f"  paragraphs removed: {_counts(stats['removed_paragraphs'])}",
        f"  cut into parts: {stats['cut_articles']} article(s), at most {stats['max_parts']} parts, to fit "
        f"{settings['max_seq_length']} tokens of {settings['tokenizer']}",
    ]
    if stats.get("train_parts_beside"):
        lines.append(
            f"  train also holds {stats['train_parts_beside']} part(s) of its articles beside the whole "
            f"articles, at most {settings['train_parts']} tokens each"
            + (f", {settings['parts_per_article']} per article" if settings.get("parts_per_article") else "")
        )
    if settings.get("open_parts") and (stats["cut_articles"] or stats.get("train_parts_beside")):
        lines.append("  parts that do not end their article are trained without an ending (open_parts)")
    return "\n".join(lines)
