"""Varied user instructions from bundled/prompts/instructions.toml, picked per article from the seed."""

from __future__ import annotations

import hashlib
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from morris_mlx.dataset.article import KINDS, Article
from morris_mlx.errors import MorrisError
from morris_mlx.paths import PROMPTS_DIR

INSTRUCTIONS_FILE = PROMPTS_DIR / "instructions.toml"
ARTICLE_FIELDS = ("topic", "headline", "standfirst")
PART_FIELDS = ARTICLE_FIELDS + ("instruction", "part", "parts", "previous")


@dataclass(frozen=True)
class Template:
    text: str
    weight: int
    fields: frozenset[str]


@dataclass(frozen=True)
class Instructions:
    templates: dict[str, tuple[Template, ...]]  # by article kind
    part_first: str
    part_later: str

    def choose(self, article: Article, seed: int) -> str:
        """The instruction for `article`: the same for the same seed and article id on every run."""
        values = _values(article)
        usable = [t for t in self.templates[article.kind] if all(values[f] for f in t.fields)]
        if not usable:
            raise MorrisError(
                f"{article.origin}: no {article.kind} instruction template fits it (all need fields it "
                f"lacks); add one using only {{topic}} to {INSTRUCTIONS_FILE.name}"
            )
        digest = hashlib.sha256(f"{seed}\0{article.id}".encode()).digest()
        ticket = int.from_bytes(digest[:8], "big") % sum(t.weight for t in usable)
        for template in usable:
            ticket -= template.weight
            if ticket < 0:
                return template.text.format(**values)
        raise AssertionError("unreachable: the ticket is below the total weight")

    def for_part(self, instruction: str, article: Article, part: int, parts: int) -> str:
        if parts == 1:
            return instruction
        template = self.part_first if part == 1 else self.part_later
        return template.format(
            instruction=instruction, part=part, parts=parts, previous=part - 1, **_values(article)
        )


def _values(article: Article) -> dict[str, str]:
    return {"topic": article.topic, "headline": article.title, "standfirst": article.standfirst}


def _fields(text: str, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise MorrisError(
            f"{where}: bad template {text!r} ({exc}); write literal braces as {{{{ }}}}"
        ) from None
    unknown = names - set(allowed)
    if unknown:
        raise MorrisError(
            f"{where}: template {text!r} uses unknown placeholder(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join('{' + a + '}' for a in allowed)}"
        )
    return frozenset(names)


def load_instructions(path: str | Path | None = None) -> Instructions:
    path = Path(path) if path else INSTRUCTIONS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MorrisError(
            f"instruction templates {path} are missing; reinstall morris_mlx"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise MorrisError(f"{path}: not valid TOML ({exc})") from None
    templates: dict[str, tuple[Template, ...]] = {}
    for kind in KINDS:
        entries = data.get(kind)
        if not isinstance(entries, list) or not entries:
            raise MorrisError(f"{path}: needs at least one [[{kind}]] template with text and weight")
        found = []
        for i, entry in enumerate(entries):
            where = f"{path} [[{kind}]] #{i + 1}"
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) or not entry["text"]:
                raise MorrisError(f'{where}: needs a non-empty text = "..."')
            weight = entry.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise MorrisError(f"{where}: weight must be a positive integer, got {weight!r}")
            found.append(Template(entry["text"], weight, _fields(entry["text"], ARTICLE_FIELDS, where)))
        templates[kind] = tuple(found)
    parts = data.get("parts")
    if not isinstance(parts, dict) or not all(isinstance(parts.get(k), str) for k in ("first", "later")):
        raise MorrisError(f'{path}: needs a [parts] table with first = "..." and later = "..."')
    for key in ("first", "later"):
        _fields(parts[key], PART_FIELDS, f"{path} [parts] {key}")
    return Instructions(templates, parts["first"], parts["later"])
