"""The PEFT export passes the format checks vLLM and TGI make when they load a LoRA adapter, and each
check catches the defect it is there for."""

from __future__ import annotations

import json
import shutil

import pytest
from export_fixtures import make_mlx_adapter

from morris_mlx.cli import main as morris
from morris_mlx.export.actions import export_peft
from morris_mlx.export.server_checks import server_problems, vllm_max_lora_rank

ALL = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    adapter = make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("m") / "morris", rank=16, keys=ALL)
    return export_peft(adapter, tmp_path_factory.mktemp("p") / "morris-peft", model=str(tiny_model))


def test_the_export_passes_vllm_and_tgi_checks_and_peft_reads_its_config(exported, tiny_model):
    assert server_problems(exported, tiny_model) == []
    # TGI reads the config with peft's own LoraConfig; so does vLLM's PEFTHelper (same fields).
    from peft import LoraConfig

    config = LoraConfig.from_pretrained(str(exported))
    assert config.r == 16 and set(config.target_modules) == {k.split(".")[1] for k in ALL}
    assert vllm_max_lora_rank(config.r) == 16


def test_export_prints_the_serving_commands(tiny_model, tmp_path, capsys):
    adapter = make_mlx_adapter(tiny_model, tmp_path / "voice", rank=4)
    assert morris(["export", "peft", "--adapter-path", str(adapter), "--out", str(tmp_path / "out"),
                   "--model", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "--enable-lora --lora-modules voice=" in out and "--max-lora-rank 8" in out
    assert "--lora-adapters voice=" in out


def _copy(exported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


@pytest.mark.parametrize(
    "change, message",
    [
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"use_dora": True}, "DoRA"),
        ({"bias": "all"}, "bias"),
        ({"fan_in_fan_out": True}, "fan_in_fan_out"),
        ({"peft_type": "IA3"}, "peft_type"),
        ({"r": 1024}, "max-lora-rank"),
        ({"r": 8}, "do not have rank r=8"),
    ],
)
def test_each_config_defect_is_caught(exported, tiny_model, tmp_path, change, message):
    bad = _copy(exported, tmp_path)
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, **change}))
    problems = server_problems(bad, tiny_model)
    assert any(message in p for p in problems), problems


def _rewrite_tensors(exported, tmp_path, edit):
    from safetensors.numpy import load_file, save_file

    bad = _copy(exported, tmp_path)
    tensors = load_file(str(bad / "adapter_model.safetensors"))
    save_file(edit(tensors), str(bad / "adapter_model.safetensors"))
    return bad


def test_a_missing_lora_b_an_unknown_module_and_a_wrong_base_are_caught(exported, tiny_model, tmp_path):
    def drop_one_b(t):
        key = next(k for k in t if k.endswith("q_proj.lora_B.weight"))
        return {k: v for k, v in t.items() if k != key}

    assert any("lora_A only" in p for p in server_problems(_rewrite_tensors(exported, tmp_path / "1", drop_one_b)))

    def add_embed(t):
        a = next(v for k, v in t.items() if k.endswith("lora_A.weight"))
        return {**t, "base_model.model.model.embed_tokens.lora_A.weight": a}

    problems = server_problems(_rewrite_tensors(exported, tmp_path / "2", add_embed))
    assert any("embed_tokens" in p for p in problems)

    def add_layer(t):
        return {**t, **{k.replace("layers.0.", "layers.99."): v for k, v in t.items() if "layers.0." in k}}

    problems = server_problems(_rewrite_tensors(exported, tmp_path / "3", add_layer), tiny_model)
    assert any("base model has 2 layers" in p for p in problems)


def test_pickle_only_and_empty_directories_are_caught(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
                                                              "peft_type": "LORA"}))
    (tmp_path / "adapter_model.bin").write_bytes(b"pickle")
    assert any("no adapter_model.safetensors" in p for p in server_problems(tmp_path))
    assert server_problems(tmp_path / "nothing") == [f"{tmp_path / 'nothing'} has no adapter_config.json"]
