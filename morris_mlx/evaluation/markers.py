"""Style markers the original cared about, counted as rates so texts of any length compare.

Each marker is pooled over a set of texts (all counts over all words), which weighs every word the same
and keeps one short text from swinging the result. The word lists live in morris_mlx/bundled/prompts/style_markers.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from morris_mlx.errors import MorrisError
from morris_mlx.evaluation.text import first_words, sentences, strip_headings, words
from morris_mlx.paths import PROMPTS_DIR

MARKERS_FILE = PROMPTS_DIR / "style_markers.toml"
_ASIDE_RE = re.compile(r"\(([^()]*)\)")
_QUESTION_RE = re.compile(r"\?+")


@dataclass
class MarkerLists:
    british: frozenset[str]
    american: frozenset[str]
    aside_min_words: int
    phrases: list[str]
    opening_words: int
    lexicon: list[str]

    def __post_init__(self) -> None:
        self._exact = frozenset(w for w in self.lexicon if not w.endswith("*"))
        self._prefixes = tuple(w[:-1] for w in self.lexicon if w.endswith("*"))
        self._phrase_res = [
            re.compile(r"(?<![a-z'])" + r"\s+".join(map(re.escape, p.lower().split())) + r"(?![a-z'])")
            for p in self.phrases
        ]

    def in_lexicon(self, word: str) -> bool:
        return word in self._exact or word.startswith(self._prefixes)

    def phrase_count(self, text: str) -> int:
        low = text.replace("\u2019", "'").lower()
        return sum(len(r.findall(low)) for r in self._phrase_res)


def load_markers(path: str | Path | None = None) -> MarkerLists:
    """Read the marker lists; errors name the file and the missing key."""
    path = Path(path) if path else MARKERS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MorrisError(f"style marker file {path} is missing; restore morris_mlx/bundled/prompts/style_markers.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise MorrisError(f"style marker file {path} is not valid TOML: {exc}") from None
    try:
        return MarkerLists(
            british=frozenset(w.lower() for w in data["spelling"]["british"]),
            american=frozenset(w.lower() for w in data["spelling"]["american"]),
            aside_min_words=int(data["parentheticals"]["min_words"]),
            phrases=[str(p) for p in data["signature"]["phrases"]],
            opening_words=int(data["opening"]["words"]),
            lexicon=[w.lower() for w in data["opening"]["lexicon"]],
        )
    except KeyError as exc:
        raise MorrisError(f"style marker file {path} lacks the key {exc}; see the bundled file's layout") from None


def _bare(tokens: list[str]) -> list[str]:
    """Words without a possessive ending, so "organisation's" counts as "organisation"."""
    return [t[:-2] if t.endswith("'s") else t.rstrip("'") for t in tokens]


def count_spellings(text: str, lists: MarkerLists) -> tuple[int, int]:
    """(British, American) spelling variants among the words of `text`."""
    tokens = _bare(words(text))
    return sum(t in lists.british for t in tokens), sum(t in lists.american for t in tokens)


def count_asides(text: str, min_words: int) -> int:
    """Bracketed asides of at least `min_words` words."""
    return sum(len(words(m)) >= min_words for m in _ASIDE_RE.findall(strip_headings(text)))


def count_questions(text: str) -> int:
    """Questions in the prose; in an article nearly every question is rhetorical ("??" counts once)."""
    return len(_QUESTION_RE.findall(strip_headings(text)))


def count_phrases(text: str, lists: MarkerLists) -> int:
    """Occurrences of the signature phrases, whole words only, any case and spacing."""
    return lists.phrase_count(text)


def sentence_lengths(text: str) -> list[int]:
    return [len(words(s)) for s in sentences(text)]


def opening_hits(text: str, lists: MarkerLists) -> tuple[int, int]:
    """(doom-lexicon words, words) in the opening of `text`."""
    opening = _bare(words(first_words(text, lists.opening_words)))
    return sum(lists.in_lexicon(w) for w in opening), len(opening)


@dataclass(frozen=True)
class MarkerInfo:
    key: str
    label: str
    meaning: str
    unit: str


MARKERS: tuple[MarkerInfo, ...] = (
    MarkerInfo("british_spelling", "British spellings", "British variants (colour, organise, fibre...)", "per 1k words"),
    MarkerInfo("american_spelling", "American spellings", "American variants (color, organize, fiber...)", "per 1k words"),
    MarkerInfo("asides", "Parenthetical asides", "bracketed asides of two words or more", "per 1k words"),
    MarkerInfo("questions", "Rhetorical questions", "question marks in the prose", "per 1k words"),
    MarkerInfo("signature", "Signature phrases", "phrases from the marker file", "per 1k words"),
    MarkerInfo("sentence_mean", "Mean sentence length", "words per sentence", "words"),
    MarkerInfo("sentence_std", "Sentence length spread", "standard deviation of words per sentence", "words"),
    MarkerInfo("opening_doom", "Doom-laden opening", "doom-lexicon words in each text's opening", "per 1k words"),
)


def marker_rates(texts: Sequence[str], lists: MarkerLists) -> dict[str, float]:
    """Every marker pooled over `texts`; rates are per 1,000 words (NaN where there are no words)."""
    n_words = british = american = asides = questions = signature = doom = opening_n = 0
    lengths: list[int] = []
    for text in texts:
        n_words += len(words(text))
        b, a = count_spellings(text, lists)
        british += b
        american += a
        asides += count_asides(text, lists.aside_min_words)
        questions += count_questions(text)
        signature += count_phrases(text, lists)
        lengths.extend(sentence_lengths(text))
        hits, n = opening_hits(text, lists)
        doom += hits
        opening_n += n

    def rate(count: int, total: int) -> float:
        return 1000.0 * count / total if total else float("nan")

    return {
        "british_spelling": rate(british, n_words),
        "american_spelling": rate(american, n_words),
        "asides": rate(asides, n_words),
        "questions": rate(questions, n_words),
        "signature": rate(signature, n_words),
        "sentence_mean": float(np.mean(lengths)) if lengths else float("nan"),
        "sentence_std": float(np.std(lengths)) if lengths else float("nan"),
        "opening_doom": rate(doom, opening_n),
    }
