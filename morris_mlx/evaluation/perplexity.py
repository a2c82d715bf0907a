"""Perplexity of the assistant turns of chat conversations, through the backend-neutral `Generator`.

Only the assistant's tokens are scored: the system prompt and instruction are the same for the base model
and the adapter, and scoring them would dilute the measure of how well each predicts the writer's text.
Perplexity is exp of the mean negative log-likelihood per scored token, pooled over all conversations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from morris_mlx.backends.base import Generator

Messages = list[dict[str, str]]
_ROWS_PER_BLOCK = 256  # bounds the float64 copy of the logits at 256 x vocab


def token_nll(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """-log p(target) for each row of `logits` (rows are positions, columns the vocabulary)."""
    out = np.empty(len(targets), dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    for start in range(0, len(targets), _ROWS_PER_BLOCK):
        block = np.asarray(logits[start : start + _ROWS_PER_BLOCK], dtype=np.float64)
        peak = block.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(block - peak).sum(axis=1))
        chosen = block[np.arange(len(block)), targets[start : start + len(block)]]
        out[start : start + len(block)] = log_norm - chosen
    return out


def assistant_nll(generator: Generator, messages: Messages, max_length: int | None = None) -> tuple[float, int]:
    """(summed negative log-likelihood, scored tokens) of the final assistant turn of `messages`.

    The first assistant token is predicted by the logits at the last prompt position, so the slice of
    logits starts one before the offset. Sequences longer than `max_length` are cut at the end.
    """
    offset = len(generator.encode_chat(messages[:-1], add_generation_prompt=True))
    tokens = generator.encode_chat(messages, add_generation_prompt=False)
    if max_length is not None:
        tokens = tokens[:max_length]
    if offset < 1 or offset >= len(tokens):
        return 0.0, 0
    logits = generator.logits(tokens)
    if logits.shape[0] != len(tokens):
        raise ValueError(f"logits cover {logits.shape[0]} positions for {len(tokens)} tokens")
    nll = token_nll(logits[offset - 1 : len(tokens) - 1], tokens[offset:])
    return float(nll.sum()), len(tokens) - offset


@dataclass
class PerplexityResult:
    perplexity: float
    nll_per_token: float
    tokens: int
    documents: int
    per_document: list[float] = field(default_factory=list)  # each conversation's own perplexity

    def to_json(self) -> dict:
        return {
            "perplexity": self.perplexity,
            "nll_per_token": self.nll_per_token,
            "tokens": self.tokens,
            "documents": self.documents,
            "per_document": self.per_document,
        }


def perplexity(
    generator: Generator, conversations: Sequence[Messages], max_length: int | None = None
) -> PerplexityResult:
    """Pooled perplexity over the assistant turns of `conversations` (those with nothing to score skipped)."""
    total_nll, total_tokens, per_doc = 0.0, 0, []
    for messages in conversations:
        nll, n = assistant_nll(generator, messages, max_length)
        if n == 0:
            continue
        total_nll += nll
        total_tokens += n
        per_doc.append(math.exp(nll / n))
    if total_tokens == 0:
        return PerplexityResult(float("nan"), float("nan"), 0, 0, [])
    mean_nll = total_nll / total_tokens
    return PerplexityResult(math.exp(mean_nll), mean_nll, total_tokens, len(per_doc), per_doc)


TEXT_TOKENS = 512  # plain text is scored on its opening: articles differ in length, openings less


def text_perplexity(
    generator: Generator, texts: Sequence[str], max_tokens: int = TEXT_TOKENS
) -> PerplexityResult:
    """Pooled perplexity of plain texts (no chat template), each on its first `max_tokens` tokens.

    This is how a page of prose reads to the model, whoever wrote it: comparing the writer's held-out
    articles with other writers' on the same topics tells learning the writer from learning the topics."""
    total_nll, total_tokens, per_doc = 0.0, 0, []
    for text in texts:
        tokens = generator.encode_text(text)[:max_tokens]
        if len(tokens) < 2:
            continue
        nll = token_nll(generator.logits(tokens)[:-1], tokens[1:])
        total_nll += float(nll.sum())
        total_tokens += len(tokens) - 1
        per_doc.append(math.exp(float(nll.mean())))
    if total_tokens == 0:
        return PerplexityResult(float("nan"), float("nan"), 0, 0, [])
    mean_nll = total_nll / total_tokens
    return PerplexityResult(math.exp(mean_nll), mean_nll, total_tokens, len(per_doc), per_doc)


def specificity(writer_change: float, contrast_change: float) -> float:
    """The writer's perplexity drop over the contrast texts' drop: how much of what the adapter learned
    is the writer rather than the topics or the genre. Above 1: more the writer; NaN when the contrast
    perplexity did not drop: infinite when the writer's did, NaN when neither did."""
    if math.isnan(writer_change) or math.isnan(contrast_change):
        return float("nan")
    if contrast_change >= 0:
        return float("inf") if writer_change < 0 else float("nan")
    return writer_change / contrast_change


def relative_change(before: float, after: float) -> float:
    """(after - before) / before: -0.25 means a 25% reduction."""
    if not before or math.isnan(before) or math.isnan(after):
        return float("nan")
    return (after - before) / before
