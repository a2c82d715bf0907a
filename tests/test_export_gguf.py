"""GGUF export: read back with gguf's reader, and run with llama.cpp when its binding is installed."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import PROMPT_IDS, make_mlx_adapter, mlx_logits
from gguf import GGUFReader

from morris_mlx.cli import main as cli
from morris_mlx.errors import MorrisError
from morris_mlx.export.actions import export_fused, export_gguf
from morris_mlx.export.gguf_export import permute, write_gguf
from morris_mlx.models.random_model import _TRAINING_TEXT


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory) -> Path:
    return make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("a") / "tiny-g", seed=2)


@pytest.fixture(scope="module")
def fused(adapter, tmp_path_factory) -> Path:
    return export_fused(adapter, tmp_path_factory.mktemp("f") / "fused")


@pytest.fixture(scope="module")
def gguf_f32(adapter, tmp_path_factory) -> Path:
    return export_gguf(adapter, tmp_path_factory.mktemp("g") / "gguf", outtype="f32")


def fields(path: Path) -> dict:
    reader = GGUFReader(str(path))
    return {key: field.contents() for key, field in reader.fields.items()}


def test_gguf_metadata_has_architecture_tokenizer_and_template(gguf_f32, tiny_model):
    meta = fields(gguf_f32)
    assert gguf_f32.name == "tiny-g-f32.gguf"
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == 2 and meta["llama.embedding_length"] == 64
    assert meta["llama.attention.head_count"] == 4 and meta["llama.attention.head_count_kv"] == 2
    assert meta["llama.rope.freq_base"] == 100000.0
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    vocab = json.loads((tiny_model / "tokenizer.json").read_text())
    tokens = meta["tokenizer.ggml.tokens"]
    assert len(tokens) == 512 and tokens[2] == "<|im_end|>"
    assert len(meta["tokenizer.ggml.merges"]) == len(vocab["model"]["merges"])
    assert meta["tokenizer.ggml.token_type"][2] == 3  # CONTROL
    assert meta["tokenizer.ggml.eos_token_id"] == 2
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert "<|im_start|>" in meta["tokenizer.chat_template"]
    record = json.loads((gguf_f32.parent / "morris_export.json").read_text())
    assert record["kind"] == "gguf" and record["file"] == gguf_f32.name
    assert sorted(p.name for p in gguf_f32.parent.iterdir()) == ["morris_export.json", gguf_f32.name]


def test_gguf_tensors_are_the_fused_weights_in_llama_cpp_layout(gguf_f32, fused):
    from safetensors.numpy import load_file

    weights = load_file(str(fused / "model.safetensors"))
    tensors = {t.name: t for t in GGUFReader(str(gguf_f32)).tensors}
    assert len(tensors) == 2 * 9 + 3  # 9 per block + embeddings, final norm, output
    q = tensors["blk.1.attn_q.weight"]
    assert [int(x) for x in q.shape] == [64, 64]
    np.testing.assert_array_equal(
        np.asarray(q.data), permute(weights["model.layers.1.self_attn.q_proj.weight"], 4, 4)
    )
    k = tensors["blk.0.attn_k.weight"]
    assert [int(x) for x in k.shape] == [64, 32]  # GGUF lists (in, out)
    np.testing.assert_array_equal(
        np.asarray(k.data), permute(weights["model.layers.0.self_attn.k_proj.weight"], 4, 2)
    )
    np.testing.assert_array_equal(
        np.asarray(tensors["blk.0.ffn_down.weight"].data), weights["model.layers.0.mlp.down_proj.weight"]
    )


def test_f16_and_q8_0_types(adapter, tmp_path):
    from gguf import GGMLQuantizationType as T

    f16 = export_gguf(adapter, tmp_path / "f16")
    types = {t.name: t.tensor_type for t in GGUFReader(str(f16)).tensors}
    assert types["blk.0.attn_q.weight"] == T.F16 and types["blk.0.attn_norm.weight"] == T.F32
    q8 = export_gguf(adapter, tmp_path / "q8", outtype="q8_0")
    types = {t.name: t.tensor_type for t in GGUFReader(str(q8)).tensors}
    assert types["blk.0.attn_q.weight"] == T.Q8_0 and types["output_norm.weight"] == T.F32
    assert fields(q8)["general.file_type"] == 7


def test_llama_cpp_runs_the_gguf_with_fused_logits(gguf_f32, adapter, tiny_model):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(gguf_f32), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    llm.eval(PROMPT_IDS)
    got = np.array(llm.scores[: len(PROMPT_IDS)])
    expected = mlx_logits(tiny_model, adapter)
    base = mlx_logits(tiny_model)
    # llama.cpp keeps its KV cache in f16, hence a looser bound than the fp32 stacks' 1e-4.
    assert np.abs(got - expected).max() < 5e-3 < np.abs(expected - base).max()
    from tokenizers import Tokenizer

    text = "What could possibly go wrong? (Plenty.)"
    reference = Tokenizer.from_file(str(tiny_model / "tokenizer.json")).encode(text).ids
    assert llm.tokenize(text.encode(), add_bos=False) == reference
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "5G"}], max_tokens=4, temperature=0
    )
    assert reply["choices"][0]["finish_reason"] in ("length", "stop")


def test_sentencepiece_vocabulary(fused, tmp_path):
    """A SentencePiece model (Zephyr/Mistral's kind) becomes llama.cpp's "llama" vocabulary with scores."""
    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_TRAINING_TEXT.strip().splitlines() * 4),
        model_writer=proto,
        vocab_size=400,
        model_type="bpe",
        byte_fallback=True,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    hf = tmp_path / "spm-model"
    hf.mkdir()
    shutil.copyfile(fused / "model.safetensors", hf / "model.safetensors")
    config = json.loads((fused / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**config, "bos_token_id": 1, "eos_token_id": 2}))
    (hf / "tokenizer.model").write_bytes(proto.getvalue())
    template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    (hf / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": template, "add_prefix_space": True})
    )
    out = tmp_path / "spm.gguf"
    summary = write_gguf(hf, out, "f16")
    assert summary["vocab"] == "llama"
    meta = fields(out)
    processor = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    assert meta["tokenizer.ggml.model"] == "llama"
    assert meta["tokenizer.ggml.tokens"][:400] == [processor.IdToPiece(i) for i in range(400)]
    assert meta["tokenizer.ggml.tokens"][450] == "[PAD450]"
    np.testing.assert_allclose(
        meta["tokenizer.ggml.scores"][:400], [processor.GetScore(i) for i in range(400)]
    )
    assert meta["tokenizer.ggml.bos_token_id"] == 1 and meta["tokenizer.chat_template"] == template
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(out), n_ctx=32, verbose=False, n_threads=2)
    text = "The operator promised 5G would change everything"
    assert llm.tokenize(text.encode(), add_bos=False) == processor.encode(text)


def test_unsupported_architecture_and_tokenizer_are_refused_before_work(adapter, tiny_model, tmp_path):
    other = tmp_path / "qwen-ish"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "qwen2"}))
    with pytest.raises(MorrisError, match="covers llama and mistral"):
        export_gguf(adapter, tmp_path / "out", model=str(other))
    odd = tmp_path / "odd-tokenizer"
    shutil.copytree(tiny_model, odd)
    tokenizer = json.loads((odd / "tokenizer.json").read_text())
    tokenizer["pre_tokenizer"] = {"type": "Whitespace"}
    (odd / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(MorrisError, match="no known llama.cpp name"):
        export_gguf(adapter, tmp_path / "out", model=str(odd))
    with pytest.raises(MorrisError, match="outtype"):
        export_gguf(adapter, tmp_path / "out", outtype="q4_k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd-tokenizer", "qwen-ish"]


def test_cli_export_gguf(adapter, tmp_path, capsys):
    out = tmp_path / "cli-gguf"
    assert cli(["export", "gguf", "--adapter-path", str(adapter), "--out", str(out), "--outtype", "f16"]) == 0
    printed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == out / "tiny-g-f16.gguf" and printed.is_file()


def test_smollm_pre_tokenizer_is_recognised():
    from morris_mlx.export.gguf_vocab import bpe_pre_tokenizer

    smollm = {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        }
    }
    assert bpe_pre_tokenizer(smollm) == "smollm"
    assert bpe_pre_tokenizer({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"


def test_random_llama_shape_also_exports(tiny_llama, tmp_path):
    adapter = make_mlx_adapter(tiny_llama, tmp_path / "llama-ad", keys=("self_attn.k_proj",), num_layers=1)
    path = export_gguf(adapter, tmp_path / "llama-gguf", outtype="f32")
    assert fields(path)["llama.block_count"] == 2
