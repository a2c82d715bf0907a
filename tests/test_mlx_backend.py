"""MLX backend on a tiny random model: training, exact resume after kill -9, generation, adapters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from morris_mlx.backends.mlx_backend import MLXBackend
from morris_mlx.config import GenerateConfig, load_config
from morris_mlx.errors import MorrisError
from morris_mlx.training import read_metrics

OVERRIDES = {
    "train.iters": 16,
    "train.grad_accumulation": 2,
    "train.save_every": 4,
    "train.steps_per_eval": 4,
    "train.learning_rate": 1e-3,
    "train.warmup_steps": 2,
    "train.lr_schedule": "cosine",
    "lora.rank": 4,
    "lora.dropout": 0.1,  # random masks: a resumed run must draw the ones the uninterrupted run drew
}


def train(model: Path, data: Path, out: Path, resume: bool = False, callback=None, **extra):
    cfg = load_config(overrides={**OVERRIDES, **extra})
    return MLXBackend().train(cfg, model, data, out, resume=resume, callback=callback, quiet=True)


def adapter_tensors(path: Path) -> dict[str, np.ndarray]:
    import mlx.core as mx

    return {k: np.array(v) for k, v in mx.load(str(path)).items()}


def losses(adapter_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(adapter_dir) if r["kind"] == "train"}


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    from conftest import write_chat_data

    data = write_chat_data(tmp_path_factory.mktemp("d") / "data")
    out = tmp_path_factory.mktemp("a") / "adapter"
    result = train(tiny_model, data, out)
    return data, out, result


def test_training_lowers_validation_loss_and_writes_an_mlx_lm_adapter(trained, tiny_model):
    data, out, result = trained
    vals = [r["val_loss"] for r in read_metrics(out) if r["kind"] == "val"]
    assert vals[-1] < vals[0]
    assert result.steps == 16 and result.best_val_loss == min(vals)
    plan = next(r for r in read_metrics(out) if r["kind"] == "plan")
    assert plan["examples"] == 16 and plan["tokens"] > 16 * 20  # tokens, not records
    for name in ("adapters.safetensors", "adapter_config.json", "morris_adapter.json", "morris_config.json"):
        assert (out / name).is_file()
    provenance = json.loads((out / "morris_adapter.json").read_text())
    assert provenance["backend"] == "mlx" and provenance["config"]["lora"]["rank"] == 4
    # mlx-lm loads the directory unchanged.
    from mlx_lm.utils import load

    model, _ = load(str(tiny_model), adapter_path=str(out))
    assert model is not None


def test_kill_9_then_resume_matches_uninterrupted_run(trained, tiny_model, tmp_path):
    data, full, _ = trained
    out = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_mlx_backend import train
        def die(event):
            if event.kind == "train" and event.step == 10:
                os.kill(os.getpid(), signal.SIGKILL)
        train(Path({str(tiny_model)!r}), Path({str(data)!r}), Path({str(out)!r}), callback=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not (out / "morris_adapter.json").exists()  # an unfinished run never looks finished
    train(tiny_model, data, out, resume=True)
    a, b = (
        adapter_tensors(full / "last_adapters.safetensors"),
        adapter_tensors(out / "last_adapters.safetensors"),
    )
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    full_losses, resumed_losses = losses(full), losses(out)
    assert sorted(resumed_losses) == list(range(1, 17))
    for step in range(9, 17):
        assert resumed_losses[step] == pytest.approx(full_losses[step], abs=1e-5)


def test_stop_from_callback_ends_on_an_update_boundary(tiny_model, tiny_data, tmp_path):
    result = train(
        tiny_model, tiny_data, tmp_path / "a", callback=lambda e: e.kind == "train" and e.step == 5
    )
    assert result.stopped_early and result.steps == 6


def test_resume_without_checkpoint_and_reuse_of_finished_adapter_are_refused(trained, tiny_model, tmp_path):
    data, out, _ = trained
    with pytest.raises(MorrisError, match="no usable checkpoint"):
        train(tiny_model, data, tmp_path / "empty", resume=True)
    with pytest.raises(MorrisError, match="already holds a finished adapter"):
        train(tiny_model, data, out)


def test_corrupt_latest_checkpoint_falls_back_to_previous(trained, tiny_model, tmp_path):
    import shutil

    data, full, _ = trained
    out = tmp_path / "copy"
    shutil.copytree(full, out)
    (out / "morris_adapter.json").unlink()
    latest = sorted((out / "checkpoints").iterdir())[-1]
    (latest / "optimizer.safetensors").write_bytes(b"garbage")
    from morris_mlx.backends.mlx_train import MLXTrainer
    from morris_mlx.training.checkpoints import CheckpointStore

    assert CheckpointStore(out, MLXTrainer()).latest() == sorted((out / "checkpoints").iterdir())[-2]


def test_bad_target_module_is_a_clear_error(tiny_model, tiny_data, tmp_path):
    with pytest.raises(MorrisError, match="not a linear layer"):
        train(tiny_model, tiny_data, tmp_path / "a", **{"lora.target_modules": ["qkv"]})


def test_fused_and_unfused_adapters_give_the_same_logits(trained, tiny_model):
    _, out, _ = trained
    backend = MLXBackend()
    fused = backend.load(tiny_model, out, fuse=True)
    apart = backend.load(tiny_model, out, fuse=False)
    base = backend.load(tiny_model)
    ids = fused.encode_chat([{"role": "user", "content": "Write about 5G"}], add_generation_prompt=True)
    lf, la, lb = fused.logits(ids), apart.logits(ids), base.logits(ids)
    np.testing.assert_allclose(lf, la, atol=1e-4)
    assert np.abs(lf - lb).max() > 1e-3  # the adapter does something
    # Swapping adapters in place equals loading fresh.
    base.set_adapter(out)
    np.testing.assert_allclose(base.logits(ids), lf, atol=1e-5)
    base.set_adapter(None)
    np.testing.assert_allclose(base.logits(ids), lb, atol=1e-6)


def test_stream_honours_max_tokens_seed_and_time_limit(tiny_model):
    gen = MLXBackend().load(tiny_model)
    messages = [{"role": "system", "content": "Be gloomy."}, {"role": "user", "content": "5G"}]
    settings = GenerateConfig(max_tokens=12, temp=0.9, seed=7)
    first = list(gen.stream(messages, settings))
    again = list(gen.stream(messages, settings))
    assert "".join(c.text for c in first) == "".join(c.text for c in again)
    assert first[-1].generation_tokens <= 12 and first[-1].finish_reason in ("length", "stop")
    timed = list(gen.stream(messages, GenerateConfig(max_tokens=100000, temp=0.0, time_limit=0.2)))
    assert timed[-1].finish_reason in ("time", "stop")


def test_adapter_for_another_base_is_refused(trained, tmp_path):
    from morris_mlx.models.random_model import ModelShape, build_random_model

    _, out, _ = trained
    other = build_random_model(
        tmp_path / "other", shape=ModelShape(hidden_size=32, num_attention_heads=2, num_key_value_heads=1)
    )
    with pytest.raises(MorrisError, match="another base model"):
        MLXBackend().load(other, out)


def test_early_stopping_when_validation_stops_improving(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "a"
    result = train(
        tiny_model,
        tiny_data,
        out,
        **{
            "train.learning_rate": 1e-12,
            "train.patience": 1,
            "train.steps_per_eval": 2,
            "train.warmup_steps": 0,
        },
    )
    assert result.stopped_early and result.steps < 16
    assert (out / "adapters.safetensors").is_file() and (out / "morris_adapter.json").is_file()


def test_a_peft_adapter_loads_on_mlx_with_the_same_logits(trained, tiny_model, tmp_path):
    from morris_mlx.export.actions import export_peft

    _, out, _ = trained
    peft_dir = export_peft(out, tmp_path / "peft", model=str(tiny_model))
    backend = MLXBackend()
    native, via_peft = backend.load(tiny_model, out), backend.load(tiny_model, peft_dir)
    ids = native.encode_chat([{"role": "user", "content": "fibre"}], add_generation_prompt=True)
    np.testing.assert_allclose(native.logits(ids), via_peft.logits(ids), atol=1e-5)


def test_gradient_checkpointing_does_not_leak_into_later_models(tiny_model, tiny_data, tmp_path):
    from mlx_lm.models.llama import TransformerBlock

    before = TransformerBlock.__call__
    train(tiny_model, tiny_data, tmp_path / "a", **{"train.iters": 2, "train.grad_checkpoint": True})
    assert TransformerBlock.__call__ is before
