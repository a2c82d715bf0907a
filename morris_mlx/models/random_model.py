"""Random-weight Hugging Face model directories built in code: tiny ones for tests, Zephyr-shaped
ones for benchmarks, so neither ever downloads.

Weights are written with numpy + safetensors (no torch needed); the tokenizer is a byte-level BPE
trained locally with `tokenizers`, with a ChatML chat template. mlx-lm and transformers both load the
result unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from morris_mlx.atomic import atomic_dir

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_TRAINING_TEXT = """
The operator promised that 5G would change everything, and the shareholders are still waiting.
Network slicing, open RAN and edge computing were each hailed as the industry's saviour.
What could possibly go wrong? Plenty, as it turned out (and who could blame the analysts for laughing).
The organisation realised too late that the programme had no customers, only cheerleaders.
Capital expenditure fell, jobs were cut, towers were sold, and the telco limped on like a zombie.
Write a telecom industry news article about the latest spectrum auction, the fibre rollout and AI.
"""


@dataclass
class ModelShape:
    model_type: str = "mistral"
    hidden_size: int = 64
    num_hidden_layers: int = 2
    intermediate_size: int = 128
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vocab_size: int = 512
    max_position_embeddings: int = 2048
    # Not 10000 on purpose: a loader that ignores the config's rope_theta fails the parity tests.
    rope_theta: float = 100000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False


SHAPES = {
    "tiny": ModelShape(),
    "tiny-llama": ModelShape(model_type="llama"),
    # SmolLM2-135M-Instruct (the embedded default) exactly, as its GGUF says: benchmarks on machines where
    # the default cannot be set up measure the same shape (speed and memory do not depend on the weights).
    "smollm2": ModelShape(
        model_type="llama",
        hidden_size=576,
        num_hidden_layers=30,
        intermediate_size=1536,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    ),
    # Mistral-7B / Zephyr-7B-beta exactly, for benchmarks without a download.
    "zephyr": ModelShape(
        model_type="mistral",
        hidden_size=4096,
        num_hidden_layers=32,
        intermediate_size=14336,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=32000,
        max_position_embeddings=32768,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
    ),
}


def build_tokenizer(out_dir: Path, vocab_size: int, text: str | None = None) -> None:
    """Train a byte-level BPE on `text` and save it with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, 4096),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([(text or _TRAINING_TEXT)] * 4, trainer=trainer)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 2048,
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, indent=2)
    )


def _weights(shape: ModelShape, rng: np.random.Generator, dtype: np.dtype):
    """Yield (name, array) for every tensor of a Llama/Mistral decoder."""
    h, i = shape.hidden_size, shape.intermediate_size
    head_dim = h // shape.num_attention_heads
    kv = shape.num_key_value_heads * head_dim

    def normal(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * 0.02).astype(dtype)

    yield "model.embed_tokens.weight", normal(shape.vocab_size, h)
    for layer in range(shape.num_hidden_layers):
        p = f"model.layers.{layer}."
        yield p + "self_attn.q_proj.weight", normal(h, h)
        yield p + "self_attn.k_proj.weight", normal(kv, h)
        yield p + "self_attn.v_proj.weight", normal(kv, h)
        yield p + "self_attn.o_proj.weight", normal(h, h)
        yield p + "mlp.gate_proj.weight", normal(i, h)
        yield p + "mlp.up_proj.weight", normal(i, h)
        yield p + "mlp.down_proj.weight", normal(h, i)
        yield p + "input_layernorm.weight", np.ones(h, dtype)
        yield p + "post_attention_layernorm.weight", np.ones(h, dtype)
    yield "model.norm.weight", np.ones(h, dtype)
    if not shape.tie_word_embeddings:
        yield "lm_head.weight", normal(shape.vocab_size, h)


def model_config(shape: ModelShape, dtype: str) -> dict:
    """config.json for the shape; `rope_theta` top-level and in rope_parameters (docs/rope-trap.md)."""
    config = asdict(shape)
    config.update(
        architectures=["MistralForCausalLM" if shape.model_type == "mistral" else "LlamaForCausalLM"],
        torch_dtype=dtype,
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
        hidden_act="silu",
        attention_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
    )
    if shape.model_type == "mistral":
        config["sliding_window"] = None
    return config


def build_random_model(
    out_dir: str | Path,
    shape: str | ModelShape = "tiny",
    seed: int = 0,
    dtype: str = "float32",
    tokenizer_text: str | None = None,
    shard_bytes: int = 4_000_000_000,
    overwrite: bool = False,
) -> Path:
    """Write a random-weight HF model directory at `out_dir` and return it."""
    from safetensors.numpy import save_file

    if isinstance(shape, str):
        shape = SHAPES[shape]
    np_dtype = {"float32": np.float32, "float16": np.float16}[dtype]
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        build_tokenizer(tmp, shape.vocab_size, tokenizer_text)
        vocab = json.loads((tmp / "tokenizer.json").read_text())["model"]["vocab"]
        shape = ModelShape(**{**asdict(shape), "vocab_size": max(shape.vocab_size, len(vocab))})
        shards: list[dict[str, np.ndarray]] = [{}]
        size = 0
        for name, array in _weights(shape, rng, np_dtype):
            if size + array.nbytes > shard_bytes and shards[-1]:
                shards.append({})
                size = 0
            shards[-1][name] = array
            size += array.nbytes
        weight_map = {}
        for n, shard in enumerate(shards, start=1):
            fname = (
                "model.safetensors" if len(shards) == 1 else f"model-{n:05d}-of-{len(shards):05d}.safetensors"
            )
            save_file(shard, str(tmp / fname), metadata={"format": "pt"})
            weight_map.update({k: fname for k in shard})
        if len(shards) > 1:
            index = {"metadata": {}, "weight_map": weight_map}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
        config = model_config(shape, dtype)
        config["eos_token_id"] = vocab["<|im_end|>"]
        config["pad_token_id"] = vocab["<|endoftext|>"]
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "generation_config.json").write_text(
            json.dumps({"eos_token_id": config["eos_token_id"], "do_sample": False})
        )
    return out_dir
