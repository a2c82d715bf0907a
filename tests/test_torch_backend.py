"""The torch backend: mlx-lm's training semantics (data, loss, optimizer), training artifacts, exact
resume, early stop, streaming, and one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from conftest import write_chat_data  # noqa: E402
from safetensors.numpy import save_file as save_numpy  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from morris_mlx.adapter_format.provenance import read_provenance  # noqa: E402
from morris_mlx.backends.torch_backend import TorchBackend  # noqa: E402
from morris_mlx.backends.torch_train import (  # noqa: E402
    MlxAdam,
    batch_loss,
    collate,
    epoch_order,
    make_batches,
    read_split,
    tokenize,
)
from morris_mlx.config import GenerateConfig, load_config  # noqa: E402
from morris_mlx.errors import MorrisError  # noqa: E402
from morris_mlx.models.random_model import ModelShape, build_random_model  # noqa: E402
from morris_mlx.training import TrainEvent, read_metrics  # noqa: E402

MESSAGES = [{"role": "user", "content": "Write a telecom industry news article about: fibre"}]


def tiny_cfg(**overrides):
    base = {
        "train.iters": 8,
        "train.batch_size": 2,
        "train.grad_accumulation": 2,
        "train.steps_per_eval": 4,
        "train.save_every": 4,
        "train.learning_rate": 2e-2,
        "lora.rank": 4,
        "lora.dropout": 0.1,
    }
    base.update(overrides)
    return load_config(overrides=base)


def train(tiny_model, data, adapter, cfg=None, **kw):
    return TorchBackend("cpu").train(cfg or tiny_cfg(), tiny_model, data, adapter, quiet=True, **kw)


# semantics shared with mlx-lm -------------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.3, 20.0])
def test_adam_computes_mlx_adam(weight_decay):
    mx = pytest.importorskip("mlx.core")
    import mlx.optimizers as optim

    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 5)).astype(np.float32)
    grads = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(4)]
    rates = [1e-2, 5e-3, 5e-3, 1e-3]

    param = torch.nn.Parameter(torch.from_numpy(start.copy()))
    adam = MlxAdam([param], weight_decay=weight_decay)
    reference = {"w": mx.array(start)}
    # The MLX backend's choice: AdamW with decay, Adam without (mlx's AdamW has no bias correction either).
    mlx_adam = (
        optim.AdamW(learning_rate=rates[0], weight_decay=weight_decay)
        if weight_decay
        else optim.Adam(learning_rate=rates[0])
    )
    for update, (grad, rate) in enumerate(zip(grads, rates, strict=True)):
        param.grad = torch.from_numpy(grad.copy())
        adam.step(rate, update)
        mlx_adam.learning_rate = rate
        reference = mlx_adam.apply_gradients({"w": mx.array(grad)}, reference)
    assert np.abs(param.detach().numpy() - np.array(reference["w"])).max() < 1e-6
    assert np.abs(param.detach().numpy() - start).max() > 1e-2  # it moved


def test_examples_batches_and_loss_match_mlx_lm(tiny_model, tiny_data):
    pytest.importorskip("mlx.core")
    from mlx_lm import load as mlx_load
    from mlx_lm.tuner.datasets import ChatDataset
    from mlx_lm.tuner.trainer import default_loss, iterate_batches

    from morris_mlx.backends.torch_backend import load_model, load_tokenizer

    rows = read_split(tiny_data, "train")
    tokenizer = load_tokenizer(tiny_model)
    examples = tokenize(rows, tokenizer, mask_prompt=True)
    mlx_model, mlx_tokenizer = mlx_load(str(tiny_model))
    reference = ChatDataset(rows, mlx_tokenizer, mask_prompt=True)
    processed = [reference.process(reference[i]) for i in range(len(rows))]
    assert [(e.tokens, e.offset) for e in examples] == [(list(t), o) for t, o in processed]
    assert all(0 < e.offset < len(e.tokens) for e in examples)

    # A plain list makes mlx-lm sort by token length, as we do; the numpy seed fixes its shuffle.
    # 150 tokens truncates the longest examples and pads the others.
    np.random.seed(3)
    theirs = list(iterate_batches(processed, 4, max_seq_length=150))
    batches = make_batches(examples, 4)
    ours = [collate(examples, batches[i], 150) for i in epoch_order(3, 0, len(batches))]
    assert len(ours) == len(theirs) == len(rows) // 4
    model = load_model(tiny_model, "cpu")
    for (tokens, bounds), (mlx_tokens, mlx_bounds) in zip(ours, theirs, strict=True):
        assert np.array_equal(tokens.numpy(), np.array(mlx_tokens))
        assert np.array_equal(bounds.numpy(), np.array(mlx_bounds))
        with torch.no_grad():
            loss, ntoks = batch_loss(model, tokens, bounds)
        mlx_loss, mlx_ntoks = default_loss(mlx_model, mlx_tokens, mlx_bounds)
        assert int(ntoks) == int(mlx_ntoks.item())
        assert abs(loss.item() - mlx_loss.item()) < 1e-4


def test_a_continuing_part_is_trained_without_an_ending_on_both_backends(tiny_model, tiny_data):
    pytest.importorskip("mlx.core")
    from mlx_lm.utils import load_tokenizer as mlx_load_tokenizer

    from morris_mlx.backends.mlx_train import load_datasets
    from morris_mlx.backends.torch_backend import load_tokenizer

    for split in ("train", "valid"):
        rows = read_split(tiny_data, split)
        marked = [{**row, "continues": True} if i % 2 == 0 else row for i, row in enumerate(rows)]
        (tiny_data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in marked))
    rows = read_split(tiny_data, "train")
    tokenizer = load_tokenizer(tiny_model)
    ended = tokenize([{"messages": r["messages"]} for r in rows], tokenizer, mask_prompt=True)
    examples = tokenize(rows, tokenizer, mask_prompt=True)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, full, example in zip(rows, ended, examples, strict=True):
        assert example.offset == full.offset
        if row.get("continues"):
            # the reply's own tokens, then nothing: no end-of-turn to learn
            assert example.tokens == full.tokens[: len(example.tokens)] and len(example.tokens) < len(full.tokens)
            assert end_of_turn in full.tokens[len(example.tokens) :]
            assert end_of_turn not in example.tokens[example.offset :]
        else:
            assert example.tokens == full.tokens

    # The MLX backend's datasets hold the same tokens and offsets, in both splits.
    train_set, valid_set = load_datasets(tiny_data, mlx_load_tokenizer(tiny_model), tiny_cfg())
    assert [(list(t), o) for t, o in (train_set[i] for i in range(len(train_set)))] == [
        (e.tokens, e.offset) for e in examples
    ]
    valid = tokenize(read_split(tiny_data, "valid"), tokenizer, mask_prompt=True)
    assert [(list(t), o) for t, o in (valid_set[i] for i in range(len(valid_set)))] == [
        (e.tokens, e.offset) for e in valid
    ]


def test_a_continuing_part_under_a_template_that_rewrites_replies_is_a_morris_error(tiny_model, tiny_data):
    from morris_mlx.backends.torch_backend import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    tokenizer.chat_template = tokenizer.chat_template.replace("message['content']", "message['content'] | upper")
    rows = read_split(tiny_data, "train")[:2]
    assert len(tokenize(rows, tokenizer, mask_prompt=True)) == 2  # closed replies still tokenize
    with pytest.raises(MorrisError, match="without --open-parts"):
        tokenize([{**rows[0], "continues": True}], tokenizer, mask_prompt=True)


# training ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(tiny_model, tmp_path_factory):
    """One uninterrupted run (8 iterations, checkpoints at 4 and 8), shared by the tests below."""
    root = tmp_path_factory.mktemp("straight")
    data = write_chat_data(root / "data")
    events: list[TrainEvent] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        result = train(tiny_model, data, root / "adapter", callback=events.append)
    return data, root / "adapter", result, events


def test_training_lowers_loss_and_writes_a_peft_adapter(tiny_model, straight_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from morris_mlx.backends.torch_backend import quiet_peft

    _, adapter, result, events = straight_run
    assert result.steps == 8 and not result.stopped_early

    records = read_metrics(adapter)
    assert [r["kind"] for r in records] == [e.kind for e in events]
    assert records[0]["kind"] == "plan" and records[0]["iters"] == 8 and records[-1]["kind"] == "done"
    trains = [r for r in records if r["kind"] == "train"]
    vals = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in trains] == list(range(1, 9))
    assert [r["step"] for r in vals] == [0, 4, 8]
    for record in trains:
        assert {"loss", "learning_rate", "tokens_per_second", "trained_tokens", "peak_memory_gb", "eta_s"} <= set(
            record
        )
    assert trains[-1]["trained_tokens"] > trains[0]["trained_tokens"] > 0
    # One epoch sees each batch once, so the held-out loss is the fair measure of learning.
    assert result.best_val_loss == min(r["val_loss"] for r in vals) < vals[0]["val_loss"] - 0.05
    assert result.final_train_loss == trains[-1]["loss"]
    assert [r["step"] for r in records if r["kind"] == "checkpoint"] == [4, 8]

    provenance = read_provenance(adapter)
    assert provenance["format"] == "peft" and provenance["backend"] == "torch"
    assert provenance["metrics"]["best_val_loss"] == result.best_val_loss
    assert (adapter / "morris_config.json").is_file()
    # The adapter kept is the best-validation one, i.e. the checkpoint taken at that step.
    best_step = min(vals, key=lambda r: r["val_loss"])["step"]
    kept = load_file(str(adapter / "adapter_model.safetensors"))
    at_best = load_file(str(adapter / "checkpoints" / f"step_{best_step:07d}" / "adapter_model.safetensors"))
    assert kept.keys() == at_best.keys() and all(torch.equal(kept[k], at_best[k]) for k in kept)

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), quiet_peft():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, adapter)(ids).logits
    assert (after - before).abs().max() > 1e-3


def test_resume_after_a_crash_continues_exactly(tiny_model, straight_run, tmp_path):
    data, straight, _, _ = straight_run
    crashed = tmp_path / "crashed"

    def crash(event: TrainEvent) -> None:
        if event.kind == "train" and event.step == 6:
            raise KeyboardInterrupt  # killed between the checkpoints at 4 and 8

    with pytest.raises(KeyboardInterrupt):
        train(tiny_model, data, crashed, callback=crash)
    assert [p.name for p in (crashed / "checkpoints").iterdir()] == ["step_0000004"]
    result = train(tiny_model, data, crashed, resume=True)
    assert result.steps == 8

    a = load_file(str(straight / "checkpoints" / "step_0000008" / "adapter_model.safetensors"))
    b = load_file(str(crashed / "checkpoints" / "step_0000008" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert (a[next(iter(a))]).abs().max() > 0

    def losses(adapter: Path) -> list[tuple[str, int, float]]:
        return [
            (r["kind"], r["step"], r.get("loss", r.get("val_loss")))
            for r in read_metrics(adapter)
            if r["kind"] in ("train", "val")
        ]

    ours, reference = losses(crashed), losses(straight)
    assert [r[:2] for r in ours] == [r[:2] for r in reference]  # the log reads like one run
    assert np.allclose([r[2] for r in ours], [r[2] for r in reference], atol=1e-5)


def test_callback_stops_training_at_an_update_boundary(tiny_model, tiny_data, tmp_path):
    adapter = tmp_path / "adapter"
    result = train(tiny_model, tiny_data, adapter, callback=lambda e: e.kind == "train" and e.step == 3)
    assert result.stopped_early and result.steps == 4
    records = read_metrics(adapter)
    assert records[-1]["kind"] == "done" and records[-1]["stopped_early"] is True
    # The micro-batch after step 3 completes the update; then training stops.
    assert max(r["step"] for r in records if r["kind"] == "train") == 4
    assert (adapter / "checkpoints" / "step_0000004").is_dir()
    assert (adapter / "adapter_model.safetensors").is_file()


# generation -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator(tiny_model):
    return TorchBackend("cpu").load(tiny_model)


def test_stream_yields_text_and_honours_max_tokens(generator):
    settings = GenerateConfig(max_tokens=7, temp=0.8, top_p=0.9, top_k=50, min_p=0.02, seed=11)
    chunks = list(generator.stream(MESSAGES, settings))
    text = "".join(c.text for c in chunks)
    assert text and all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "length" and chunks[-1].generation_tokens == 7
    assert chunks[-1].prompt_tokens == len(generator.encode_chat(MESSAGES, add_generation_prompt=True))
    again = "".join(c.text for c in generator.stream(MESSAGES, settings))
    assert again == text  # the seed makes sampling reproducible


def test_stream_stops_at_the_time_limit(generator):
    chunks = list(generator.stream(MESSAGES, GenerateConfig(max_tokens=500, temp=0.0, time_limit=1e-6)))
    assert chunks[-1].finish_reason == "time"
    assert 0 < chunks[-1].generation_tokens < 500


def test_stream_can_be_abandoned(generator):
    stream = generator.stream(MESSAGES, GenerateConfig(max_tokens=400, temp=0.0))
    next(stream)
    stream.close()  # must stop the worker thread, not leave it holding the model
    assert list(generator.stream(MESSAGES, GenerateConfig(max_tokens=3, temp=0.0)))[-1].generation_tokens == 3


# bad input --------------------------------------------------------------------------------------


def test_missing_or_broken_data_is_a_morris_error(tiny_model, tmp_path):
    adapter = tmp_path / "adapter"
    with pytest.raises(MorrisError, match="does not exist"):
        train(tiny_model, tmp_path / "nowhere", adapter)
    data = write_chat_data(tmp_path / "data")
    lines = (data / "train.jsonl").read_text().splitlines()
    (data / "train.jsonl").write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(MorrisError, match=r"train\.jsonl line 2: not valid JSON"):
        train(tiny_model, data, adapter)
    (data / "train.jsonl").write_text("\n".join([lines[0], '{"text": "no chat"}', *lines[2:]]) + "\n")
    with pytest.raises(MorrisError, match=r"train\.jsonl line 2: missing a non-empty 'messages'"):
        train(tiny_model, data, adapter)
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(MorrisError, match="not a linear layer"):
        train(tiny_model, data, adapter, tiny_cfg(**{"lora.target_modules": ["qq_proj"]}))
    with pytest.raises(MorrisError, match="no usable checkpoint"):
        train(tiny_model, data, adapter, resume=True)
    assert not adapter.exists()  # nothing half-written


def test_refuses_to_overwrite_a_finished_adapter(tiny_model, tiny_data, tmp_path):
    adapter = tmp_path / "adapter"
    train(tiny_model, tiny_data, adapter, tiny_cfg(**{"train.iters": 2}))
    with pytest.raises(MorrisError, match="already holds a finished adapter"):
        train(tiny_model, tiny_data, adapter, tiny_cfg(**{"train.iters": 2}))


def test_adapter_for_another_base_is_a_morris_error(tiny_model, tiny_data, tmp_path):
    other = build_random_model(
        tmp_path / "other",
        ModelShape(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2),
    )
    adapter = tmp_path / "adapter"
    train(tiny_model, tiny_data, adapter, tiny_cfg(**{"train.iters": 2}))
    backend = TorchBackend("cpu")
    with pytest.raises(MorrisError, match="another base model"):
        backend.load(other, adapter)
    generator = backend.load(other)
    with pytest.raises(MorrisError, match="another base model"):
        generator.set_adapter(adapter)
    mlx_adapter = tmp_path / "mlx-adapter"  # made for tiny_model's 64 features, in mlx-lm's format
    mlx_adapter.mkdir()
    zeros = {"model.layers.1.self_attn.q_proj.lora_a": np.zeros((64, 4), np.float32),
             "model.layers.1.self_attn.q_proj.lora_b": np.zeros((4, 64), np.float32)}
    save_numpy(zeros, str(mlx_adapter / "adapters.safetensors"))
    lora = {"rank": 4, "scale": 2.0, "dropout": 0.0, "keys": ["self_attn.q_proj"]}
    (mlx_adapter / "adapter_config.json").write_text(json.dumps({"num_layers": 1, "lora_parameters": lora}))
    with pytest.raises(MorrisError, match="another base model"):
        generator.set_adapter(mlx_adapter)
    with pytest.raises(MorrisError, match="holds no adapter weights"):
        generator.set_adapter(tmp_path)
    with pytest.raises(MorrisError, match="does not exist"):
        backend.load(other, tmp_path / "missing")
    assert generator.adapter_path is None
