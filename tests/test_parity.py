"""Logit and greedy-continuation parity between plain mlx-lm and the torch backend, on the same tiny
random weights, with and without the same LoRA adapter (MLX format, read by torch through the
MLX -> PEFT mapping of docs/mlx-peft-mapping.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")
pytest.importorskip("torch")
pytest.importorskip("peft")

from mlx_lm import load as mlx_load  # noqa: E402
from mlx_lm import stream_generate  # noqa: E402
from mlx_lm.sample_utils import make_logits_processors, make_sampler  # noqa: E402

from morris_mlx.backends.torch_backend import TorchBackend  # noqa: E402
from morris_mlx.config import GenerateConfig  # noqa: E402

TOLERANCE = 1e-4
MESSAGES = [
    {"role": "system", "content": "You are a gloomy British telecom columnist."},
    {"role": "user", "content": "Write a telecom industry news article about: open RAN"},
]
LORA = {
    "rank": 4,
    "scale": 2.0,
    "dropout": 0.0,
    "keys": ["self_attn.q_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj"],
}


def write_mlx_adapter(model_dir: Path, out: Path, num_layers: int) -> Path:
    """A random, nonzero adapter saved exactly as mlx-lm saves one."""
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = mlx_load(str(model_dir))
    model.freeze()
    mx.random.seed(7)
    linear_to_lora_layers(model, num_layers, LORA)
    for _, module in model.named_modules():
        if hasattr(module, "lora_b"):
            module.lora_b = mx.random.normal(module.lora_b.shape) * 0.5
    out.mkdir(parents=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    config = {"fine_tune_type": "lora", "num_layers": num_layers, "lora_parameters": LORA}
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def mlx_adapter(tiny_model, tmp_path_factory) -> Path:
    # Only the last of the two blocks: the mapping must carry mlx-lm's num_layers over.
    return write_mlx_adapter(tiny_model, tmp_path_factory.mktemp("adapters") / "mlx-r4", num_layers=1)


@pytest.fixture(scope="module")
def mlx_models(tiny_model, mlx_adapter):
    base, tokenizer = mlx_load(str(tiny_model))
    adapted, _ = mlx_load(str(tiny_model), adapter_path=str(mlx_adapter))
    return base, adapted, tokenizer


@pytest.fixture(scope="module")
def torch_generator(tiny_model):
    return TorchBackend("cpu").load(tiny_model)


def mlx_logits(model, ids: list[int]) -> np.ndarray:
    return np.array(model(mx.array([ids]))[0].astype(mx.float32))


def mlx_greedy(model, tokenizer, ids: list[int], max_tokens: int, penalty: float | None) -> tuple[str, int]:
    responses = list(
        stream_generate(
            model,
            tokenizer,
            ids,
            max_tokens=max_tokens,
            sampler=make_sampler(0.0),
            logits_processors=make_logits_processors(repetition_penalty=penalty),
        )
    )
    return "".join(r.text for r in responses), responses[-1].generation_tokens


def torch_greedy(generator, max_tokens: int, penalty: float) -> tuple[str, int]:
    settings = GenerateConfig(temp=0.0, max_tokens=max_tokens, repetition_penalty=penalty, seed=0)
    chunks = list(generator.stream(MESSAGES, settings))
    return "".join(c.text for c in chunks), chunks[-1].generation_tokens


def test_same_prompt_tokens(mlx_models, torch_generator):
    _, _, tokenizer = mlx_models
    expected = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=False)
    assert torch_generator.encode_chat(MESSAGES, add_generation_prompt=True) == list(expected)


def test_base_logits_match(mlx_models, torch_generator):
    base, _, _ = mlx_models
    ids = torch_generator.encode_chat(MESSAGES, add_generation_prompt=True)
    expected = mlx_logits(base, ids)
    actual = torch_generator.logits(ids)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    assert np.abs(actual - expected).max() < TOLERANCE


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_base_greedy_continuation_matches(mlx_models, torch_generator, penalty):
    base, _, tokenizer = mlx_models
    ids = torch_generator.encode_chat(MESSAGES, add_generation_prompt=True)
    assert torch_greedy(torch_generator, 24, penalty) == mlx_greedy(base, tokenizer, ids, 24, penalty)


@pytest.mark.parametrize("fuse", [False, True])
def test_adapter_logits_match(mlx_models, tiny_model, mlx_adapter, fuse):
    base, adapted, _ = mlx_models
    generator = TorchBackend("cpu").load(tiny_model, mlx_adapter, fuse=fuse)
    ids = generator.encode_chat(MESSAGES, add_generation_prompt=True)
    expected = mlx_logits(adapted, ids)
    # The adapter must move the logits far more than the tolerance, or the comparison proves nothing.
    assert np.abs(expected - mlx_logits(base, ids)).max() > 100 * TOLERANCE
    assert np.abs(generator.logits(ids) - expected).max() < TOLERANCE


def test_adapter_greedy_continuation_matches(mlx_models, tiny_model, mlx_adapter):
    base, adapted, tokenizer = mlx_models
    generator = TorchBackend("cpu").load(tiny_model, mlx_adapter, fuse=True)
    ids = generator.encode_chat(MESSAGES, add_generation_prompt=True)
    expected = mlx_greedy(adapted, tokenizer, ids, 24, None)
    assert expected != mlx_greedy(base, tokenizer, ids, 24, None)
    assert torch_greedy(generator, 24, 1.0) == expected


def test_set_adapter_swaps_without_reloading(mlx_models, torch_generator, mlx_adapter):
    base, adapted, _ = mlx_models
    ids = torch_generator.encode_chat(MESSAGES, add_generation_prompt=True)
    weights = torch_generator.base.model.embed_tokens.weight
    for fuse in (True, False, True):
        torch_generator.set_adapter(mlx_adapter, fuse=fuse)
        assert torch_generator.adapter_path == mlx_adapter
        assert np.abs(torch_generator.logits(ids) - mlx_logits(adapted, ids)).max() < TOLERANCE
    torch_generator.set_adapter(None)
    assert torch_generator.adapter_path is None
    assert torch_generator.base.model.embed_tokens.weight is weights
    assert np.abs(torch_generator.logits(ids) - mlx_logits(base, ids)).max() < TOLERANCE


@pytest.mark.parametrize(
    "settings",
    [
        GenerateConfig(temp=0.7, top_p=0.9, top_k=0, min_p=0.0, repetition_penalty=1.0),
        GenerateConfig(temp=1.3, top_p=1.0, top_k=20, min_p=0.05, repetition_penalty=1.0),
        GenerateConfig(temp=0.5, top_p=0.6, top_k=40, min_p=0.1, repetition_penalty=1.25),
    ],
)
def test_sampling_filters_mean_what_they_mean_in_mlx_lm(settings):
    """The distribution sampled from is mlx-lm's: same penalty context, same filters in the same order,
    temperature applied last."""
    import torch
    from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p, make_repetition_penalty

    from morris_mlx.backends.torch_generate import MlxSampling

    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((1, 300)) * 3).astype(np.float32)
    history = rng.integers(0, 300, size=40)

    expected = make_repetition_penalty(settings.repetition_penalty)(mx.array(history), mx.array(logits))
    expected = expected - mx.logsumexp(expected, axis=-1, keepdims=True)
    if settings.top_p < 1.0:
        expected = apply_top_p(expected, settings.top_p)
    if settings.min_p:
        expected = apply_min_p(expected, settings.min_p)
    if settings.top_k:
        expected = apply_top_k(expected, settings.top_k)
    expected = np.array(expected) / settings.temp

    actual = MlxSampling(settings)(torch.tensor(history[None]), torch.tensor(logits)).numpy()
    kept = np.isfinite(expected)
    assert 0 < kept.sum() < kept.size  # the filters did something
    assert np.array_equal(np.isfinite(actual), kept)
    assert np.abs(actual[kept] - expected[kept]).max() < 1e-4


def test_torch_trained_adapter_gives_the_same_logits_in_mlx_lm(mlx_models, tiny_model, tiny_data, tmp_path):
    """Train on torch, generate on MLX: the PEFT adapter torch writes, mapped to mlx-lm's format by the
    export package, moves mlx-lm's logits exactly as it moves torch's."""
    from morris_mlx.adapter_format.checks import model_layout
    from morris_mlx.adapter_format.mapping import mlx_num_layers, read_peft_adapter, write_mlx_adapter
    from morris_mlx.config import load_config

    cfg = load_config(
        overrides={
            "train.iters": 4,
            "train.batch_size": 2,
            "train.grad_accumulation": 1,
            "train.learning_rate": 5e-2,
            "lora.rank": 4,
            "lora.num_layers": 1,
            "lora.target_modules": ["q_proj", "v_proj", "o_proj", "down_proj"],
        }
    )
    peft_dir = tmp_path / "peft"
    TorchBackend("cpu").train(cfg, tiny_model, tiny_data, peft_dir, quiet=True)
    adapter, layers = read_peft_adapter(peft_dir)
    layout = model_layout(tiny_model)
    mlx_dir = tmp_path / "mlx"
    mlx_dir.mkdir()
    write_mlx_adapter(adapter, mlx_dir, layout.num_layers, mlx_num_layers(layers, layout), str(tiny_model))

    base, _, _ = mlx_models
    adapted, _ = mlx_load(str(tiny_model), adapter_path=str(mlx_dir))
    generator = TorchBackend("cpu").load(tiny_model, peft_dir)
    ids = generator.encode_chat(MESSAGES, add_generation_prompt=True)
    expected = mlx_logits(adapted, ids)
    assert np.abs(expected - mlx_logits(base, ids)).max() > 100 * TOLERANCE
    assert np.abs(generator.logits(ids) - expected).max() < TOLERANCE
