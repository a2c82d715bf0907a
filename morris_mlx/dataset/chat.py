"""Chat-format examples: system prompt, instruction, and the article as the assistant's reply.

An article longer than the token limit is cut at paragraph boundaries (at sentence boundaries inside a
paragraph too long on its own, never mid-sentence) into balanced parts; each part is an example whose
instruction says "part k of n". Lengths are measured on the final examples with the model's tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from morris_mlx.dataset.article import Article
from morris_mlx.dataset.instructions import Instructions
from morris_mlx.dataset.tokens import TokenCounter
from morris_mlx.errors import MorrisError

_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_SAFETY_TOKENS = 8  # token merges across joins make lengths slightly non-additive


class TooLong(Exception):
    """A single sentence does not fit the token limit, so the article cannot be cut cleanly."""


@dataclass(frozen=True)
class Example:
    article_id: str
    part: int
    parts: int
    tokens: int
    messages: list[dict[str, str]]
    # A part trained on beside its whole article (prepare's train_parts), not a cut of it.
    extra: bool = False


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    new_paragraph: bool


def messages_for(system: str, user: str, article: Article, body: str, part: int) -> list[dict[str, str]]:
    # Part 1 opens with the headline as a Markdown title, as the original's training data did.
    reply = f"# {article.title}\n\n{body}" if part == 1 else body
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": reply},
    ]


def split_sentences(paragraph: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_BREAK.finditer(paragraph):
        pieces.append(paragraph[start : match.start()] + match.group().rstrip())
        start = match.end()
    pieces.append(paragraph[start:])
    return [p for p in pieces if p]


def _join(units: list[_Unit]) -> str:
    text = ""
    for i, unit in enumerate(units):
        text += ("" if i == 0 else "\n\n" if unit.new_paragraph else " ") + unit.text
    return text


def _pack(units: list[_Unit], cap: int) -> list[list[_Unit]]:
    """Greedy: consecutive units into groups of at most `cap` tokens (a unit over `cap` stands alone)."""
    groups: list[list[_Unit]] = [[]]
    used = 0
    for unit in units:
        cost = unit.tokens + 1
        if groups[-1] and used + cost > cap:
            groups.append([])
            used = 0
        groups[-1].append(unit)
        used += cost
    return groups


def _balanced(units: list[_Unit], budget: int) -> list[list[_Unit]]:
    """As few parts as fit `budget`, with the largest part as small as possible (no stub last part)."""
    count = len(_pack(units, budget))
    low, high = max(u.tokens + 1 for u in units), budget
    while low < high:
        mid = (low + high) // 2
        if len(_pack(units, mid)) <= count:
            high = mid
        else:
            low = mid + 1
    return _pack(units, high)


def _units(article: Article, counter: TokenCounter, budget: int) -> list[_Unit]:
    units = []
    for paragraph, tokens in zip(article.paragraphs, counter.texts(list(article.paragraphs)), strict=True):
        if tokens + 1 <= budget:
            units.append(_Unit(paragraph, tokens, True))
            continue
        sentences = split_sentences(paragraph)
        for i, (sentence, n) in enumerate(zip(sentences, counter.texts(sentences), strict=True)):
            if n + 1 > budget:
                raise TooLong(sentence[:80])
            units.append(_Unit(sentence, n, i == 0))
    return units


def build_examples(
    article: Article,
    instruction: str,
    system: str,
    instructions: Instructions,
    counter: TokenCounter,
    max_tokens: int,
) -> list[Example]:
    """The article as one example, or as parts that each fit `max_tokens`. Raises TooLong."""
    whole = messages_for(system, instruction, article, article.body, 1)
    length = counter.chat(whole)
    if length <= max_tokens:
        return [Example(article.id, 1, 1, length, whole)]

    # The prompt's own cost with a two-digit part count bounds what any part's prompt costs.
    overhead = max(
        counter.chat(
            messages_for(system, instructions.for_part(instruction, article, part, 99), article, "", part)
        )
        for part in (1, 2)
    )
    budget = max_tokens - overhead - _SAFETY_TOKENS
    if budget < 32:
        raise MorrisError(
            f"a token limit of {max_tokens} leaves {max(budget, 0)} tokens for the article after the prompt "
            f"({overhead} tokens, in {article.origin}); raise --max-seq-length"
        )
    while True:
        units = _units(article, counter, budget)
        groups = _balanced(units, budget)
        examples = []
        for part, group in enumerate(groups, start=1):
            user = instructions.for_part(instruction, article, part, len(groups))
            messages = messages_for(system, user, article, _join(group), part)
            examples.append(Example(article.id, part, len(groups), counter.chat(messages), messages))
        excess = max(e.tokens for e in examples) - max_tokens
        if excess <= 0:
            return examples
        budget -= excess + _SAFETY_TOKENS
