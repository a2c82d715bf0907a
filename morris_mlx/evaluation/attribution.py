"""Authorship attribution: does a text read like the writer, or like generic model output?

A character n-gram TF-IDF representation (n = 2..4 over the normalised text with a space at each end,
sublinear term frequency, smoothed idf, rows L2 normalised) feeds an L2-regularised logistic regression
(scikit-learn). The vocabulary is the n-grams found in the most texts, and its size and the
regularisation strength are chosen by stratified cross-validation on held-out log-loss; classes are
weighted equally whatever their sizes, and the cross-validated accuracy is reported so a reader can see
whether the classifier is worth trusting. Texts the classifier was trained on (the base model's outputs)
are scored out of fold, so they are never judged by a model that has seen them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from morris_mlx.evaluation.text import normalise

if TYPE_CHECKING:
    from scipy import sparse

NGRAM_RANGE = (2, 4)
# Few features favour the most widespread n-grams (function-word fragments, punctuation habits): style
# rather than topic. With a handful of generic texts that matters; cross-validation picks among these.
FEATURE_GRID = (300, 1000, 3000)
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
MIN_DF = 2  # an n-gram in a single text says nothing about a style (lowered to 1 for under 4 texts)


def padded(text: str) -> str:
    """The normalised text with a space at each end, so n-grams see how words start and end."""
    return f" {normalise(text)} "


def _ngram_options() -> dict[str, Any]:
    return {"analyzer": "char", "ngram_range": NGRAM_RANGE, "preprocessor": padded}


def ngram_counter() -> CountVectorizer:
    """Counts of the character n-grams the classifier reads."""
    return CountVectorizer(**_ngram_options())


def widespread_columns(counts: sparse.spmatrix) -> np.ndarray:
    """Columns of `counts` ranked by how many rows (texts) use them, those in under MIN_DF dropped.

    Ties keep column order, which CountVectorizer makes alphabetical. scikit-learn's own `max_features`
    ranks by total count instead, which favours n-grams that a few long texts repeat.
    """
    doc_freq = np.asarray((counts > 0).sum(axis=0)).ravel()
    min_df = MIN_DF if counts.shape[0] >= 2 * MIN_DF else 1
    order = np.argsort(-doc_freq, kind="stable")
    order = order[doc_freq[order] >= min_df]
    if len(order) == 0:
        raise ValueError("attribution needs texts that share character n-grams; these share none")
    return order


def balanced_logistic_regression(l2: float, n_train: int) -> LogisticRegression:
    """Minimises the class-balanced mean log-loss + l2 / 2 * ||coef||^2 (intercept unpenalised).

    scikit-learn minimises C * sum_i w_i loss_i + ||coef||^2 / 2, and its "balanced" class weights sum
    to the number of examples, so C = 1 / (l2 n) is the same problem with l2 independent of n. Fitted
    with `balanced_weights` as sample weights, it is that problem with groups inside the generic class.
    """
    return LogisticRegression(
        C=1.0 / (l2 * n_train), class_weight="balanced", solver="lbfgs", tol=1e-8, max_iter=10_000
    )


def balanced_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sample weights (summing to 1) that give each class half the total and, inside the generic class,
    each group an equal share: a handful of base-model replies counts as much as a hundred contrast
    passages. With one generic group these are scikit-learn's "balanced" weights over 2n."""
    weights = np.where(y == 1, 0.5 / max(1, int((y == 1).sum())), 0.0)
    generic_groups = np.unique(groups[y == 0])
    for group in generic_groups:
        members = (y == 0) & (groups == group)
        weights[members] = 0.5 / len(generic_groups) / members.sum()
    return weights


def _fit(model: Pipeline, X: Any, y: np.ndarray, groups: np.ndarray) -> Pipeline:
    """Fit with `balanced_weights` scaled to sum to n: with one generic group, exactly the "balanced"
    class weights, so l2 means what it means in `balanced_logistic_regression`."""
    model.set_params(logisticregression__class_weight=None)
    return model.fit(X, y, logisticregression__sample_weight=balanced_weights(y, groups) * len(y))


@dataclass
class Attributor:
    """A writer-vs-generic classifier with its cross-validated quality and out-of-fold scores."""

    model: Pipeline  # texts -> TF-IDF over the chosen n-grams -> logistic regression
    l2: float
    max_features: int
    cv_accuracy: float  # balanced accuracy of out-of-fold predictions at the chosen l2
    cv_log_loss: float
    folds: int
    n_writer: int
    n_generic: int
    oof_generic: np.ndarray  # P(writer) of each generic training text, from the fold that held it out

    def prob_writer(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.model.predict_proba(list(texts))[:, 1]


def _fold_probabilities(
    counts: sparse.csr_matrix, y: np.ndarray, groups: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
    l2_grid: Sequence[float], feature_grid: Sequence[int],
) -> dict[tuple[int, float], np.ndarray]:
    """Out-of-fold P(writer) for every (max_features, l2); each fold picks its vocabulary from its own
    training texts, so held-out texts never shape the features they are judged by."""
    oof = {(m, l2): np.empty(len(y)) for m in feature_grid for l2 in l2_grid}
    for train, test in splits:
        train_counts, test_counts = counts[train], counts[test]
        ranked = widespread_columns(train_counts)
        for max_features in feature_grid:
            columns = ranked[:max_features]
            for l2 in l2_grid:
                model = make_pipeline(
                    TfidfTransformer(sublinear_tf=True), balanced_logistic_regression(l2, len(train))
                )
                _fit(model, train_counts[:, columns], y[train], groups[train])
                oof[max_features, l2][test] = model.predict_proba(test_counts[:, columns])[:, 1]
    return oof


def fit_attributor(
    writer_texts: Sequence[str],
    generic_texts: Sequence[str],
    seed: int = 0,
    folds: int = 5,
    l2_grid: Sequence[float] = L2_GRID,
    feature_grid: Sequence[int] = FEATURE_GRID,
    generic_groups: Sequence[str] | None = None,
) -> Attributor:
    """Train on writer (label 1) vs generic (label 0) texts; needs at least 2 of each. `generic_groups`
    names the source of each generic text; each source then weighs the same (`balanced_weights`)."""
    if len(writer_texts) < 2 or len(generic_texts) < 2:
        raise ValueError("attribution needs at least 2 writer texts and 2 generic texts")
    # Dozens of small fits, each making many tiny BLAS calls: handing those to a thread pool costs more
    # than it saves, and on a machine with busy cores it made the whole fit several times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        groups = list(generic_groups) if generic_groups is not None else ["generic"] * len(generic_texts)
        if len(groups) != len(generic_texts):
            raise ValueError("generic_groups needs one group name per generic text")
        return _fit_attributor(writer_texts, generic_texts, groups, seed, folds, l2_grid, feature_grid)


def _fit_attributor(
    writer_texts: Sequence[str], generic_texts: Sequence[str], generic_groups: list[str], seed: int, folds: int,
    l2_grid: Sequence[float], feature_grid: Sequence[int],
) -> Attributor:
    texts = list(writer_texts) + list(generic_texts)
    y = np.array([1] * len(writer_texts) + [0] * len(generic_texts))
    groups = np.array(["writer"] * len(writer_texts) + [f"generic:{g}" for g in generic_groups])
    if not any(t.strip() for t in texts):
        raise ValueError("attribution needs texts with words in them; these are all empty")
    # Counted once; each fit below takes its rows and columns from this matrix.
    counter = ngram_counter()
    counts = counter.fit_transform(texts).tocsr()
    k = min(folds, len(writer_texts), len(generic_texts))
    # Stratified by source, so every fold holds out some of each; a source smaller than k is spread thin.
    strata = groups if min(np.unique(groups, return_counts=True)[1]) >= k else y
    splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(texts, strata))
    oof = _fold_probabilities(counts, y, groups, splits, l2_grid, feature_grid)

    weights = balanced_weights(y, groups)
    best: tuple[float, float, int] | None = None
    for max_features in feature_grid:
        for l2 in l2_grid:
            loss = float(log_loss(y, oof[max_features, l2], sample_weight=weights, labels=[0, 1]))
            if best is None or loss < best[0] - 1e-12:
                best = (loss, l2, max_features)
    assert best is not None
    loss, l2, max_features = best
    chosen = oof[max_features, l2]

    vocabulary = counter.get_feature_names_out()[widespread_columns(counts)[:max_features]]
    model = make_pipeline(
        TfidfVectorizer(vocabulary=vocabulary, sublinear_tf=True, **_ngram_options()),
        balanced_logistic_regression(l2, len(texts)),
    )
    _fit(model, texts, y, groups)
    return Attributor(
        model=model,
        l2=l2,
        max_features=max_features,
        cv_accuracy=float(balanced_accuracy_score(y, (chosen >= 0.5).astype(int))),
        cv_log_loss=loss,
        folds=k,
        n_writer=len(writer_texts),
        n_generic=len(generic_texts),
        oof_generic=chosen[len(writer_texts) :],
    )
