"""`morris convert` on local directories (the hub path is exercised offline for its error message)."""

from __future__ import annotations

import json

import pytest

from morris_mlx.cli import main


def test_convert_local_dir_quantized_records_source_and_refuses_overwrite(tiny_model, tmp_path, capsys):
    out = tmp_path / "tiny-4bit"
    assert main(["convert", "--hf-path", str(tiny_model), "--mlx-path", str(out), "-q", "--q-bits", "4",
                 "--q-group-size", "32"]) == 0
    manifest = json.loads((out / "morris_model.json").read_text())
    assert manifest["quantized"] and manifest["q_bits"] == 4 and manifest["source"] == str(tiny_model)
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["rope_theta"] == 100000.0
    assert main(["convert", "--hf-path", str(tiny_model), "--mlx-path", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["convert", "--hf-path", str(tiny_model), "--mlx-path", str(out), "--force"]) == 0
    assert "quantization" not in json.loads((out / "config.json").read_text())


def test_qlora_trains_on_the_quantized_model(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "q"
    assert main(["convert", "--hf-path", str(tiny_model), "--mlx-path", str(out), "-q", "--q-group-size", "32"]) == 0
    rc = main(["train", "--backend", "mlx", "--model", str(out), "--data", str(tiny_data), "--adapter-path",
               str(tmp_path / "adapter"), "--iters", "4", "--grad-accumulation", "1", "--rank", "4",
               "--grad-checkpoint"])
    assert rc == 0 and (tmp_path / "adapter" / "adapters.safetensors").is_file()


def test_offline_hub_id_gives_a_clear_message(capsys):
    assert main(["convert", "--hf-path", "HuggingFaceH4/zephyr-7b-beta"]) == 2
    err = capsys.readouterr().err
    assert "cannot download" in err and "--hf-path" in err


@pytest.mark.parametrize("bad", ["/no/such/dir", "not a hub id"])
def test_bad_source_is_refused(bad, capsys):
    assert main(["convert", "--hf-path", bad]) == 2
    assert "error" in capsys.readouterr().err
