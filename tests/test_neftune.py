"""NEFTune: noise on the input embeddings while training only, of the paper's scale, on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import write_chat_data

from morris_mlx.config import load_config
from morris_mlx.training import read_metrics

ALPHA = 5.0


def test_mlx_noise_only_in_training_and_within_its_bound():
    mx = pytest.importorskip("mlx.core")
    import mlx.nn as nn

    from morris_mlx.backends.mlx_train import noisy_embedding

    inner = nn.Embedding(50, 16)
    noisy = noisy_embedding(inner, ALPHA)
    tokens = mx.array([[1, 2, 3, 4, 5, 6, 7, 8]])
    noisy.eval()
    assert np.array_equal(np.array(noisy(tokens)), np.array(inner(tokens)))
    noisy.train()
    diff = np.abs(np.array(noisy(tokens)) - np.array(inner(tokens)))
    bound = ALPHA / math.sqrt(8 * 16)
    assert 0 < diff.max() <= bound + 1e-6 and diff.mean() > bound / 4
    x = mx.ones((1, 16))
    assert np.array_equal(np.array(noisy.as_linear(x)), np.array(inner.as_linear(x)))  # tied output weights


def test_torch_noise_only_in_training_and_within_its_bound():
    torch = pytest.importorskip("torch")

    from morris_mlx.backends.torch_train import neftune_hook

    embedding = torch.nn.Embedding(50, 16)
    tokens = torch.arange(1, 9)[None]
    clean = embedding(tokens).detach()
    embedding.register_forward_hook(neftune_hook(ALPHA))
    embedding.eval()
    assert torch.equal(embedding(tokens).detach(), clean)
    embedding.train()
    diff = (embedding(tokens).detach() - clean).abs()
    bound = ALPHA / math.sqrt(8 * 16)
    assert 0 < diff.max().item() <= bound + 1e-6 and diff.mean().item() > bound / 4


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_training_with_neftune_runs_and_differs(backend, tiny_model, tmp_path):
    from morris_mlx.backends import get_backend

    data = write_chat_data(tmp_path / "data")
    losses = {}
    for alpha in (0.0, ALPHA):
        cfg = load_config(overrides={"train.iters": 4, "lora.rank": 4, "train.neftune_alpha": alpha,
                                     "train.steps_per_eval": 2, "train.patience": 0})
        out = tmp_path / f"a{alpha}"
        get_backend(backend, announce=False).train(cfg, tiny_model, data, out, quiet=True)
        losses[alpha] = [r["loss"] for r in read_metrics(out) if r["kind"] == "train"]
    assert losses[0.0][0] != losses[ALPHA][0]  # the noise reaches the forward pass from the first step
    vals = [r["val_loss"] for r in read_metrics(tmp_path / f"a{ALPHA}") if r["kind"] == "val"]
    assert all(math.isfinite(v) for v in vals)
