"""Content review for the server: a request that sends `"morris_review": true` gets the flags of the text
it generated (what `morris review --json` gives) in a `"morris_review"` field of the reply, or of the
last chunk when streaming. Each served adapter is reviewed against its own training data."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from morris_mlx.review import Reviewer, make_reviewer
from morris_mlx.review.checklist import to_json

log = logging.getLogger("morris")

REQUEST_FIELD = "morris_review"  # in the request: true to ask; in the reply: the review


class ReviewService:
    """Reviewers per served model name, made on first use (the corpus is indexed once per adapter)."""

    def __init__(self, adapters: dict[str, Path], terms: Path | None = None) -> None:
        self.adapters = dict(adapters)  # served name -> the adapter folder the user named
        self.terms = terms
        self._reviewers: dict[str | None, Reviewer] = {}
        self._lock = threading.Lock()

    def reviewer(self, served: str | None) -> Reviewer:
        key = served if served in self.adapters else None
        with self._lock:
            if key not in self._reviewers:
                self._reviewers[key] = make_reviewer(self.adapters.get(key) if key else None, terms_path=self.terms)
            return self._reviewers[key]

    def review(self, served: str | None, text: str) -> dict[str, Any]:
        try:
            reviewer = self.reviewer(served)
            return {**to_json(reviewer.review(text), text), "notes": list(reviewer.notes)}
        except Exception as exc:  # noqa: BLE001 - a failed review must not fail the completion
            log.warning("review failed: %s", exc)
            log.debug("review failure", exc_info=True)
            return {"error": f"the review failed: {type(exc).__name__}: {exc}"}
