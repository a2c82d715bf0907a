"""Splitting by article into train / valid / test: deterministic for a seed, stratified by kind, no
article in two splits (the parts of a cut article travel together)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from morris_mlx.dataset.article import Article
from morris_mlx.errors import MorrisError

MIN_ARTICLES = 3


def _rank(seed: int, article_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\0split\0{article_id}".encode()).digest()


def split_sizes(n: int, valid_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, valid, test) counts. Valid and test get at least 3 articles each once there are 20 or
    more (fewer would make their losses noise), at least one below that; train keeps the rest."""
    if n < MIN_ARTICLES:
        raise MorrisError(
            f"only {n} article(s) left after cleaning; train, valid and test need at least {MIN_ARTICLES}: "
            "add articles (see the dropped reasons above) or lower --min-words"
        )
    floor = 3 if n >= 20 else 1
    n_test = max(floor, round(n * test_fraction))
    n_valid = max(floor, round(n * valid_fraction))
    while n - n_valid - n_test < 1:  # large fractions of a tiny corpus: train keeps at least one
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def split_articles(
    articles: list[Article], seed: int, valid_fraction: float, test_fraction: float, fold: int = 0
) -> dict[str, list[Article]]:
    """Each kind is shuffled by a seeded hash of the article id; the kinds are then interleaved by
    relative position, so every prefix (test first, then valid) has telecom and general pieces in
    proportion. The order inside each split is that same shuffled order.

    `fold` k starts the test split k test-sizes into that order (valid follows it, wrapping round), so
    folds 0, 1, 2, ... hold out disjoint test articles: cross-validation over one corpus and seed."""
    by_kind: dict[str, list[Article]] = defaultdict(list)
    for article in articles:
        by_kind[article.kind].append(article)
    keyed = []
    for group in by_kind.values():
        group.sort(key=lambda a: _rank(seed, a.id))
        keyed += [((i + 0.5) / len(group), _rank(seed, a.id), a) for i, a in enumerate(group)]
    order = [a for _, _, a in sorted(keyed, key=lambda k: (k[0], k[1]))]
    _, n_valid, n_test = split_sizes(len(order), valid_fraction, test_fraction)
    if fold:
        folds = len(order) // n_test  # whole test sets only: a last, partial one would wrap into fold 0's
        if not 0 <= fold < folds:
            raise MorrisError(
                f"fold {fold} is out of range: {len(order)} articles with {n_test} held out make "
                f"{folds} folds; pass --fold 0 to {folds - 1}"
            )
        start = fold * n_test
        order = order[start:] + order[:start]
    return {
        "train": order[n_test + n_valid :],
        "valid": order[n_test : n_test + n_valid],
        "test": order[:n_test],
    }
