"""Make docs/tui-write.svg: the write screen after a real generation, saved with Textual's
`app.save_screenshot()`.

It drives `morris tui` headless with the real backend (no fake, no canned text): types the topic, waits
for the article, and saves the screen. On a loaded 2-core CPU the embedded default writes a few tokens a
second, so allow a few minutes.

    MORRIS_HOME=/tmp/mh python scripts/tui_screenshot.py --adapter-path morris-r16
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from morris_mlx.config import load_config
from morris_mlx.models.resolve import check_model_dir
from morris_mlx.tui.app import create_app
from morris_mlx.tui.screens.write import WriteScreen

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs" / "tui-write.svg"))
    parser.add_argument("--topic", default="open RAN")
    parser.add_argument("--model", help="model folder (default: configured base, else the embedded default)")
    parser.add_argument("--adapter-path", help="adapter name or folder")
    parser.add_argument("--backend", default="auto", choices=["auto", "mlx", "torch"])
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument("--temp", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", default="140x44", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    args = parser.parse_args()

    cfg = load_config(None, {
        "model.backend": args.backend,
        "generate.max_tokens": args.max_tokens,
        "generate.temp": args.temp,
        "generate.seed": args.seed,
    })
    model_dir = check_model_dir(Path(args.model)) if args.model else None
    adapter_path = None
    if args.adapter_path:
        from morris_mlx.registry import get_adapter

        adapter_path = get_adapter(args.adapter_path).path
    app = create_app(model_dir=model_dir, adapter_path=adapter_path, config=cfg)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, str] = {}

    async def drive(pilot) -> None:
        screen = app.screen
        assert isinstance(screen, WriteScreen)
        screen.query_one("#topic").value = args.topic
        await pilot.press("enter")
        deadline = time.monotonic() + args.timeout
        while screen.worker is None or screen.generating:
            if time.monotonic() > deadline:
                screen.action_stop()
                outcome["note"] = "timed out; the screenshot shows the partial article"
                deadline = float("inf")
            await pilot.pause(0.5)
        await pilot.pause(0.5)
        if screen.article is None:
            outcome["error"] = str(screen.query_one("#gen-status").render())
        else:
            app.save_screenshot(filename=out.name, path=str(out.parent))
            a = screen.article
            outcome["note"] = f"{a.tokens} tokens at {a.tokens_per_second:.1f} tok/s ({a.backend}, {a.finish_reason})"
        app.exit()

    width, height = (int(n) for n in args.size.lower().split("x"))
    app.run(headless=True, size=(width, height), auto_pilot=drive)
    if "error" in outcome:
        print(f"no article: {outcome['error']}")
        return 1
    print(f"wrote {out}: {outcome.get('note', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
