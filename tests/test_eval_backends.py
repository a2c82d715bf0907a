"""`run_eval` on the real backends with a tiny random model: the Generator contract eval relies on
(encode_chat, logits, stream, set_adapter) holds on both, and both score the same base model alike."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import pytest

from morris_mlx.config import Config
from morris_mlx.evaluation.run import EvalOptions, run_eval

BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"no {module}"))
    for name, module in (("mlx", "mlx"), ("torch", "torch"))
]


def backend_for(name: str):
    from morris_mlx.backends import get_backend

    return get_backend(name, announce=False)


@pytest.fixture(scope="module")
def base_ppl() -> dict[str, float]:
    return {}


@pytest.mark.parametrize("name", BACKENDS)
def test_run_eval_on_a_real_backend(name, tiny_model, tiny_data, tmp_path, base_ppl):
    backend = backend_for(name)
    cfg = Config()
    cfg.train.iters = 4
    cfg.train.grad_accumulation = 1
    cfg.train.steps_per_eval = 4
    cfg.train.save_every = 4
    cfg.train.max_seq_length = 256
    cfg.lora.rank = 4
    adapter = tmp_path / "adapter"
    backend.train(cfg, tiny_model, tiny_data, adapter)

    options = EvalOptions(adapter_path=adapter, model_dir=tiny_model, data_dir=tiny_data, backend=name,
                          seed=1, max_tokens=12, prompts=2)
    first = run_eval(options, backend=backend)
    again = run_eval(replace(options, cache=False), backend=backend)
    assert first["samples"] == again["samples"]  # same seeds, same text
    cached = run_eval(options, backend=backend)  # the base model's half comes back from the first run
    assert (first["meta"]["base_cached"], cached["meta"]["base_cached"]) == (False, True)
    assert (cached["samples"], cached["perplexity"]) == (first["samples"], first["perplexity"])
    ppl = first["perplexity"]["writer"]
    assert math.isfinite(ppl["base"]) and math.isfinite(ppl["adapter"])
    assert ppl["base_detail"]["tokens"] == ppl["adapter_detail"]["tokens"] > 0
    assert ppl["adapter"] != ppl["base"]  # the adapter was switched in
    assert again["perplexity"]["writer"]["adapter"] == pytest.approx(ppl["adapter"], rel=1e-5)
    base_ppl[name] = ppl["base"]
    if len(base_ppl) == 2:  # same weights, same tokens: the backends must agree on the base model
        assert base_ppl["mlx"] == pytest.approx(base_ppl["torch"], rel=1e-3)
