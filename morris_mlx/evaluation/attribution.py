"""Authorship attribution: does a text read like the writer, or like generic model output?

A character n-gram TF-IDF representation (n = 2..4, sublinear term frequency, smoothed idf, rows L2
normalised) feeds an L2-regularised logistic regression fitted by Newton's method. The
regularisation strength and the vocabulary size are chosen by stratified cross-validation on held-out
log-loss, classes are
weighted equally whatever their sizes, and the cross-validated accuracy is reported so a reader can see
whether the classifier is worth trusting. Texts the classifier was trained on (the base model's outputs)
are scored out of fold, so they are never judged by a model that has seen them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from morris_mlx.evaluation.text import normalise

NGRAM_RANGE = (2, 4)
# Few features favour the most widespread n-grams (function-word fragments, punctuation habits): style
# rather than topic. With a handful of generic texts that matters; cross-validation picks among these.
FEATURE_GRID = (300, 1000, 3000)
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def ngram_counts(text: str, ngram_range: tuple[int, int] = NGRAM_RANGE) -> Counter[str]:
    padded = f" {normalise(text)} "
    counts: Counter[str] = Counter()
    for n in range(ngram_range[0], ngram_range[1] + 1):
        counts.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return counts


class TfidfVectorizer:
    """TF-IDF over character n-grams, with a vocabulary of the most widespread n-grams of the fit set."""

    def __init__(self, max_features: int = 1000, min_df: int = 2) -> None:
        self.max_features = max_features
        self.min_df = min_df
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0)

    def fit(self, counts: Sequence[Counter[str]]) -> TfidfVectorizer:
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        min_df = self.min_df if len(counts) >= 2 * self.min_df else 1
        ranked = sorted(((g, d) for g, d in df.items() if d >= min_df), key=lambda kv: (-kv[1], kv[0]))
        self.vocabulary = {g: i for i, (g, _) in enumerate(ranked[: self.max_features])}
        n = len(counts)
        self.idf = np.array([math.log((1 + n) / (1 + d)) + 1.0 for _, d in ranked[: self.max_features]])
        return self

    def transform(self, counts: Sequence[Counter[str]]) -> np.ndarray:
        X = np.zeros((len(counts), len(self.vocabulary)), dtype=np.float64)
        for row, c in enumerate(counts):
            for gram, count in c.items():
                col = self.vocabulary.get(gram)
                if col is not None:
                    X[row, col] = 1.0 + math.log(count)
        X *= self.idf
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norms > 0, norms, 1.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|, unlike 1 / (1 + exp(-z))


@dataclass
class LogisticRegression:
    """Binary logistic regression: weighted mean log-loss + l2 / 2 * ||coef||^2 (intercept unpenalised)."""

    l2: float = 1e-2
    max_iter: int = 100
    tol: float = 1e-9
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    iterations: int = 0

    def _objective(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ theta[:-1] + theta[-1]
        # log(1 + e^z) - y z, written to stay finite for large |z|
        loss = float(w @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * self.l2 * float(theta[:-1] @ theta[:-1])
        residual = w * (_sigmoid(z) - y)
        grad = np.empty_like(theta)
        grad[:-1] = X.T @ residual + self.l2 * theta[:-1]
        grad[-1] = residual.sum()
        return loss, grad

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LogisticRegression:
        """Newton's method with a backtracking line search.

        There are far fewer texts (n) than n-gram features (d), so each Newton system is solved through
        the Woodbury identity in n dimensions: (lambda I + X'WX)^-1 = (I - X'S (lambda I + S X X' S)^-1 S X)
        / lambda with S = W^(1/2), and the unpenalised intercept is eliminated by its Schur complement.
        A step costs O(n^2 d + n^3) instead of O(d^3), and it converges in a few dozen steps at most.
        """
        n, d = X.shape
        y = np.asarray(y, dtype=np.float64)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        w = w / w.sum()
        gram = X @ X.T
        theta = np.zeros(d + 1)
        loss, grad = self._objective(X, y, w, theta)
        for it in range(1, self.max_iter + 1):
            self.iterations = it
            if float(np.linalg.norm(grad)) < self.tol:
                break
            p = _sigmoid(X @ theta[:-1] + theta[-1])
            sqrt_w = np.sqrt(w * p * (1.0 - p))
            inner = np.linalg.cholesky(self.l2 * np.eye(n) + sqrt_w[:, None] * gram * sqrt_w[None, :])

            def solve_a(z: np.ndarray, sqrt_w: np.ndarray = sqrt_w, inner: np.ndarray = inner) -> np.ndarray:
                t = sqrt_w * (X @ z)
                t = np.linalg.solve(inner.T, np.linalg.solve(inner, t))
                return (z - X.T @ (sqrt_w * t)) / self.l2

            u = X.T @ (sqrt_w**2)  # X' W 1, the coupling of the weights with the intercept
            a_inv_u, a_inv_g = solve_a(u), solve_a(grad[:-1])
            schur = float((sqrt_w**2).sum() - u @ a_inv_u)
            step_b = (grad[-1] - u @ a_inv_g) / schur if schur > 1e-15 else 0.0
            step = np.append(a_inv_g - a_inv_u * step_b, step_b)
            decrement = float(grad @ step)
            scale = 1.0
            while True:  # Armijo backtracking keeps each step a descent step
                candidate = theta - scale * step
                new_loss, new_grad = self._objective(X, y, w, candidate)
                if new_loss <= loss - 1e-4 * scale * decrement or scale < 1e-10:
                    break
                scale *= 0.5
            theta, loss, grad = candidate, new_loss, new_grad
        self.coef, self.intercept = theta[:-1], float(theta[-1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) for each row."""
        return _sigmoid(X @ self.coef + self.intercept)


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Each class weighs the same in the loss, however many examples it has."""
    y = np.asarray(y)
    counts = {c: int((y == c).sum()) for c in np.unique(y)}
    return np.array([1.0 / (len(counts) * counts[c]) for c in y])


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) for each example, with every class spread evenly over the folds."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float((w * -(y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / w.sum())


@dataclass
class Attributor:
    """A writer-vs-generic classifier with its cross-validated quality and out-of-fold scores."""

    vectorizer: TfidfVectorizer
    model: LogisticRegression
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
        return self.model.predict_proba(self.vectorizer.transform([ngram_counts(t) for t in texts]))


def _fit(
    counts: Sequence[Counter[str]], y: np.ndarray, l2: float, max_features: int
) -> tuple[TfidfVectorizer, LogisticRegression]:
    vectorizer = TfidfVectorizer(max_features=max_features).fit(counts)
    X = vectorizer.transform(counts)
    return vectorizer, LogisticRegression(l2=l2).fit(X, y, balanced_weights(y))


def fit_attributor(
    writer_texts: Sequence[str],
    generic_texts: Sequence[str],
    seed: int = 0,
    folds: int = 5,
    l2_grid: Sequence[float] = L2_GRID,
    feature_grid: Sequence[int] = FEATURE_GRID,
) -> Attributor:
    """Train on writer (label 1) vs generic (label 0) texts; needs at least 2 of each."""
    if len(writer_texts) < 2 or len(generic_texts) < 2:
        raise ValueError("attribution needs at least 2 writer texts and 2 generic texts")
    texts = list(writer_texts) + list(generic_texts)
    y = np.array([1.0] * len(writer_texts) + [0.0] * len(generic_texts))
    counts = [ngram_counts(t) for t in texts]
    k = min(folds, len(writer_texts), len(generic_texts))
    fold = stratified_folds(y, k, seed)
    weights = balanced_weights(y)

    best: tuple[float, float, int, np.ndarray] | None = None
    for max_features in feature_grid:
        for l2 in l2_grid:
            oof = np.empty(len(texts))
            for f in range(k):
                train, test = fold != f, fold == f
                vectorizer, model = _fit([counts[i] for i in np.flatnonzero(train)], y[train], l2, max_features)
                oof[test] = model.predict_proba(vectorizer.transform([counts[i] for i in np.flatnonzero(test)]))
            loss = log_loss(y, oof, weights)
            if best is None or loss < best[0] - 1e-12:
                best = (loss, l2, max_features, oof)
    assert best is not None
    loss, l2, max_features, oof = best
    correct = (oof >= 0.5) == (y == 1.0)
    balanced_accuracy = 0.5 * (correct[y == 1.0].mean() + correct[y == 0.0].mean())
    vectorizer, model = _fit(counts, y, l2, max_features)
    return Attributor(
        vectorizer=vectorizer,
        model=model,
        l2=l2,
        max_features=max_features,
        cv_accuracy=float(balanced_accuracy),
        cv_log_loss=loss,
        folds=k,
        n_writer=len(writer_texts),
        n_generic=len(generic_texts),
        oof_generic=oof[len(writer_texts) :],
    )
