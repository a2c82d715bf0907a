"""The evaluation report: one JSON document, rendered as Markdown and as a hand-written SVG bar chart.

A report is a plain dict (see run.py) whose `measures` list holds one entry per number a reader should
see: base value, adapter value, the target it is judged against, which direction is better, and the
verdict. `summarise` turns it into rows the TUI can show as a table.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from morris_mlx.atomic import write_json, write_text

REL_TOL = 1e-6


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def verdict(better: str, base: float | None, adapter: float | None, target: float | None = None) -> str:
    """'better', 'worse' or 'same' for the adapter against the base; 'n/a' where it cannot be judged.

    better is "lower", "higher", "closer" (to the target) or "info" (shown, not judged).
    """
    if better == "info" or not (is_number(base) and is_number(adapter)):
        return "n/a"
    if better == "closer":
        if not is_number(target):
            return "n/a"
        base, adapter = abs(base - target), abs(adapter - target)
    scale = max(abs(base), abs(adapter), 1e-12)
    if abs(adapter - base) <= REL_TOL * scale:
        return "same"
    improved = adapter < base if better in ("lower", "closer") else adapter > base
    return "better" if improved else "worse"


def measure(
    key: str,
    group: str,
    label: str,
    meaning: str,
    base: float | None,
    adapter: float | None,
    better: str,
    target: float | None = None,
    target_label: str = "",
    unit: str = "",
) -> dict[str, Any]:
    """One row of the report, with its verdict worked out."""
    def clean(x: float | None) -> float | None:
        return float(x) if is_number(x) else None

    return {
        "key": key,
        "group": group,
        "label": label,
        "meaning": meaning,
        "unit": unit,
        "base": clean(base),
        "adapter": clean(adapter),
        "target": clean(target),
        "target_label": target_label,
        "better": better,
        "verdict": verdict(better, base, adapter, target),
    }


def fmt(x: float | None, unit: str = "") -> str:
    if not is_number(x):
        return "n/a"
    if unit == "share":
        return f"{100 * x:.0f}%"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


VERDICT_MARK = {"better": "✓ better", "worse": "✗ worse", "same": "= same", "n/a": ""}
GOAL = {"lower": "lower is better", "higher": "higher is better", "closer": "closer to target is better",
        "info": "for reference"}


def change(m: dict[str, Any]) -> str:
    """Direction and size of the move from base to adapter, e.g. '↓ 23.1%'."""
    base, adapter = m["base"], m["adapter"]
    if not (is_number(base) and is_number(adapter)):
        return ""
    if abs(adapter - base) <= REL_TOL * max(abs(base), abs(adapter), 1e-12):
        return "→"
    arrow = "↑" if adapter > base else "↓"
    if m["unit"] == "share":
        return f"{arrow} {100 * abs(adapter - base):.0f} pts"
    if base:
        return f"{arrow} {100 * abs(adapter - base) / abs(base):.1f}%"
    return arrow


class SummaryRow(NamedTuple):
    measure: str
    base: str
    adapter: str
    target: str
    change: str
    verdict: str


def summarise(report: dict[str, Any]) -> list[SummaryRow]:
    """One row per measure: label, base, adapter, target, change and verdict, all as display strings."""
    rows = []
    for m in report["measures"]:
        rows.append(
            SummaryRow(
                measure=m["label"] + (f" ({m['unit']})" if m["unit"] and m["unit"] != "share" else ""),
                base=fmt(m["base"], m["unit"]),
                adapter=fmt(m["adapter"], m["unit"]),
                target=fmt(m["target"], m["unit"]) if m["target"] is not None else "",
                change=change(m),
                verdict=VERDICT_MARK[m["verdict"]],
            )
        )
    return rows


def headline(report: dict[str, Any]) -> list[str]:
    """The few sentences a reader needs before the tables."""
    lines = []
    ppl = report.get("perplexity", {})
    writer = ppl.get("writer_text") or ppl.get("writer")
    voice = report.get("voice") or {}
    if writer and is_number(writer.get("change")):
        text = (
            f"Perplexity on the writer's held-out articles went from {fmt(writer['base'])} to "
            f"{fmt(writer['adapter'])} ({100 * writer['change']:+.1f}%)"
        )
        if is_number(voice.get("contrast_change")):
            spec = voice.get("specificity")
            text += (
                f"; on other writing about the same topics (the contrast corpus) it moved "
                f"{100 * voice['contrast_change']:+.1f}%, so specificity (the writer's drop over the "
                f"contrast drop) is {fmt(spec) if is_number(spec) else 'undefined'}. An adapter that learned "
                "the writer, not just the topics, lowers the first much more than the second."
            )
        else:
            text += "."
        lines.append(text)
    style = [m for m in report["measures"] if m["group"] != "Perplexity" and m["verdict"] in ("better", "worse")]
    if style:
        n_better = sum(m["verdict"] == "better" for m in style)
        lines.append(
            f"On the style and degeneration measures of generated text the adapter did better than the base "
            f"model on {n_better} of {len(style)}."
        )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    out = [
        f"# Evaluation of adapter `{meta['adapter_name']}`",
        "",
        f"- adapter: `{meta['adapter_path']}`",
        f"- base model: `{meta['model_dir']}` on the {meta['backend']} backend",
        f"- data: `{meta['data_dir']}` ({meta['train_articles']} training articles, "
        f"{meta['test_articles']} held-out)",
        f"- generation: {meta['prompts']} prompts ({meta['heldout_prompts']} asking "
        f"{meta.get('heldout_distinct', meta['heldout_prompts'])} held-out instructions, "
        f"{meta['offtopic_prompts']} off-topic), up to {meta['max_tokens']} tokens, temperature "
        f"{meta['temp']}, top-p {meta['top_p']}, seed {meta['seed']} (same seeds for base and adapter)",
        f"- created {meta['created']}; took {meta['seconds']:.0f} s"
        + (" (the base model's replies and perplexities from an earlier eval with the same inputs)"
           if meta.get("base_cached") else ""),
        "",
        "## In short",
        "",
        *[f"{line}" + "\n" for line in headline(report)],
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in report["measures"]:
        groups.setdefault(m["group"], []).append(m)
    for group, rows in groups.items():
        out += [f"## {group}", "", "| Measure | Base | Adapter | Target | Change | Verdict | What it means |",
                "|---|---:|---:|---:|---|---|---|"]
        for m, row in zip(rows, summarise({"measures": rows}), strict=True):
            target = f"{row.target} ({m['target_label']})" if row.target else ""
            meaning = f"{m['meaning']}; {GOAL[m['better']]}"
            out.append(
                f"| {row.measure} | {row.base} | {row.adapter} | {target} | {row.change} | {row.verdict} | {meaning} |"
            )
        out.append("")
    attribution = report.get("attribution") or {}
    out += ["## The attribution classifier", ""]
    if attribution.get("available"):
        out.append(
            f"Trained on {attribution['writer_texts']} passages of the writer's training articles against "
            f"{attribution['generic_texts']} texts that are not the writer's ({attribution['generic_sources']}, "
            "each source weighing half); "
            f"character 2-4-gram TF-IDF over the {attribution['max_features']} most widespread n-grams, "
            f"logistic regression with L2 = {attribution['l2']:g}, both chosen by {attribution['folds']}-fold "
            f"cross-validation, where it told them apart with balanced accuracy "
            f"{100 * attribution['cv_accuracy']:.0f}%. The replies it scores answer other prompts than those "
            "it learned from."
        )
        if attribution.get("offtopic_adapter_share") is not None and attribution.get("scored") is not None:
            out += ["", f"Shares count the {attribution['scored']} replies to held-out prompts: the classifier "
                    "learned the writer's topics only. Off-topic replies given to the writer, not counted: "
                    f"base {fmt(attribution.get('offtopic_base_share'), 'share')}, adapter "
                    f"{fmt(attribution.get('offtopic_adapter_share'), 'share')}."]
        if not attribution.get("reliable", True):
            out += ["", "**Too weak to judge by**: with so few generic texts it is not much better than a coin "
                    "toss, so its numbers carry no verdict. Give other writers' articles with --contrast, or train "
                    "on more of the writer's articles."]
    else:
        out.append(f"Not run: {attribution.get('reason', 'no generic texts')}.")
    out += ["", "## How to read this", ""]
    out += [
        "- **Perplexity** is how surprised a model is by a text (lower: it predicts the text better). Only "
        "the article tokens are scored, not the prompt.",
        "- **Burrows' Delta** compares the frequencies of the corpus's most common words (mostly function "
        "words, which carry style more than topic); 0 means the same profile as the writer's corpus.",
        "- **Character n-gram distance** compares 3-character sequences (Kešelj's CNG, 0 same to 4 disjoint).",
        "- **Style markers** are rates per 1,000 words; the target is the writer's own rate in the training "
        "corpus, and closer is better.",
        "- **Degeneration**: distinct-n is the share of unique word n-grams (loops lower it); the longest "
        "span shared with a training article catches recitation. Targets there come from the writer's "
        "held-out articles cut to the same length as the generated texts.",
        "",
        "## Samples",
        "",
    ]
    for sample in report.get("samples", [])[:3]:
        out += [f"### {sample['prompt']}", "", "**Base:**", "", _quote(sample["base"]), "",
                "**Adapter:**", "", _quote(sample["adapter"]), ""]
    return "\n".join(out).rstrip() + "\n"


def _quote(text: str, limit: int = 800) -> str:
    text = text.strip() or "(empty)"
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def to_svg(report: dict[str, Any]) -> str:
    """Horizontal bars, base (grey) vs adapter (blue) per measure, each row scaled to its own largest
    value; a dark tick marks the target where there is one."""
    rows = [m for m in report["measures"] if m["base"] is not None or m["adapter"] is not None]
    label_w, bar_w, value_w, row_h, top = 300, 380, 150, 40, 70
    width = label_w + bar_w + value_w + 20
    height = top + row_h * len(rows) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">'
        f'{escape(report["meta"]["adapter_name"])}: base vs adapter</text>',
        '<rect x="10" y="38" width="12" height="12" fill="#9e9e9e"/>'
        '<text x="27" y="49">base</text>'
        '<rect x="80" y="38" width="12" height="12" fill="#1f77b4"/>'
        '<text x="97" y="49">adapter</text>'
        '<line x1="160" y1="36" x2="160" y2="52" stroke="#d62728" stroke-width="2"/>'
        '<text x="166" y="49">target (writer)</text>'
        f'<text x="{width - 10}" y="49" text-anchor="end" fill="#555">each row on its own scale</text>',
    ]
    for i, m in enumerate(rows):
        y = top + i * row_h
        values = [abs(v) for v in (m["base"], m["adapter"], m["target"]) if is_number(v)]
        scale = max(values, default=0.0) or 1.0
        mark = {"better": " ✓", "worse": " ✗"}.get(m["verdict"], "")
        parts.append(f'<text x="10" y="{y + 16}">{escape(m["label"])}{mark}</text>')
        parts.append(f'<text x="10" y="{y + 30}" fill="#777" font-size="10">{escape(GOAL[m["better"]])}</text>')
        for j, (key, colour) in enumerate((("base", "#9e9e9e"), ("adapter", "#1f77b4"))):
            value = m[key]
            length = bar_w * abs(value) / scale if is_number(value) else 0.0
            by = y + 4 + j * 15
            parts.append(f'<rect x="{label_w}" y="{by}" width="{length:.1f}" height="13" fill="{colour}"/>')
            parts.append(
                f'<text x="{label_w + bar_w + 8}" y="{by + 11}">{escape(key)}: {escape(fmt(value, m["unit"]))}</text>'
            )
        if is_number(m["target"]):
            tx = label_w + bar_w * abs(m["target"]) / scale
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y + 1}" x2="{tx:.1f}" y2="{y + 35}" stroke="#d62728" stroke-width="2"/>'
            )
        parts.append(
            f'<line x1="10" y1="{y + row_h - 1}" x2="{width - 10}" y2="{y + row_h - 1}" stroke="#eeeeee"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def report_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """FILE.json, FILE.md and FILE.svg for `out` (a .json/.md/.svg suffix on it is dropped)."""
    out = Path(out)
    if out.suffix in (".json", ".md", ".svg"):
        out = out.with_suffix("")
    return out.with_name(out.name + ".json"), out.with_name(out.name + ".md"), out.with_name(out.name + ".svg")


def finite(obj: Any) -> Any:
    """A copy with NaN and infinities as None: strict JSON readers refuse them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path, Path]:
    """Render everything first, then write each file atomically, so a failure leaves no partial report."""
    json_path, md_path, svg_path = report_paths(out)
    report = finite(report)
    markdown, svg = to_markdown(report), to_svg(report)
    write_json(json_path, report)
    write_text(md_path, markdown)
    write_text(svg_path, svg)
    return json_path, md_path, svg_path


def read_report(path: str | Path) -> dict[str, Any] | None:
    """A report written by `write_report` (FILE or FILE.json), or None when there is none or it is unreadable."""
    json_path = report_paths(path)[0]
    try:
        report = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and "measures" in report else None
