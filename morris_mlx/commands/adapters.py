"""`morris adapters list|show|rename|delete`: the trained and imported adapters, by name."""

from __future__ import annotations

import json
import sys
from typing import Any

from morris_mlx.commands.common import ArgumentParser
from morris_mlx.errors import MorrisError

EXAMPLE = """examples:
  morris adapters list
  morris adapters show morris-r16
  morris adapters rename morris-r16 morris-best
  morris adapters delete old-run --yes
"""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="morris adapters",
        description="List, inspect, rename or delete adapters in the adapters folder (MORRIS_ADAPTERS or "
        "./adapters) and MORRIS_HOME/adapters. Names are plain folder names; nothing is overwritten.",
        epilog=EXAMPLE,
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    lister = sub.add_parser("list", help="every adapter, newest first")
    lister.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="base model, data, config, metrics, created")
    show.add_argument("name", help="adapter name or directory")
    show.add_argument("--json", action="store_true", help="everything as one JSON object")
    rename = sub.add_parser("rename", help="rename an adapter (refuses to overwrite)")
    rename.add_argument("old")
    rename.add_argument("new")
    delete = sub.add_parser("delete", help="delete an adapter")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return p


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _summary(info: Any) -> dict[str, Any]:
    params = info.config.get("lora_parameters") or {}
    rank = params.get("rank", info.config.get("r"))
    return {
        "name": info.name,
        "format": info.format,
        "backend": info.backend,
        "created": info.created,
        "base_model": info.base_model,
        "rank": rank,
        "best_val_loss": info.metrics.get("best_val_loss"),
        "steps": info.metrics.get("steps"),
        "path": str(info.path),
    }


def _list(as_json: bool) -> None:
    from morris_mlx.registry import adapter_roots, list_adapters

    infos = list_adapters()
    if as_json:
        for info in infos:
            print(json.dumps(_summary(info)))
        return
    if not infos:
        roots = ", ".join(str(r) for r in adapter_roots())
        print(f"no adapters yet (looked in {roots}); train one with `morris train`")
        return
    rows = [_summary(i) for i in infos]
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  FORMAT  RANK  VAL LOSS  STEPS  CREATED                    BASE")
    for r in rows:
        base = r["base_model"] or "-"
        print(
            f"{r['name']:<{width}}  {r['format']:<6}  {_fmt(r['rank']):>4}  {_fmt(r['best_val_loss']):>8}  "
            f"{_fmt(r['steps']):>5}  {_fmt(r['created']):<25}  {base}"
        )


def _show(name: str, as_json: bool) -> None:
    from morris_mlx.registry import get_adapter

    info = get_adapter(name)
    if as_json:
        record = {
            **_summary(info),
            "config": info.config,
            "metrics": info.metrics,
            "provenance": info.provenance,
        }
        print(json.dumps(record, indent=2, default=str))
        return
    prov = info.provenance
    params = info.config.get("lora_parameters") or {}
    lines = [
        ("name", info.name),
        ("path", info.path),
        ("format", info.format),
        ("backend", info.backend),
        ("created", info.created),
        ("base model", info.base_model),
    ]
    if info.format == "mlx":
        lines += [
            ("rank", params.get("rank")),
            ("scale", params.get("scale")),
            ("dropout", params.get("dropout")),
            (
                "layers",
                "all" if info.config.get("num_layers", -1) < 0 else f"last {info.config['num_layers']}",
            ),
            ("modules", ", ".join(params.get("keys") or []) or "all linear layers"),
        ]
    else:
        lines += [
            ("rank", info.config.get("r")),
            ("alpha", info.config.get("lora_alpha")),
            ("dropout", info.config.get("lora_dropout")),
            ("layers", info.config.get("layers_to_transform") or "all"),
            ("modules", ", ".join(info.config.get("target_modules") or [])),
        ]
    data = prov.get("data") or {}
    if data:
        lines.append(("data", f"{data.get('path')} (sha256 {str(data.get('sha256'))[:12]})"))
    for key in sorted(info.metrics):
        lines.append((key.replace("_", " "), _fmt(info.metrics[key])))
    source = prov.get("source") or {}
    if source:
        lines.append(("source", f"{source.get('action')} from {source.get('path')}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {_fmt(value)}")


def _confirm(name: str) -> bool:
    if not sys.stdin.isatty():
        raise MorrisError(f"deleting {name!r} needs confirmation; pass --yes")
    answer = input(f"delete adapter {name!r} and all its checkpoints? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from morris_mlx import registry

    if args.action == "list":
        _list(args.json)
    elif args.action == "show":
        _show(args.name, args.json)
    elif args.action == "rename":
        info = registry.rename_adapter(args.old, args.new)
        print(info.path)
    else:
        registry.get_adapter(registry.check_name(args.name))  # a clear error before asking anything
        if not args.yes and not _confirm(args.name):
            print("not deleted")
            return 1
        registry.delete_adapter(args.name)
        print(f"deleted {args.name}")
    return 0
