"""The measurements: training throughput and generation speed, ours and the plain libraries' side by side."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from morris_mlx.config import Config, GenerateConfig, load_config
from morris_mlx.files import ADAPTER_CONFIG, MLX_WEIGHTS
from morris_mlx.prompts import article_messages
from morris_mlx.training import TrainEvent

WARMUP_STEPS = 2


def summarise(values: list[float]) -> dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": values}


def bench_config(
    iters: int,
    batch_size: int,
    rank: int,
    max_seq_length: int,
    grad_checkpoint: bool,
    objective: str = "sft",
    dropout: float | None = None,
) -> Config:
    dropout_override = {} if dropout is None else {"lora.dropout": dropout}
    return load_config(
        overrides={
            **dropout_override,
            "train.objective": objective,
            "train.iters": iters,
            "train.batch_size": batch_size,
            "train.grad_accumulation": 1,
            "train.steps_per_eval": 10**6,
            "train.save_every": 10**6,
            "train.max_seq_length": max_seq_length,
            "train.grad_checkpoint": grad_checkpoint,
            "lora.rank": rank,
        }
    )


def train_ours(backend_name: str, model_dir: Path, data_dir: Path, cfg: Config) -> dict[str, Any]:
    """Our training path; per-step tokens/s after the warm-up steps."""
    from morris_mlx.backends import get_backend

    rates: list[float] = []
    peak: list[float] = []

    def collect(event: TrainEvent) -> None:
        if event.kind == "train" and event.step > WARMUP_STEPS:
            rates.append(event.data["tokens_per_second"])
            peak.append(event.data["peak_memory_gb"])

    backend = get_backend(backend_name, announce=False)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        kwargs = {"quiet": True} if backend_name == "mlx" else {}
        backend.train(cfg, model_dir, data_dir, Path(tmp) / "adapter", callback=collect, **kwargs)
        wall = time.perf_counter() - started
    return {"train_tokens_per_second": summarise(rates), "peak_memory_gb": max(peak), "wall_seconds": wall}


@contextlib.contextmanager
def unpatched_block_class(model: Any) -> Iterator[None]:
    """mlx-lm's grad_checkpoint patches the block *class*; undo it afterwards so later models in this
    process are not silently checkpointed."""
    block_class = type(model.layers[0])
    original_call = block_class.__call__
    try:
        yield
    finally:
        block_class.__call__ = original_call


def train_plain_mlx_lm(model_dir: Path, data_dir: Path, cfg: Config) -> dict[str, Any]:
    """mlx-lm's own trainer with its own batching, nothing of ours in the loop."""
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from morris_mlx.backends.mlx_model import load_model
    from morris_mlx.backends.mlx_train import load_datasets, mlx_lora_parameters

    model, tokenizer = load_model(model_dir)
    train_set, _ = load_datasets(data_dir, tokenizer, cfg)
    mx.random.seed(cfg.train.seed)
    model.freeze()
    num_layers = len(model.layers) if cfg.lora.num_layers == -1 else cfg.lora.num_layers
    linear_to_lora_layers(model, num_layers, mlx_lora_parameters(cfg, model))
    rates: list[float] = []
    peak: list[float] = []

    class Collect(TrainingCallback):
        def on_train_loss_report(self, info: dict[str, Any]) -> None:
            if info["iteration"] > WARMUP_STEPS:
                rates.append(info["tokens_per_second"])
                peak.append(info["peak_memory"])

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArgs(
            batch_size=cfg.train.batch_size,
            iters=cfg.train.iters,
            steps_per_report=1,
            steps_per_eval=10**9,
            steps_per_save=10**9,
            max_seq_length=cfg.train.max_seq_length,
            adapter_file=str(Path(tmp) / MLX_WEIGHTS),
            grad_checkpoint=cfg.train.grad_checkpoint,
        )
        started = time.perf_counter()
        with unpatched_block_class(model):
            train(
                model,
                optim.Adam(learning_rate=cfg.train.learning_rate),
                train_set,
                None,
                args,
                training_callback=Collect(),
            )
        wall = time.perf_counter() - started
    return {"train_tokens_per_second": summarise(rates), "peak_memory_gb": max(peak), "wall_seconds": wall}


def generate_ours(
    generator: Any, max_tokens: int, repeats: int, topic: str = "network slicing"
) -> dict[str, Any]:
    """Time to first token, prefill and decode tokens/s through the Generator protocol (greedy)."""
    settings = GenerateConfig(max_tokens=max_tokens, temp=0.0, repetition_penalty=1.0)
    messages = article_messages(topic)
    ttft, prefill, decode, tokens, peak = [], [], [], [], []
    for run in range(repeats + 1):
        started = time.perf_counter()
        first = None
        last = None
        for chunk in generator.stream(messages, settings):
            if first is None:
                first = time.perf_counter() - started
            last = chunk
        if run == 0 or last is None:
            continue  # warm-up
        ttft.append(first)
        prefill.append(last.prompt_tps)
        decode.append(last.generation_tps)
        tokens.append(last.generation_tokens)
        peak.append(last.peak_memory_gb)
    return {
        "peak_memory_gb": max(peak),
        "time_to_first_token_s": summarise(ttft),
        "prefill_tokens_per_second": summarise(prefill),
        "decode_tokens_per_second": summarise(decode),
        "generated_tokens": summarise([float(t) for t in tokens]),
    }


BATCH_TOPICS = (
    "network slicing",
    "open RAN",
    "the 5G business case",
    "fibre to the home",
    "telco AI",
    "satellite broadband",
    "spectrum auctions",
    "vendor consolidation",
)


def generate_batch_ours(
    generator: Any, batch_size: int, articles: int, max_tokens: int, repeats: int
) -> dict[str, Any]:
    """Tokens/s of `morris generate --batch` (greedy): `articles` prompts through `generate_batch` at
    `batch_size`, all generated tokens over the wall time, first token to last."""
    settings = GenerateConfig(max_tokens=max_tokens, temp=0.0, repetition_penalty=1.0)
    conversations = [article_messages(BATCH_TOPICS[i % len(BATCH_TOPICS)]) for i in range(articles)]
    rates, tokens, peak = [], [], []
    for run in range(repeats + 1):
        started = time.perf_counter()
        made = sum(
            r.generation_tokens
            for _, r in generator.generate_batch(conversations, [settings] * articles, batch_size)
        )
        wall = time.perf_counter() - started
        if run == 0:
            continue  # warm-up
        rates.append(made / wall)
        tokens.append(float(made))
        peak.append(peak_memory_gb(generator))
    return {
        "peak_memory_gb": max(peak),
        "batch_tokens_per_second": summarise(rates),
        "generated_tokens": summarise(tokens),
        "articles": articles,
    }


def generate_plain_mlx_lm(model_dir: Path, max_tokens: int, repeats: int) -> dict[str, Any]:
    """mlx-lm's stream_generate on the bare model: the adapter-free reference."""
    from mlx_lm.generate import stream_generate

    from morris_mlx.backends.chat_template import apply_chat_template
    from morris_mlx.backends.mlx_model import load_model

    model, tokenizer = load_model(model_dir)
    prompt = apply_chat_template(tokenizer, article_messages("network slicing"), True)
    ttft, prefill, decode = [], [], []
    for run in range(repeats + 1):
        started = time.perf_counter()
        first, last = None, None
        for response in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
            if first is None:
                first = time.perf_counter() - started
            last = response
        if run:
            ttft.append(first)
            prefill.append(last.prompt_tps)
            decode.append(last.generation_tps)
    return {
        "time_to_first_token_s": summarise(ttft),
        "prefill_tokens_per_second": summarise(prefill),
        "decode_tokens_per_second": summarise(decode),
    }


def make_random_adapter(model_dir: Path, out: Path, rank: int = 16, seed: int = 0) -> Path:
    """An MLX LoRA adapter with random, non-zero weights on q/k/v/o of every layer (no training needed)."""
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from morris_mlx.backends.mlx_model import load_model
    from morris_mlx.backends.mlx_train import mlx_lora_parameters

    cfg = load_config(overrides={"lora.rank": rank})
    model, _ = load_model(model_dir)
    params = mlx_lora_parameters(cfg, model)
    mx.random.seed(seed)
    model.freeze()
    linear_to_lora_layers(model, len(model.layers), params)
    weights = {}
    for name, value in tree_flatten(model.trainable_parameters()):
        weights[name] = value if name.endswith("lora_a") else mx.random.normal(value.shape) * 0.01
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / MLX_WEIGHTS), weights)
    (out / ADAPTER_CONFIG).write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": len(model.layers), "lora_parameters": params})
    )
    return out


def peak_memory_gb(generator: Any) -> float:
    """The peak since `reset_peak_memory`, as the backends report it in their chunks."""
    if generator.backend == "mlx":
        import mlx.core as mx

        return mx.get_peak_memory() / 1e9
    from morris_mlx.backends.torch_backend import peak_memory_gb as torch_peak

    return torch_peak(generator.device)


def reset_peak_memory(backend_name: str) -> None:
    """Peak-memory counters are per process: without a reset, a measurement would report an earlier
    one's peak (a bf16 load before a 4-bit training run, say)."""
    if backend_name == "mlx":
        import mlx.core as mx

        mx.clear_cache()
        mx.reset_peak_memory()
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def convert_mlx(source: Path, precision: Any, scratch: Path, repeats: int) -> dict[str, Any]:
    """Seconds for `morris convert` of `source` at `precision` (a warm-up run first: it reads the source
    into the page cache, which a user converting a freshly downloaded model also has)."""
    import shutil

    from morris_mlx.bench.precision import run_convert

    seconds: list[float] = []
    size = 0
    for run in range(repeats + 1):
        out = scratch / f"convert-{run}"
        started = time.perf_counter()
        run_convert(source, out, precision)
        elapsed = time.perf_counter() - started
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        shutil.rmtree(out)
        if run:
            seconds.append(elapsed)
    return {"convert_seconds": summarise(seconds), "output_gb": size / 1e9}
