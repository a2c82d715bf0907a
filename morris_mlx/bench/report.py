"""JSON measurements -> a Markdown table and the ratios the issues set targets on."""

from __future__ import annotations

from typing import Any

from morris_mlx.bench.record import median

COLUMNS = [
    ("train_tokens_per_second", "train tok/s"),
    ("peak_memory_gb", "peak GB"),
    ("time_to_first_token_s", "TTFT s"),
    ("prefill_tokens_per_second", "prefill tok/s"),
    ("decode_tokens_per_second", "decode tok/s"),
]

# (label, numerator measurement, denominator measurement, figure, target)
RATIOS = [
    (
        "MLX training: ours / plain mlx-lm",
        "train:mlx:ours",
        "train:mlx:plain",
        "train_tokens_per_second",
        0.95,
    ),
    ("training: MLX / torch", "train:mlx:ours", "train:torch:ours", "train_tokens_per_second", None),
    (
        "MLX decode: fused adapter / no adapter",
        "generate:mlx:fused",
        "generate:mlx:base",
        "decode_tokens_per_second",
        0.9,
    ),
    (
        "MLX decode: ours (no adapter) / plain mlx-lm",
        "generate:mlx:base",
        "generate:mlx:plain",
        "decode_tokens_per_second",
        None,
    ),
    (
        "MLX decode: fused / adapter apart",
        "generate:mlx:fused",
        "generate:mlx:apart",
        "decode_tokens_per_second",
        None,
    ),
    (
        "torch decode: fused adapter / no adapter",
        "generate:torch:fused",
        "generate:torch:base",
        "decode_tokens_per_second",
        0.9,
    ),
    (
        "torch decode: ours fused / plain generate + unmerged PEFT",
        "generate:torch:fused",
        "generate:torch:plain-peft",
        "decode_tokens_per_second",
        2.5,
    ),
    (
        "decode: MLX fused / torch fused",
        "generate:mlx:fused",
        "generate:torch:fused",
        "decode_tokens_per_second",
        None,
    ),
]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return str(value)


def ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {r["measurement"]: r for r in records}
    out = []
    for label, num, den, figure, target in RATIOS:
        if num in by_name and den in by_name:
            a, b = median(by_name[num], figure), median(by_name[den], figure)
            if a and b:
                out.append(
                    {
                        "ratio": label,
                        "value": a / b,
                        "target": target,
                        "met": None if target is None else a / b >= target,
                    }
                )
    return out


def markdown(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no measurements\n"
    first = records[0]
    lines = [
        f"Machine: {first['machine']}  ",
        f"Versions: {first['versions']}  ",
        f"Date: {first['date']}",
        "",
        "| measurement | model | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for rec in records:
        cells = [_fmt(median(rec, key)) for key, _ in COLUMNS]
        lines.append(
            f"| {rec['measurement']} | {rec['settings'].get('model', '')} | " + " | ".join(cells) + " |"
        )
    found = ratios(records)
    if found:
        lines += ["", "| ratio (medians) | value | target |", "|---|---|---|"]
        for r in found:
            target = "" if r["target"] is None else f">= {r['target']} ({'met' if r['met'] else 'NOT met'})"
            lines.append(f"| {r['ratio']} | {r['value']:.2f}x | {target} |")
    return "\n".join(lines) + "\n"
