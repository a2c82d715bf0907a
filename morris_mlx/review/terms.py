"""The do-not-publish list: words and names a user never wants in output, from a TOML file.

    # review-terms.toml
    case_sensitive = false                 # optional, default false
    words = ["guaranteed returns", "world-first"]
    names = ["Jane Doe", { text = "Acme Telecom", reason = "a client: never name them" }]

Matches are flagged for a person to deal with, never removed: silently editing generated text would hide
what the model wrote. Off unless a list is given.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from morris_mlx.errors import MorrisError
from morris_mlx.review.flag import Flag

GROUPS = ("words", "names")
KEYS = {"case_sensitive", *GROUPS}


@dataclass(frozen=True)
class Term:
    text: str
    group: str  # "words" or "names"
    reason: str = ""


@dataclass(frozen=True)
class TermList:
    terms: tuple[Term, ...]
    case_sensitive: bool = False
    source: str = ""

    def find(self, text: str) -> list[Flag]:
        flags = []
        flags_re = 0 if self.case_sensitive else re.IGNORECASE
        for term in self.terms:
            # Whole words only, any run of spaces between them; a name also matches its possessive.
            body = r"\s+".join(re.escape(part) for part in term.text.split())
            tail = r"(?:['’]s)?" if term.group == "names" else ""
            pattern = rf"(?<![\w-]){body}{tail}(?![\w-])"
            for m in re.finditer(pattern, text, flags_re):
                why = f": {term.reason}" if term.reason else ""
                where = "names" if term.group == "names" else "words"
                flags.append(Flag("term", m.group(0), m.start(), m.end(), f"on your do-not-publish {where} list{why}"))
        return flags


def parse_terms(text: str, source: str = "the term list") -> TermList:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MorrisError(f"{source} is not valid TOML ({exc}); see data/README.md for the format") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise MorrisError(f"{source}: unknown key {unknown[0]!r}; use words = [...], names = [...], case_sensitive")
    case = data.get("case_sensitive", False)
    if not isinstance(case, bool):
        raise MorrisError(f"{source}: case_sensitive must be true or false")
    terms: list[Term] = []
    for group in GROUPS:
        entries = data.get(group, [])
        if not isinstance(entries, list):
            raise MorrisError(f'{source}: {group} must be a list, e.g. {group} = ["..."]')
        for n, entry in enumerate(entries, 1):
            terms.append(_term(entry, group, f"{source}: {group} entry {n}"))
    if not terms:
        raise MorrisError(f"{source} lists no terms; add words = [...] or names = [...]")
    return TermList(tuple(terms), case, source)


def _term(entry: object, group: str, where: str) -> Term:
    reason = ""
    if isinstance(entry, dict):
        extra = sorted(set(entry) - {"text", "reason"})
        if extra:
            raise MorrisError(f"{where} has unknown key {extra[0]!r}; use text and reason")
        reason = entry.get("reason", "")
        entry = entry.get("text")
        if not isinstance(reason, str):
            raise MorrisError(f"{where}: reason must be a string")
    if not isinstance(entry, str) or not entry.strip():
        raise MorrisError(f'{where} must be a non-empty string or {{ text = "...", reason = "..." }}')
    return Term(" ".join(entry.split()), group, reason.strip())


def load_terms(path: str | Path) -> TermList:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MorrisError(f"term list {path} does not exist; pass a TOML file (see data/README.md)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MorrisError(f"term list {path} is not UTF-8; re-save it as UTF-8 text") from None
    return parse_terms(text, str(path))
