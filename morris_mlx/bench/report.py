"""JSON measurements -> a Markdown table, the ratios the issues set targets on, and the absolute limits
(peak memory of the 7B QLoRA configuration, decode bandwidth of a 7B model).

Records are compared only with records made under the same settings (model, precision, preset, batch,
sequence length, rank, dropout, tokens): a merged sweep holds many models and precisions, and a ratio across
them would mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from morris_mlx.bench.record import median

COLUMNS = [
    ("train_tokens_per_second", "train tok/s"),
    ("peak_memory_gb", "peak GB"),
    ("time_to_first_token_s", "TTFT s"),
    ("prefill_tokens_per_second", "prefill tok/s"),
    ("decode_tokens_per_second", "decode tok/s"),
    ("decode_bandwidth_gbs", "decode GB/s"),
    ("decode_bandwidth_fraction", "of peak BW"),
    ("batch_tokens_per_second", "batch tok/s"),
    ("convert_seconds", "convert s"),
]
GROUP_KEYS = (
    "model",
    "precision",
    "preset",
    "batch_size",
    "max_seq_length",
    "rank",
    "dropout",
    "grad_checkpoint",
    "objective",
    "max_tokens",
    "articles",
)

# The bandwidth target is for a 7B model in bf16: 12 GB of bf16 weights is 6B parameters and up.
BANDWIDTH_TARGET = 0.7
BANDWIDTH_MIN_WEIGHT_GB = 12.0


@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: str
    denominator: str
    figure: str
    target: float | None = None
    gpu_only: bool = False  # the issue sets this target for GPUs; on a CPU the figure is shown without it


TRAIN = "train_tokens_per_second"
DECODE = "decode_tokens_per_second"
BATCH = "batch_tokens_per_second"
RATIOS = [
    Ratio("MLX training: ours / plain mlx-lm", "train:mlx:ours", "train:mlx:plain", TRAIN, 0.95),
    Ratio("training: MLX / torch", "train:mlx:ours", "train:torch:ours", TRAIN, 1.2, gpu_only=True),
    Ratio("MLX decode: fused adapter / no adapter", "generate:mlx:fused", "generate:mlx:base", DECODE, 0.9),
    Ratio("MLX decode: ours (no adapter) / plain mlx-lm", "generate:mlx:base", "generate:mlx:plain", DECODE),
    Ratio("MLX decode: fused / adapter apart", "generate:mlx:fused", "generate:mlx:apart", DECODE),
    Ratio(
        "torch decode: fused adapter / no adapter", "generate:torch:fused", "generate:torch:base", DECODE, 0.9
    ),
    Ratio(
        "torch decode: ours fused / plain generate + unmerged PEFT",
        "generate:torch:fused",
        "generate:torch:plain-peft",
        DECODE,
        2.5,
    ),
    Ratio("decode: MLX fused / torch fused", "generate:mlx:fused", "generate:torch:fused", DECODE),
    Ratio("decode: MLX no adapter / torch no adapter", "generate:mlx:base", "generate:torch:base", DECODE),
    Ratio("prefill: MLX / torch", "generate:mlx:base", "generate:torch:base", "prefill_tokens_per_second"),
    Ratio(
        "MLX batch generation: batched / one at a time", "batch:mlx:batched", "batch:mlx:one-at-a-time", BATCH
    ),
    Ratio(
        "torch batch generation: batched / one at a time",
        "batch:torch:batched",
        "batch:torch:one-at-a-time",
        BATCH,
    ),
]


def measured(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r.get("skipped")]


def on_gpu(rec: dict[str, Any]) -> bool:
    """Older records carry no device; they were all made on CPUs."""
    return rec.get("device") not in (None, "cpu")


def group_key(rec: dict[str, Any]) -> tuple:
    return tuple(rec.get("settings", {}).get(k) for k in GROUP_KEYS)


def group_label(rec: dict[str, Any]) -> str:
    settings = rec.get("settings", {})
    return ", ".join(str(settings[k]) for k in ("model", "precision", "preset") if settings.get(k))


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "NOT met")


def ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ratio of RATIOS whose two measurements exist under the same settings, with its target."""
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for rec in measured(records):
        groups.setdefault(group_key(rec), {})[rec["measurement"]] = rec
    out = []
    for group in groups.values():
        for ratio in RATIOS:
            a, b = group.get(ratio.numerator), group.get(ratio.denominator)
            if a is None or b is None:
                continue
            x, y = median(a, ratio.figure), median(b, ratio.figure)
            if not x or not y:
                continue
            applies = ratio.target is not None and (not ratio.gpu_only or (on_gpu(a) and on_gpu(b)))
            out.append(
                {
                    "ratio": f"{ratio.label} [{group_label(a)}]",
                    "value": x / y,
                    "target": ratio.target,
                    "scope": "gpu" if ratio.gpu_only else None,
                    "met": (x / y >= ratio.target) if applies else None,
                }
            )
    return out


def _memory_limit(rec: dict[str, Any]) -> dict[str, Any] | None:
    limit = rec["settings"].get("memory_limit_gb")
    peak = median(rec, "peak_memory_gb")
    if limit is None or peak is None:
        return None
    return {
        "limit": f"peak memory of {rec['measurement']} [{group_label(rec)}]",
        "value": f"{_fmt('peak_memory_gb', peak)} GB",
        "target": f"<= {limit} GB",
        "met": peak <= limit,
    }


def _bandwidth_limit(rec: dict[str, Any]) -> dict[str, Any] | None:
    fraction = median(rec, "decode_bandwidth_fraction")
    weight_gb = rec.get("figures", {}).get("weight_gb") or 0.0
    ours = rec["measurement"].rsplit(":", 1)[-1] in ("base", "fused")
    if fraction is None or not ours or rec["settings"].get("precision") != "bf16":
        return None
    if weight_gb < BANDWIDTH_MIN_WEIGHT_GB:
        return None
    return {
        "limit": f"decode bandwidth of {rec['measurement']} [{group_label(rec)}]",
        "value": f"{fraction:.0%} of {rec['figures']['peak_bandwidth_gbs']:,.0f} GB/s",
        "target": f">= {BANDWIDTH_TARGET:.0%} on a GPU",
        "met": fraction >= BANDWIDTH_TARGET if on_gpu(rec) else None,
    }


def limits(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Absolute targets: a preset's memory limit, and 70% of peak bandwidth for 7B bf16 decoding."""
    found = []
    for rec in measured(records):
        for check in (_memory_limit, _bandwidth_limit):
            result = check(rec)
            if result is not None:
                found.append(result)
    return found


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "decode_bandwidth_fraction":
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return str(value)


def _machine_line(rec: dict[str, Any]) -> str:
    m = rec.get("machine", {})
    where = f"{m.get('system', '?')} {m.get('machine', '?')}, {m.get('cpus', '?')} CPUs"
    return where + (f", {m['gpu']}" if m.get("gpu") else "")


def _versions_line(rec: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(rec.get("versions", {}).items()) if v)


def _table(records: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| measurement | model | precision | device | " + " | ".join(t for _, t in COLUMNS) + " |",
        "|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for rec in records:
        settings = rec.get("settings", {})
        cells = [_fmt(key, median(rec, key)) for key, _ in COLUMNS]
        lines.append(
            f"| {rec['measurement']} | {settings.get('model', '')} | {settings.get('precision') or ''} | "
            f"{rec.get('device') or ''} | " + " | ".join(cells) + " |"
        )
    return lines


def markdown(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no measurements\n"
    first = records[0]
    done = measured(records)
    lines = [
        f"Machine: {_machine_line(first)}  ",
        f"Versions: {_versions_line(first)}  ",
        f"Date: {first.get('date', '')}",
        "",
        "Medians over the timed repeats (warm-up excluded); the JSON has min, median, max and every run.",
        "",
        *_table(done),
    ]
    found = ratios(records)
    if found:
        lines += ["", "| ratio (medians) | value | target |", "|---|---|---|"]
        for r in found:
            target = ""
            if r["target"] is not None:
                scope = " on a GPU" if r["scope"] == "gpu" else ""
                target = f">= {r['target']}{scope}" + (
                    f" ({_verdict(r['met'])})" if r["met"] is not None else ""
                )
            lines.append(f"| {r['ratio']} | {r['value']:.2f}x | {target} |")
    checks = limits(records)
    if checks:
        lines += ["", "| limit | value | target | verdict |", "|---|---|---|---|"]
        lines += [f"| {c['limit']} | {c['value']} | {c['target']} | {_verdict(c['met'])} |" for c in checks]
    skipped = [r for r in records if r.get("skipped")]
    if skipped:
        lines += [
            "",
            "Not measured here:",
            "",
            "| measurement | model | precision | reason |",
            "|---|---|---|---|",
        ]
        for rec in skipped:
            settings = rec.get("settings", {})
            lines.append(
                f"| {rec['measurement']} | {settings.get('model', '')} | {settings.get('precision') or ''} | "
                f"{rec['skipped']} |"
            )
    return "\n".join(lines) + "\n"
