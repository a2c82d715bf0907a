"""Stylometric distance to the writer's corpus: Burrows' Delta and a character n-gram profile distance.

Burrows' Delta (2002) standardises the relative frequencies of the corpus's most frequent words by their
mean and spread across the corpus's documents, then takes the mean absolute difference of z-scores. The
corpus centroid has z = 0 for every word by construction, so a text's Delta to the corpus is the mean |z|
of its own frequencies. Function words dominate the list, which is why Delta tracks style and not topic.

The character n-gram distance is Kešelj et al.'s (2003) CNG dissimilarity between two profiles (the L most
frequent n-grams with their relative frequencies): over the union of the profiles, the mean of
(2 (f1 - f2) / (f1 + f2))^2, so every n-gram weighs the same whatever its frequency. It lies in [0, 4]:
0 for identical profiles, 4 when they share nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from morris_mlx.errors import MorrisError
from morris_mlx.evaluation.text import normalise, words

DEFAULT_MFW = 150
DEFAULT_NGRAM = 3
DEFAULT_PROFILE = 1000


def relative_frequencies(text: str, vocabulary: Sequence[str]) -> np.ndarray:
    """Occurrences of each vocabulary word per word of `text` (zeros for an empty text)."""
    tokens = words(text)
    counts = Counter(tokens)
    total = max(len(tokens), 1)
    return np.array([counts[w] / total for w in vocabulary], dtype=np.float64)


@dataclass
class DeltaModel:
    """The corpus's most frequent words with their mean and standard deviation across its documents."""

    vocabulary: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, documents: Sequence[str], n_words: int = DEFAULT_MFW) -> DeltaModel:
        if len(documents) < 2:
            raise MorrisError("Burrows' Delta needs at least 2 corpus documents to measure spread; add articles")
        counts: Counter[str] = Counter()
        for doc in documents:
            counts.update(words(doc))
        # Ties broken alphabetically so the word list, and so the score, never depends on dict order.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        candidates = [w for w, _ in ranked[: n_words * 2]]
        freqs = np.stack([relative_frequencies(doc, candidates) for doc in documents])
        std = freqs.std(axis=0, ddof=1)
        # A word with no spread across the corpus cannot be standardised; it carries no stylistic signal.
        keep = [i for i in range(len(candidates)) if std[i] > 1e-12][:n_words]
        if not keep:
            raise MorrisError("the corpus documents have identical word frequencies; Delta is undefined")
        return cls(
            vocabulary=[candidates[i] for i in keep], mean=freqs[:, keep].mean(axis=0), std=std[keep]
        )

    def z(self, text: str) -> np.ndarray:
        return (relative_frequencies(text, self.vocabulary) - self.mean) / self.std

    def delta(self, text_a: str, text_b: str) -> float:
        """Burrows' Delta between two texts: the mean absolute difference of their z-scores."""
        return float(np.mean(np.abs(self.z(text_a) - self.z(text_b))))

    def delta_to_corpus(self, text: str) -> float:
        """Delta between `text` and the corpus centroid (whose z-scores are all 0)."""
        return float(np.mean(np.abs(self.z(text))))


def char_ngrams(text: str, n: int = DEFAULT_NGRAM) -> Counter[str]:
    padded = f" {normalise(text)} "
    return Counter(padded[i : i + n] for i in range(len(padded) - n + 1))


def char_profile(texts: str | Sequence[str], n: int = DEFAULT_NGRAM, size: int = DEFAULT_PROFILE) -> dict[str, float]:
    """The `size` most frequent character n-grams of the text(s), with relative frequencies."""
    counts: Counter[str] = Counter()
    for text in [texts] if isinstance(texts, str) else texts:
        counts.update(char_ngrams(text, n))
    total = sum(counts.values())
    if not total:
        return {}
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return {gram: count / total for gram, count in top}


def profile_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Kešelj's CNG dissimilarity, averaged over the union of the profiles: 0 same, 4 disjoint."""
    union = set(a) | set(b)
    if not union:
        return 0.0
    total = 0.0
    for gram in union:
        fa, fb = a.get(gram, 0.0), b.get(gram, 0.0)
        total += (2.0 * (fa - fb) / (fa + fb)) ** 2
    return total / len(union)
