"""Run every check over an article: `review_text` (pure, on text) and `Reviewer` (with its corpus and
term list loaded once, for the command line, the TUI and the server)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from morris_mlx.review.claims import find_claims
from morris_mlx.review.copied import ShingleIndex
from morris_mlx.review.dates import find_dates
from morris_mlx.review.document import article_region
from morris_mlx.review.flag import Flag, sort_flags
from morris_mlx.review.names import find_names
from morris_mlx.review.numbers import find_numbers
from morris_mlx.review.quotes import find_quotes
from morris_mlx.review.sentences import split_sentences
from morris_mlx.review.terms import TermList, load_terms

TERMS_FILENAME = "review-terms.toml"  # in MORRIS_HOME: the do-not-publish list used when none is named


def review_text(
    text: str,
    index: ShingleIndex | None = None,
    vocabulary: frozenset[str] = frozenset(),
    terms: TermList | None = None,
) -> list[Flag]:
    """Everything in `text` a person should check, in checklist order; offsets index into `text`."""
    start, end = article_region(text)
    body = text[start:end]
    sentences = split_sentences(body)
    dates = find_dates(body)
    numbers = find_numbers(body, exclude=dates)
    quotes = find_quotes(body, sentences)
    names = find_names(body, sentences, vocabulary, exclude=dates + numbers)
    claims = find_claims(body, sentences, names, quotes + numbers + dates)
    flags = dates + numbers + quotes + names + claims
    if index is not None:
        flags += index.find(body)
    if terms is not None:
        flags += terms.find(body)
    if start:
        flags = [Flag(f.kind, f.text, f.start + start, f.end + start, f.detail) for f in flags]
    return sort_flags(flags)


@dataclass
class Reviewer:
    index: ShingleIndex | None = None
    vocabulary: frozenset[str] = frozenset()
    terms: TermList | None = None
    compared_with: tuple[str, ...] = ()  # what copied spans were looked for in
    notes: tuple[str, ...] = ()  # what could not be checked, and why

    def review(self, text: str) -> list[Flag]:
        return review_text(text, self.index, self.vocabulary, self.terms)


def default_terms_path() -> Path:
    from morris_mlx.paths import morris_home

    return morris_home() / TERMS_FILENAME


def make_reviewer(
    adapter_path: str | Path | None = None,
    data_dirs: tuple[str | Path, ...] = (),
    terms_path: str | Path | None = None,
) -> Reviewer:
    """A reviewer that compares with the bundled corpus, the adapter's training data and `data_dirs`,
    and flags the terms of `terms_path` (else of MORRIS_HOME/review-terms.toml when it exists).
    Bad term lists raise MorrisError; missing training data is a note, not an error."""
    from morris_mlx.review.sources import adapter_training_data, load_corpus

    dirs = [Path(d) for d in data_dirs]
    notes: list[str] = []
    if adapter_path is not None:
        found, why = adapter_training_data(Path(adapter_path))
        if found is not None:
            dirs.append(found)
        else:
            notes.append(why)
    corpus = load_corpus(tuple(dict.fromkeys(dirs)))
    if terms_path is None and default_terms_path().is_file():
        terms_path = default_terms_path()
    terms = load_terms(terms_path) if terms_path is not None else None
    return Reviewer(
        index=corpus.index,
        vocabulary=corpus.vocabulary,
        terms=terms,
        compared_with=corpus.described,
        notes=tuple(notes) + corpus.notes,
    )
