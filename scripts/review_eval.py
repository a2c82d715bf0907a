"""Recall and precision of `morris review` on the hand-annotated articles in tests/fixtures/review/.

    .venv/bin/python scripts/review_eval.py            # the table over every fixture
    .venv/bin/python scripts/review_eval.py --each     # and one line per fixture with what it missed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from morris_mlx.review import make_reviewer
from morris_mlx.review.scoring import Score, score, table

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "review"


def load_fixtures(folder: Path = FIXTURES) -> list[tuple[dict, str]]:
    """(metadata, article text) per fixture, in file-name order."""
    found = []
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        text = (folder / meta["file"]).read_text(encoding="utf-8")
        found.append((meta, text))
    return found


def evaluate(folder: Path = FIXTURES, each: bool = False) -> dict[str, Score]:
    reviewer = make_reviewer()
    total: dict[str, Score] = {}
    for meta, text in load_fixtures(folder):
        expected = [(kind, s["start"], s["end"]) for kind, spans in meta["expected"].items() for s in spans]
        flags = reviewer.review(text)
        scores = score(expected, flags)
        for kind, s in scores.items():
            total.setdefault(kind, Score()).add(s)
        if each:
            missed = [
                f"{kind}:{text[s:e]!r}" for kind, s, e in expected
                if not any(f.kind == kind and f.start < e and s < f.end for f in flags)
            ]
            print(f"{meta['file']}: {len(flags)} flags; missed {missed or 'nothing'}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--each", action="store_true", help="also print what each fixture missed")
    args = parser.parse_args()
    print(table(evaluate(each=args.each)))


if __name__ == "__main__":
    main()
