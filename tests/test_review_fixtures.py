"""The review against articles annotated by hand (tests/fixtures/review/, see its README): at least 20,
most of them the product's own output, and recall per kind at the targets, with precision reported."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from morris_mlx.review.flag import KINDS

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "review_eval.py"
RECALL_TARGETS = {"quote": 0.9, "number": 0.9, "copied": 0.9, "name": 0.8}


def review_eval():
    spec = importlib.util.spec_from_file_location("review_eval", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixtures_are_enough_mostly_the_products_own_and_consistent():
    fixtures = review_eval().load_fixtures()
    assert len(fixtures) >= 20
    origins = [meta["origin"] for meta, _ in fixtures]
    assert set(origins) <= {"product", "stronger-model-pastiche"}
    assert origins.count("product") >= 12
    spliced = [meta for meta, _ in fixtures if meta["origin"] == "product" and meta.get("edit")]
    assert spliced, "some product articles carry a spliced corpus span"
    for meta, text in fixtures:
        assert set(meta["expected"]) <= set(KINDS)
        for kind, spans in meta["expected"].items():
            for span in spans:
                assert text[span["start"] : span["end"]] == span["text"], (meta["file"], kind, span)
    for kind in RECALL_TARGETS:
        assert sum(len(meta["expected"].get(kind, [])) for meta, _ in fixtures) >= 10, kind


def test_recall_per_kind_meets_the_targets_with_precision_beside_it():
    module = review_eval()
    scores = module.evaluate()
    print("\n" + module.table(scores))  # shown with -s: recall and precision for every kind
    for kind, target in RECALL_TARGETS.items():
        assert scores[kind].recall is not None and scores[kind].recall >= target, (kind, scores[kind])
