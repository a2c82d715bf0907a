"""The package's layers import downward only. Every import counts, at the top of a module or inside a
function: a function-local import upward is the same cycle, only hidden until it runs.

The order (also drawn in README.md's layout section), lowest first; a module may import its own layer
and the ones below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "morris_mlx"

LAYERS = [
    ["__init__", "errors", "files"],
    ["atomic", "paths", "log", "mlx_blas", "pickled"],
    ["config"],
    ["adapter_format", "dataset", "models", "prompts", "scrape"],
    ["training"],
    ["backends", "distributed"],
    ["export", "evaluation", "bench", "serve", "registry", "batch", "review", "pairs"],
    ["tui"],
    ["commands"],
    ["cli", "__main__"],
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def part_of(module: str) -> str | None:
    """The top-level part of the package a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if parts[0] == "morris_mlx" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "morris_mlx":
                found += [(node.lineno, f"morris_mlx.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__pycache__", "bundled"}
    assert parts <= set(RANK), f"give these a layer in tests/test_layers.py and README.md: {parts - set(RANK)}"


def test_no_import_reaches_up_a_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in imports(path):
            target = part_of(module)
            if target in RANK and RANK[target] > RANK[me]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({me}) imports {module} ({target})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    # The rule above can fail: an upward import, written the ways code writes it, is found.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from morris_mlx.commands import train\n    import morris_mlx.tui.app\n")
    found = [part_of(module) for _, module in imports(probe)]
    assert found == ["commands", "tui"] and all(RANK[t] > RANK["training"] for t in found)
