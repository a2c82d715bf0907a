"""Perplexity through the Generator protocol, from fake generators whose logits are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from morris_mlx.evaluation import perplexity

VOCAB = 50


class FakeGenerator:
    """Tokens are characters (ord % VOCAB); the prompt is 'S' + system + 'U' + user + 'A'."""

    backend = "fake"

    def __init__(self, logits_fn):
        self.logits_fn = logits_fn
        self.calls: list[list[int]] = []

    def encode_chat(self, messages, add_generation_prompt):
        text = "".join(m["role"][0].upper() + m["content"] for m in messages)
        if add_generation_prompt:
            text += "A"
        elif messages[-1]["role"] == "assistant":
            text += "."  # the end-of-turn token, scored with the reply
        return [ord(c) % VOCAB for c in text]

    def logits(self, token_ids):
        self.calls.append(list(token_ids))
        return self.logits_fn(token_ids).astype(np.float32)


def convo(reply: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": "topic"},
            {"role": "assistant", "content": reply}]


def test_uniform_logits_give_the_vocabulary_size():
    gen = FakeGenerator(lambda ids: np.zeros((len(ids), VOCAB)))
    result = perplexity.perplexity(gen, [convo("hello there"), convo("grim")])
    assert result.perplexity == pytest.approx(VOCAB, rel=1e-9)
    assert result.tokens == len("hello there") + 1 + len("grim") + 1
    assert result.documents == 2


def test_only_the_assistant_tokens_are_scored():
    # Logits before the reply strongly predict a wrong token: if the prompt were scored (or the slice
    # were off by one) the perplexity would be far from the vocabulary size.
    def logits(ids):
        prompt_len = len("SsysUtopicA")
        out = np.zeros((len(ids), VOCAB))
        out[: prompt_len - 1, 0] = 30.0
        return out

    gen = FakeGenerator(logits)
    assert perplexity.perplexity(gen, [convo("abc")]).perplexity == pytest.approx(VOCAB, rel=1e-9)


def test_a_model_that_knows_the_next_token():
    def logits(ids):
        out = np.zeros((len(ids), VOCAB))
        for t in range(len(ids) - 1):
            out[t, ids[t + 1]] = 100.0  # peeks: certain of the right answer
        return out

    result = perplexity.perplexity(FakeGenerator(logits), [convo("certain")])
    assert result.perplexity == pytest.approx(1.0, abs=1e-9)


def test_token_nll_by_hand():
    probs = np.array([[0.5, 0.25, 0.125, 0.125], [0.1, 0.2, 0.3, 0.4]])
    nll = perplexity.token_nll(np.log(probs), [1, 3])
    np.testing.assert_allclose(nll, [math.log(4), -math.log(0.4)])
    # shifting a row's logits by a constant changes nothing; huge logits do not overflow
    np.testing.assert_allclose(perplexity.token_nll(np.log(probs) + 1000.0, [1, 3]), nll)


def test_blocks_cover_long_sequences():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(600, 7))
    targets = rng.integers(0, 7, size=600)
    expected = -np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[np.arange(600), targets]
    np.testing.assert_allclose(perplexity.token_nll(logits, targets), expected, rtol=1e-10)


def test_pooled_over_tokens_not_averaged_over_documents():
    # Document one: 1 scored token at p = 1/2; document two: 3 tokens at p = 1/8 each.
    def logits(ids):
        out = np.full((len(ids), VOCAB), -1e9)
        p = 0.5 if len(ids) == len("SsysUtopicA.") else 0.125
        out[:, 0] = math.log(p)
        out[:, 1:] = math.log((1 - p) / (VOCAB - 1))
        for t in range(len(ids) - 1):
            out[t, ids[t + 1]], out[t, 0] = out[t, 0], out[t, ids[t + 1]]
        return out

    gen = FakeGenerator(logits)
    result = perplexity.perplexity(gen, [convo(""), convo("xy")])
    # convo("") scores only the end-of-turn token; convo("xy") scores x, y and the end token
    assert result.tokens == 4
    assert result.nll_per_token == pytest.approx((math.log(2) + 3 * math.log(8)) / 4)
    assert result.per_document == pytest.approx([2.0, 8.0])


def test_max_length_cuts_the_sequence():
    gen = FakeGenerator(lambda ids: np.zeros((len(ids), VOCAB)))
    prompt_len = len("SsysUtopicA")
    result = perplexity.perplexity(gen, [convo("abcdefghij")], max_length=prompt_len + 4)
    assert result.tokens == 4
    assert len(gen.calls[0]) == prompt_len + 4


def test_nothing_to_score_is_nan_not_an_error():
    gen = FakeGenerator(lambda ids: np.zeros((len(ids), VOCAB)))
    result = perplexity.perplexity(gen, [convo("abc")], max_length=3)
    assert result.tokens == 0 and math.isnan(result.perplexity)


def test_wrong_logit_shape_is_reported():
    gen = FakeGenerator(lambda ids: np.zeros((len(ids) - 1, VOCAB)))
    with pytest.raises(ValueError, match="positions"):
        perplexity.perplexity(gen, [convo("abc")])


def test_relative_change():
    assert perplexity.relative_change(40.0, 30.0) == pytest.approx(-0.25)
    assert math.isnan(perplexity.relative_change(float("nan"), 3.0))
    assert math.isnan(perplexity.relative_change(0.0, 3.0))
