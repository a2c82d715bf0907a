"""Export/import round trips on the embedded default (SmolLM2-135M-Instruct, 30 layers), end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import make_mlx_adapter, mlx_logits, torch_logits

from morris_mlx.adapter_format.tensors import read_safetensors
from morris_mlx.export.actions import export_fused, export_gguf, export_peft, import_peft

pytestmark = pytest.mark.slow

# fp32, 30 layers: the two stacks agree to about 1e-4 with a trained adapter (docs/mlx-peft-mapping.md).
PARITY_TOL = 1e-3


@pytest.fixture(scope="module")
def smollm(tmp_path_factory) -> Path:
    """The converted default from the real MORRIS_HOME when it is there, else converted once here."""
    from morris_mlx.models.default import DEFAULT_MODEL_NAME, is_ready, setup_default

    home = os.environ.get("MORRIS_HOME")
    if home and is_ready(Path(home) / "models" / DEFAULT_MODEL_NAME, verify=False):
        return Path(home) / "models" / DEFAULT_MODEL_NAME
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MORRIS_HOME", str(tmp_path_factory.mktemp("home")))
        return setup_default()


@pytest.fixture(scope="module")
def prompt(smollm) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smollm))
    messages = [{"role": "user", "content": "Write a telecom industry news article about: 5G"}]
    return list(
        tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    )


@pytest.fixture(scope="module")
def adapter(smollm, tmp_path_factory) -> Path:
    # r16, q/k/v/o in every block: the product's default LoRA.
    return make_mlx_adapter(smollm, tmp_path_factory.mktemp("a") / "smol-r16", rank=16, b_std=0.02, seed=4)


@pytest.fixture(scope="module")
def expected(smollm, adapter, prompt) -> np.ndarray:
    """MLX base + adapter: the reference every export is held to (computed once; MLX on a CPU is slow)."""
    return mlx_logits(smollm, adapter, ids=prompt)


def test_peft_round_trip_and_parity_on_the_default(smollm, adapter, prompt, expected, tmp_path):
    peft = export_peft(adapter, tmp_path / "peft")
    assert json.loads((peft / "adapter_config.json").read_text())["layers_to_transform"] is None
    back = import_peft(peft, tmp_path / "back", model=str(smollm))
    original, _ = read_safetensors(adapter / "adapters.safetensors")
    returned, _ = read_safetensors(back / "adapters.safetensors")
    assert sorted(original) == sorted(returned) and len(original) == 30 * 4 * 2
    assert all(original[k].array.tobytes() == returned[k].array.tobytes() for k in original)

    base = mlx_logits(smollm, ids=prompt)
    with_mlx = expected
    with_peft = torch_logits(smollm, peft, ids=prompt)
    moved, gap = np.abs(with_mlx - base).max(), np.abs(with_peft - with_mlx).max()
    print(f"SmolLM2 r16: adapter moves logits by {moved:.3f}; PEFT-on-torch vs MLX differ by {gap:.2e}")
    assert moved > 100 * PARITY_TOL and gap < PARITY_TOL


def test_fused_and_gguf_on_the_default(smollm, adapter, prompt, expected, tmp_path):
    fused = export_fused(adapter, tmp_path / "fused")
    fused_mlx = np.abs(mlx_logits(fused, ids=prompt) - expected).max()
    fused_torch = np.abs(torch_logits(fused, ids=prompt) - expected).max()
    print(f"fused vs base+adapter: mlx {fused_mlx:.2e}, torch {fused_torch:.2e}")
    assert fused_mlx < PARITY_TOL and fused_torch < PARITY_TOL

    gguf_file = export_gguf(adapter, tmp_path / "gguf", outtype="f16")
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_file))
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == 49152
    assert "tokenizer.chat_template" in reader.fields and "tokenizer.ggml.merges" in reader.fields
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(gguf_file), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    llm.eval(prompt)
    got = np.array(llm.scores[: len(prompt)])
    gap = np.abs(got - expected).max()
    agree = float((got.argmax(-1) == expected.argmax(-1)).mean())
    print(f"llama.cpp f16 GGUF vs MLX base+adapter: max |diff| {gap:.3f}, argmax agreement {agree:.2f}")
    assert agree >= 0.9 and gap < 0.5  # f16 weights over 30 layers
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Write one sentence about 5G."}], max_tokens=24, temperature=0
    )
    assert reply["choices"][0]["message"]["content"].strip()
