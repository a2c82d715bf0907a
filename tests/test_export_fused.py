"""Fused export: base + adapter merged by mlx-lm's fuse(), loaded identically by mlx-lm and transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import make_mlx_adapter, mlx_logits, torch_logits

from morris_mlx.cli import main as cli
from morris_mlx.errors import MorrisError
from morris_mlx.export.actions import export_fused, export_peft

# fp32, 2 layers: fusing changes only the order of additions (~1e-7); the adapter moves logits by ~1.
FUSED_TOL = 1e-4


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory) -> Path:
    keys = ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")
    return make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("a") / "tiny-fuse", keys=keys, seed=1)


@pytest.fixture(scope="module")
def fused(adapter, tmp_path_factory) -> Path:
    return export_fused(adapter, tmp_path_factory.mktemp("f") / "tiny-fused")


def test_fused_directory_is_a_complete_hf_model(fused, tiny_model):
    names = {p.name for p in fused.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "chat_template.jinja" in names or "chat_template" in json.loads(
        (fused / "tokenizer_config.json").read_text()
    )
    config = json.loads((fused / "config.json").read_text())
    assert config["rope_theta"] == 100000.0  # top level: mlx-lm would silently use 10000 otherwise
    assert "quantization" not in config
    record = json.loads((fused / "morris_export.json").read_text())
    assert record["kind"] == "fused" and record["base_model_dir"] == str(tiny_model.resolve())
    assert record["adapter"]["format"] == "mlx" and record["fused_layers"] == 6
    assert not any(p.name.endswith(".partial") for p in fused.parent.iterdir())


def test_fused_model_gives_base_plus_adapter_logits_in_both_stacks(fused, adapter, tiny_model):
    base = mlx_logits(tiny_model)
    expected = mlx_logits(tiny_model, adapter)
    assert np.abs(expected - base).max() > 100 * FUSED_TOL
    assert np.abs(mlx_logits(fused) - expected).max() < FUSED_TOL
    assert np.abs(torch_logits(fused) - expected).max() < FUSED_TOL


def test_fused_from_a_peft_adapter(adapter, tiny_model, tmp_path):
    peft = export_peft(adapter, tmp_path / "peft")
    fused = export_fused(peft, tmp_path / "fused-from-peft", model=str(tiny_model))
    np.testing.assert_allclose(mlx_logits(fused), mlx_logits(tiny_model, adapter), atol=FUSED_TOL)
    assert json.loads((fused / "morris_export.json").read_text())["adapter"]["format"] == "peft"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fused-from-peft", "peft"]  # no scratch left


def test_quantized_base_is_dequantized(tiny_model, tmp_path):
    from mlx_lm.convert import convert

    quantized = tmp_path / "tiny-q4"
    convert(str(tiny_model), str(quantized), quantize=True, q_group_size=32, q_bits=4)
    assert "quantization" in json.loads((quantized / "config.json").read_text())
    adapter = make_mlx_adapter(quantized, tmp_path / "qlora", keys=("self_attn.q_proj", "self_attn.o_proj"))
    fused = export_fused(adapter, tmp_path / "fused-q")
    config = json.loads((fused / "config.json").read_text())
    assert "quantization" not in config and "quantization_config" not in config
    from safetensors.numpy import load_file

    weights = load_file(str(fused / "model.safetensors"))
    assert not any(name.endswith((".scales", ".biases")) for name in weights)
    assert weights["model.layers.0.mlp.up_proj.weight"].shape == (128, 64)
    expected = mlx_logits(quantized, adapter)
    assert np.abs(mlx_logits(fused) - expected).max() < 1e-3  # same values, dequantized once vs per matmul
    assert json.loads((fused / "morris_export.json").read_text())["dequantized"] is True


def test_fused_needs_a_base_model(adapter, tmp_path):
    lost = tmp_path / "lost"
    lost.mkdir()
    for name in ("adapters.safetensors", "adapter_config.json"):
        (lost / name).write_bytes((adapter / name).read_bytes())
    config = json.loads((lost / "adapter_config.json").read_text())
    (lost / "adapter_config.json").write_text(json.dumps({**config, "model": str(tmp_path / "gone")}))
    with pytest.raises(MorrisError, match="pass it with --model"):
        export_fused(lost, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_fused(adapter, tmp_path, capsys):
    out = tmp_path / "cli-fused"
    assert cli(["export", "fused", "--adapter-path", str(adapter), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    assert (out / "model.safetensors").exists()
