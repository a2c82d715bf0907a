"""MLX <-> PEFT: exact tensor round trips, logit parity across stacks, and refusals of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import make_mlx_adapter, mlx_logits, torch_logits
from safetensors.numpy import load_file, save_file

from morris_mlx.adapter_format.tensors import Tensor, read_safetensors, serialize
from morris_mlx.cli import main as cli
from morris_mlx.errors import MorrisError
from morris_mlx.export.actions import export_peft, import_peft
from morris_mlx.models.random_model import ModelShape, build_random_model
from morris_mlx.registry import get_adapter

# fp32 on a 2-layer model: both stacks agree to ~1e-6; the adapter moves logits by ~0.1-1.
PARITY_TOL = 1e-4


@pytest.fixture(scope="module")
def mlx_adapter(tiny_model, tmp_path_factory) -> Path:
    """LoRA r4 on q/k/v/o of the last block only, so layers_to_transform is exercised."""
    return make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("a") / "tiny-r4", num_layers=1)


@pytest.fixture(scope="module")
def peft_dir(mlx_adapter, tmp_path_factory) -> Path:
    return export_peft(mlx_adapter, tmp_path_factory.mktemp("p") / "tiny-r4-peft")


@pytest.fixture(scope="module")
def wider_model(tmp_path_factory) -> Path:
    shape = ModelShape(hidden_size=96, intermediate_size=192, num_attention_heads=4, num_key_value_heads=2)
    return build_random_model(tmp_path_factory.mktemp("m") / "wider", shape=shape, seed=3)


def test_peft_files_are_as_peft_writes_them(peft_dir, mlx_adapter, tiny_model):
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert config["r"] == 4 and config["lora_alpha"] == 8  # scale 2.0 * r 4
    assert config["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert config["layers_to_transform"] == [1]
    assert config["use_dora"] is False and config["use_rslora"] is False
    assert config["base_model_name_or_path"] == str(tiny_model.resolve())
    peft = load_file(str(peft_dir / "adapter_model.safetensors"))
    mlx = load_file(str(mlx_adapter / "adapters.safetensors"))
    assert len(peft) == len(mlx) == 8
    prefix = "base_model.model.model.layers.1.self_attn.q_proj"
    np.testing.assert_array_equal(
        peft[f"{prefix}.lora_A.weight"], mlx["model.layers.1.self_attn.q_proj.lora_a"].T
    )
    np.testing.assert_array_equal(
        peft[f"{prefix}.lora_B.weight"], mlx["model.layers.1.self_attn.q_proj.lora_b"].T
    )
    assert peft[f"{prefix}.lora_A.weight"].shape == (4, 64)


def test_peft_provenance_names_its_source(peft_dir, mlx_adapter):
    info = get_adapter(str(peft_dir))
    assert info.format == "peft"
    source = info.provenance["source"]
    assert source["action"] == "export peft" and source["path"] == str(mlx_adapter.resolve())
    assert len(source["weights_sha256"]) == 64
    assert info.provenance["base_model"]["fingerprint"]


def test_mlx_peft_mlx_round_trip_is_bit_identical(peft_dir, mlx_adapter, tiny_model, tmp_path):
    back = import_peft(peft_dir, tmp_path / "back", model=str(tiny_model))
    original, _ = read_safetensors(mlx_adapter / "adapters.safetensors")
    returned, _ = read_safetensors(back / "adapters.safetensors")
    assert sorted(original) == sorted(returned)
    for name in original:
        assert original[name].dtype == returned[name].dtype
        assert original[name].array.tobytes() == returned[name].array.tobytes(), name
    config = json.loads((back / "adapter_config.json").read_text())
    assert config["num_layers"] == 1 and config["fine_tune_type"] == "lora"
    assert config["lora_parameters"] == {
        "rank": 4,
        "scale": 2.0,
        "dropout": 0.0,
        "keys": ["self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"],
    }
    assert get_adapter(str(back)).provenance["source"]["previous"]["action"] == "export peft"


def test_peft_on_torch_matches_mlx_adapter_on_mlx(peft_dir, mlx_adapter, tiny_model):
    base = mlx_logits(tiny_model)
    with_mlx = mlx_logits(tiny_model, mlx_adapter)
    with_peft = torch_logits(tiny_model, peft_dir)
    moved = np.abs(with_mlx - base).max()
    assert moved > 100 * PARITY_TOL  # the adapter matters, so parity below means something
    assert np.abs(with_peft - with_mlx).max() < PARITY_TOL


def test_imported_adapter_loads_in_mlx_lm_with_same_logits(peft_dir, mlx_adapter, tiny_model, tmp_path):
    back = import_peft(peft_dir, tmp_path / "imported", model=str(tiny_model))
    np.testing.assert_allclose(mlx_logits(tiny_model, back), mlx_logits(tiny_model, mlx_adapter), atol=1e-6)


def test_peft_adapter_with_gaps_imports_with_zero_filled_layers(tiny_model, tmp_path):
    """A PEFT adapter on block 0 only: mlx-lm can only say "last N blocks", so block 1 gets zeros."""
    rng = np.random.default_rng(0)
    peft = tmp_path / "first-block"
    peft.mkdir()
    prefix = "base_model.model.model.layers.0.self_attn.v_proj"
    tensors = {
        f"{prefix}.lora_A.weight": rng.standard_normal((2, 64)).astype(np.float32),
        f"{prefix}.lora_B.weight": rng.standard_normal((32, 2)).astype(np.float32),
    }
    save_file(tensors, str(peft / "adapter_model.safetensors"))
    (peft / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": 2,
                "lora_alpha": 4,
                "target_modules": ["v_proj"],
                "layers_to_transform": [0],
            }
        )
    )
    out = import_peft(peft, tmp_path / "mlx", model=str(tiny_model))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["num_layers"] == 2
    weights = load_file(str(out / "adapters.safetensors"))
    assert not weights["model.layers.1.self_attn.v_proj.lora_b"].any()
    np.testing.assert_allclose(mlx_logits(tiny_model, out), torch_logits(tiny_model, peft), atol=PARITY_TOL)


def test_bf16_tensors_cross_bit_exact(tmp_path):
    raw = np.arange(12, dtype=np.uint16).reshape(3, 4) * 997
    data = serialize({"w": Tensor("BF16", raw)}, {"format": "pt"})
    (tmp_path / "x.safetensors").write_bytes(data)
    tensors, metadata = read_safetensors(tmp_path / "x.safetensors")
    assert metadata == {"format": "pt"}
    assert tensors["w"].dtype == "BF16"
    np.testing.assert_array_equal(tensors["w"].transposed().array, raw.T)
    # The reference reader accepts what we write.
    import safetensors

    assert dict(safetensors.deserialize(data))["w"]["shape"] == [3, 4]


# ---- bad input: a clear MorrisError and nothing written -------------------------------------------------


def _peft_copy(peft_dir: Path, tmp_path: Path, config_changes: dict) -> Path:
    bad = tmp_path / "bad-peft"
    shutil.copytree(peft_dir, bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    config.update(config_changes)
    (bad / "adapter_config.json").write_text(json.dumps(config))
    return bad


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"use_dora": True}, "DoRA"),
        ({"use_rslora": True}, "rsLoRA"),
        ({"target_modules": ["q_proj", "lm_head"]}, "lm_head"),
        ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
        ({"peft_type": "IA3"}, "only LoRA"),
        ({"bias": "all"}, "bias"),
    ],
)
def test_import_refuses_unmapped_peft_settings(peft_dir, tiny_model, tmp_path, changes, message):
    bad = _peft_copy(peft_dir, tmp_path, changes)
    with pytest.raises(MorrisError, match=message):
        import_peft(bad, tmp_path / "out", model=str(tiny_model))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_import_refuses_an_adapter_for_another_base(peft_dir, wider_model, tmp_path):
    with pytest.raises(MorrisError, match="does not fit the model .*64 -> 64 features, the model 96 -> 96"):
        import_peft(peft_dir, tmp_path / "out", model=str(wider_model))
    assert not (tmp_path / "out").exists()


def test_export_refuses_an_adapter_for_another_base(mlx_adapter, wider_model, tmp_path):
    with pytest.raises(MorrisError, match="another base model"):
        export_peft(mlx_adapter, tmp_path / "out", model=str(wider_model))
    assert list(tmp_path.iterdir()) == []


def test_import_refuses_unsupported_module_tensors(peft_dir, tiny_model, tmp_path):
    bad = _peft_copy(peft_dir, tmp_path, {})
    tensors = load_file(str(bad / "adapter_model.safetensors"))
    tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector"] = np.ones(
        64, np.float32
    )
    save_file(tensors, str(bad / "adapter_model.safetensors"))
    (bad / "morris_adapter.json").unlink()  # a foreign (DoRA) adapter: no record of its weights to check
    with pytest.raises(MorrisError, match="lora_magnitude_vector"):
        import_peft(bad, tmp_path / "out", model=str(tiny_model))
    assert not (tmp_path / "out").exists()


def test_export_refuses_unsupported_mlx_targets(tiny_model, tmp_path):
    adapter = make_mlx_adapter(tiny_model, tmp_path / "embed", keys=("self_attn.q_proj",), num_layers=1)
    tensors = load_file(str(adapter / "adapters.safetensors"))
    tensors["model.layers.1.post_attention_layernorm.lora_a"] = np.ones((64, 4), np.float32)
    tensors["model.layers.1.post_attention_layernorm.lora_b"] = np.ones((4, 64), np.float32)
    save_file(tensors, str(adapter / "adapters.safetensors"))
    with pytest.raises(MorrisError, match="post_attention_layernorm.*not supported"):
        export_peft(adapter, tmp_path / "out", model=str(tiny_model))
    assert not (tmp_path / "out").exists()


def test_export_refuses_dora_mlx_adapter(mlx_adapter, tmp_path):
    bad = tmp_path / "dora"
    shutil.copytree(mlx_adapter, bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, "fine_tune_type": "dora"}))
    with pytest.raises(MorrisError, match="dora"):
        export_peft(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage_header"])
def test_corrupt_safetensors_is_refused(peft_dir, mlx_adapter, tiny_model, tmp_path, damage):
    for source, weights, action in (
        (peft_dir, "adapter_model.safetensors", import_peft),
        (mlx_adapter, "adapters.safetensors", export_peft),
    ):
        bad = tmp_path / f"bad-{weights}"
        shutil.copytree(source, bad)
        data = (bad / weights).read_bytes()
        data = data[: len(data) // 2] if damage == "truncate" else b"\xff" * 8 + data[8:]
        (bad / weights).write_bytes(data)
        with pytest.raises(MorrisError, match="corrupt or truncated"):
            action(bad, tmp_path / "out", model=str(tiny_model))
        assert not (tmp_path / "out").exists()


def test_existing_output_needs_force(mlx_adapter, tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(MorrisError, match="--force"):
        export_peft(mlx_adapter, out, model=str(tiny_model))
    assert (out / "keep.txt").read_text() == "mine"
    export_peft(mlx_adapter, out, model=str(tiny_model), force=True)
    assert (out / "adapter_model.safetensors").exists() and not (out / "keep.txt").exists()
    with pytest.raises(MorrisError, match="overlaps"):
        export_peft(mlx_adapter, mlx_adapter / "inside", model=str(tiny_model))


def test_cli_export_and_import(mlx_adapter, tiny_model, tmp_path, capsys):
    out = tmp_path / "cli-peft"
    assert cli(["export", "peft", "--adapter-path", str(mlx_adapter), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    back = tmp_path / "cli-mlx"
    argv = ["import", "peft", "--peft-path", str(out), "--out", str(back), "--model", str(tiny_model)]
    assert cli(argv) == 0
    assert (back / "adapters.safetensors").exists()
    assert cli(argv) == 2  # exists now, no --force
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err


def test_import_without_the_named_base_checks_the_default_and_says_why(
    peft_dir, wider_model, tmp_path, monkeypatch
):
    from morris_mlx.models import resolve

    bad = _peft_copy(peft_dir, tmp_path, {"base_model_name_or_path": "org/not-here"})
    (bad / "morris_adapter.json").unlink()  # no provenance pointing at the tiny model either
    monkeypatch.setattr(resolve, "resolve_model", lambda cfg: wider_model)
    with pytest.raises(MorrisError, match="names org/not-here, which is not on this machine"):
        import_peft(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
