"""A llama.cpp GGUF from a fused Hugging Face directory, with the tokenizer and chat template inside.

Written with the `gguf` package's GGUFWriter following convert_hf_to_gguf.py's conventions for the
llama architecture (Llama and Mistral both run as "llama" in llama.cpp): its tensor names, q/k rows
permuted into llama.cpp's rotary layout, 1-D tensors kept in F32. Tensors are streamed from memory
maps, so a 7B model is never held twice in memory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.adapter_format.tensors import Tensor, map_safetensors
from morris_mlx.errors import MorrisError
from morris_mlx.export.gguf_vocab import HINT, add_vocab

OUTTYPES = ("f16", "f32", "q8_0")
SUPPORTED_ARCHS = ("llama", "mistral")
Q8_BLOCK, Q8_BYTES = 32, 34  # GGML Q8_0: 32 int8 values and one fp16 scale per block

_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_BLOCK_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_BLOCK_TENSOR = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def check_gguf_config(config: dict[str, Any], source: str) -> None:
    """Refuse, before any work, a model this writer would convert wrongly."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_ARCHS:
        raise MorrisError(
            f"{source} is a {model_type!r} model; the GGUF export covers llama and mistral; {HINT}"
        )
    rope = config.get("rope_scaling") or {}
    kind = rope.get("rope_type") or rope.get("type")
    if kind not in (None, "default", "linear"):
        raise MorrisError(f"{source} uses {kind!r} RoPE scaling, which this GGUF writer does not map; {HINT}")


def gguf_name(name: str) -> str | None:
    """llama.cpp's name for a Hugging Face tensor; None for tensors it does not store."""
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    if name.endswith("rotary_emb.inv_freq"):
        return None
    match = _BLOCK_TENSOR.match(name)
    if match and match.group(2) in _BLOCK_NAMES:
        return f"blk.{match.group(1)}.{_BLOCK_NAMES[match.group(2)]}.{match.group(3)}"
    raise MorrisError(f"tensor {name!r} has no place in a llama GGUF; {HINT}")


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.LlamaModel.permute: HF's rotate-half rows into llama.cpp's interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _storage(shape: tuple[int, ...], outtype: str) -> str:
    """How one tensor is stored: 1-D tensors stay F32; rows not a multiple of the Q8_0 block stay F16."""
    if len(shape) < 2 or outtype == "f32":
        return "f32"
    if outtype == "q8_0" and shape[-1] % Q8_BLOCK == 0:
        return "q8_0"
    return "f16"


def _tensor_info(shape: tuple[int, ...], storage: str) -> tuple[tuple[int, ...], np.dtype, int, Any]:
    """(shape as add_tensor_info wants it, numpy dtype, bytes, raw GGML type) without touching data."""
    import gguf

    count = int(np.prod(shape))
    if storage == "q8_0":
        byte_shape = (*shape[:-1], shape[-1] // Q8_BLOCK * Q8_BYTES)
        return byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), gguf.GGMLQuantizationType.Q8_0
    dtype = np.dtype(np.float32 if storage == "f32" else np.float16)
    return shape, dtype, count * dtype.itemsize, None


def _prepare(name: str, tensor: Tensor, config: dict[str, Any], storage: str) -> np.ndarray:
    import gguf

    data = tensor.to_float32()
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    if ".self_attn.q_proj." in name:
        data = permute(data, heads, heads)
    elif ".self_attn.k_proj." in name:
        data = permute(data, heads, kv_heads)
    if storage == "q8_0":
        return gguf.quants.quantize(np.ascontiguousarray(data), gguf.GGMLQuantizationType.Q8_0)
    return np.ascontiguousarray(data, dtype=np.float32 if storage == "f32" else np.float16)


def _file_type(outtype: str) -> int:
    from gguf import LlamaFileType

    return {
        "f32": LlamaFileType.ALL_F32,
        "f16": LlamaFileType.MOSTLY_F16,
        "q8_0": LlamaFileType.MOSTLY_Q8_0,
    }[outtype]


def _add_hparams(writer: Any, config: dict[str, Any], name: str, outtype: str) -> None:
    from gguf import GGML_QUANT_VERSION, RopeScalingType

    heads = int(config["num_attention_heads"])
    writer.add_name(name)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_context_length(int(config.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    rope_theta = (
        config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta") or 10000.0
    )
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_vocab_size(int(config["vocab_size"]))
    head_dim = config.get("head_dim")
    if head_dim is not None:
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
    writer.add_rope_dimension_count(int(head_dim or int(config["hidden_size"]) // heads))
    rope = config.get("rope_scaling") or {}
    if (rope.get("rope_type") or rope.get("type")) == "linear" and rope.get("factor"):
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_file_type(_file_type(outtype))
    writer.add_quantization_version(GGML_QUANT_VERSION)


def _weight_files(hf_dir: Path) -> list[Path]:
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [hf_dir / n for n in names]
    files = sorted(hf_dir.glob("*.safetensors"))
    if not files:
        raise MorrisError(f"{hf_dir} has no .safetensors weights to convert")
    return files


def write_gguf(hf_dir: Path, out_path: Path, outtype: str = "f16", name: str | None = None) -> dict[str, Any]:
    """Convert the Hugging Face directory `hf_dir` into the GGUF file `out_path`; returns a summary."""
    import gguf

    if outtype not in OUTTYPES:
        raise MorrisError(f"GGUF type {outtype!r} is not offered; choose one of {', '.join(OUTTYPES)}")
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    check_gguf_config(config, str(hf_dir))
    if config.get("quantization") or config.get("quantization_config"):
        raise MorrisError(f"{hf_dir} is quantized; the GGUF is written from a de-quantized fused model")
    tensors: dict[str, Tensor] = {}
    for path in _weight_files(hf_dir):
        tensors.update(map_safetensors(path))
    writer = gguf.GGUFWriter(out_path, "llama")
    _add_hparams(writer, config, name or hf_dir.name, outtype)
    vocab = add_vocab(writer, hf_dir, int(config["vocab_size"]))
    # Two passes: tensor infos (names, shapes, types) go in the header before any data is written.
    plan: list[tuple[str, str]] = []
    for hf_name in tensors:
        target = gguf_name(hf_name)
        if target is not None:
            plan.append((hf_name, target))
    plan.sort(key=lambda item: _order(item[1]))
    for hf_name, target in plan:
        shape = tensors[hf_name].shape
        info_shape, dtype, nbytes, raw_type = _tensor_info(shape, _storage(shape, outtype))
        writer.add_tensor_info(target, info_shape, dtype, nbytes, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for hf_name, _target in plan:
        tensor = tensors[hf_name]
        writer.write_tensor_data(_prepare(hf_name, tensor, config, _storage(tensor.shape, outtype)))
    writer.close()
    return {"tensors": len(plan), "vocab": vocab.model, "pre_tokenizer": vocab.pre, "outtype": outtype}


def _order(name: str) -> tuple[int, int, str]:
    """token_embd first, blocks in numeric order, output tensors last (as llama.cpp's converter does)."""
    if name.startswith("blk."):
        return (1, int(name.split(".")[1]), name)
    return (0 if name.startswith("token_embd") else 2, 0, name)
