"""LoRA training on MLX: mlx-lm's LoRA layers, batches, loss and evaluation, in the shared harness.

`MLXTrainer` supplies the harness (morris_mlx.training) with mlx-lm's pieces: `linear_to_lora_layers`,
`iterate_batches` (its data order made a function of the seed and the epoch, so a resumed run sees the
same data), `default_loss`, `evaluate`, `grad_checkpoint`, and a compiled step with gradient
accumulation written as `mlx_lm.tuner.trainer.train` writes its own. mlx-lm's `train()` runs its loop
with its own UI and no way to resume optimizer state at a global step, so its step is reproduced here
instead of its loop being patched.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.atomic import atomic_path, write_json
from morris_mlx.backends.mlx_model import load_model
from morris_mlx.config import Config
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_CONFIG, MLX_LAST_WEIGHTS, MLX_WEIGHTS
from morris_mlx.training import TrainingData, TrainPlan

log = logging.getLogger("morris")


def lora_keys(model: Any, target_modules: list[str]) -> list[str]:
    """mlx-lm wants keys relative to a block ("self_attn.q_proj"); we take bare names ("q_proj")."""
    import mlx.nn as nn

    block = model.layers[0]
    names = [
        name for name, module in block.named_modules() if isinstance(module, (nn.Linear, nn.QuantizedLinear))
    ]
    keys = []
    for target in target_modules:
        found = [n for n in names if n == target or n.endswith("." + target)]
        if not found:
            raise MorrisError(
                f"target module {target!r} is not a linear layer of this model; choose from: "
                + ", ".join(sorted({n.rsplit(".", 1)[-1] for n in names}))
            )
        keys.extend(found)
    return keys


def mlx_lora_parameters(cfg: Config, model: Any) -> dict[str, Any]:
    return {
        "rank": cfg.lora.rank,
        "scale": cfg.lora.scale,
        "dropout": cfg.lora.dropout,
        "keys": lora_keys(model, cfg.lora.target_modules),
    }


def adapter_config(
    cfg: Config,
    lora_parameters: dict[str, Any],
    num_layers: int,
    model_dir: Path,
    data_dir: Path,
    plan: TrainPlan,
) -> dict[str, Any]:
    """adapter_config.json with the keys `mlx_lm.tuner.utils.load_adapters` and `mlx_lm lora` use."""
    return {
        "model": str(model_dir),
        "data": str(data_dir),
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": lora_parameters,
        "batch_size": cfg.train.batch_size,
        "iters": plan.iters,
        "learning_rate": cfg.train.learning_rate,
        "grad_accumulation_steps": plan.grad_accumulation,
        "max_seq_length": cfg.train.max_seq_length,
        "mask_prompt": cfg.train.mask_prompt,
        "seed": cfg.train.seed,
        "train": True,
    }


def load_datasets(data_dir: Path, tokenizer: Any, cfg: Config):
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

    from morris_mlx.backends.chat_template import training_tokens
    from morris_mlx.dataset.jsonl import load_split

    rows = {}
    for split in ("train", "valid"):
        if not (data_dir / f"{split}.jsonl").is_file():
            raise MorrisError(f"{data_dir} has no {split}.jsonl; run `morris prepare --out {data_dir}` first")
        # mlx-lm fails on empty or non-chat files with IndexError/TypeError; the dataset package's
        # reader names the file, the line and the fix.
        rows[split] = load_split(data_dir, split)

    class ChatRecords(ChatDataset):
        """mlx-lm's chat dataset, with the reply of a cut part left open as the torch backend leaves it."""

        def process(self, d: dict[str, Any]) -> tuple[list[int], int]:
            return training_tokens(self.tokenizer, d, self.mask_prompt)

    train, valid = (ChatRecords(rows[s], tokenizer, mask_prompt=cfg.train.mask_prompt) for s in ("train", "valid"))
    if len(valid) < cfg.train.batch_size:
        raise MorrisError(
            f"{data_dir}/valid.jsonl has {len(valid)} examples, fewer than the batch size "
            f"{cfg.train.batch_size}; add validation examples or lower --batch-size"
        )

    class TokenLengthDataset(CacheDataset):
        """mlx-lm batches by itemlen(), which for chat records measures the dict, not the tokens; sort by
        tokens as mlx-lm means to (and as the torch backend does), so both backends see the same order."""

        def itemlen(self, idx: int) -> int:
            return len(self[idx][0])

    train_set, valid_set = TokenLengthDataset(train), TokenLengthDataset(valid)
    # As the torch backend: a prompt that fills max_seq_length leaves no target token, and the loss
    # over zero tokens would quietly train on nothing.
    too_long = sum(
        ds[i][1] >= cfg.train.max_seq_length for ds in (train_set, valid_set) for i in range(len(ds))
    )
    if too_long:
        raise MorrisError(
            f"{too_long} examples have prompts of {cfg.train.max_seq_length}+ tokens and nothing left to learn; "
            "raise train.max_seq_length or shorten the system prompt"
        )
    return train_set, valid_set


def _save_adapter(model: Any, path: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.trainable_parameters()))
    with atomic_path(path) as tmp:
        mx.save_safetensors(str(tmp.with_suffix(".safetensors")), weights)
        tmp.with_suffix(".safetensors").replace(tmp)


def count_tokens(dataset: Any) -> int:
    """Tokens in a CacheDataset (its itemlen() measures the raw record, not the tokens)."""
    return sum(len(dataset[i][0]) for i in range(len(dataset)))



def neftune_noise(h: Any, alpha: float) -> Any:
    """NEFTune (Jain et al., 2023): h + U(-m, m) with m = alpha / sqrt(sequence length x hidden size)."""
    import mlx.core as mx

    magnitude = alpha / math.sqrt(h.shape[-2] * h.shape[-1])
    return h + mx.random.uniform(-magnitude, magnitude, h.shape).astype(h.dtype)


def noisy_embedding(embedding: Any, alpha: float) -> Any:
    """`embedding` that adds NEFTune noise in training mode; `as_linear` (tied output weights) unchanged."""
    import mlx.nn as nn

    class NoisyEmbedding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = embedding

        def __call__(self, x: Any) -> Any:
            h = self.inner(x)
            return neftune_noise(h, alpha) if self.training else h

        def as_linear(self, x: Any) -> Any:
            return self.inner.as_linear(x)

    return NoisyEmbedding()


class MLXTrainer:
    """The MLX backend's steps for the shared training harness (morris_mlx.training)."""

    backend = "mlx"
    adapter_format = "mlx"

    def __init__(self) -> None:
        self.rank, self.world_size = 0, 1
        self._step_fn: Any = None
        self._grad: Any = None
        self._batches: Any = None
        self._next_step = -1
        self._block_call: Any = None

    def join(self, cfg: Config) -> None:
        from morris_mlx.distributed import mlx_world

        self.world = mlx_world()
        self.rank, self.world_size = self.world.rank(), self.world.size()

    def load(self, cfg: Config, model_dir: Path, data_dir: Path) -> TrainingData:
        self._load_model(cfg, model_dir, data_dir)
        self.train_set, self.valid_set = load_datasets(self.data_dir, self.tokenizer, cfg)
        return TrainingData(len(self.train_set), count_tokens(self.train_set))

    def _load_model(self, cfg: Config, model_dir: Path, data_dir: Path) -> None:
        self.cfg, self.model_dir, self.data_dir = cfg, Path(model_dir), Path(data_dir)
        self.model, self.tokenizer = load_model(self.model_dir, cfg.model.trust_remote_code)
        layers = len(self.model.layers)
        self.num_layers = layers if cfg.lora.num_layers == -1 else cfg.lora.num_layers
        if self.num_layers > layers:
            raise MorrisError(f"lora.num_layers is {self.num_layers} but the model has {layers} layers")

    def build(self, plan: TrainPlan) -> None:
        import mlx.core as mx
        import mlx.optimizers as optim
        from mlx_lm.tuner.trainer import default_loss, grad_checkpoint
        from mlx_lm.tuner.utils import linear_to_lora_layers

        from morris_mlx.distributed import mlx_global_token_loss

        self.plan = plan
        mx.random.seed(self.cfg.train.seed)
        np.random.seed(self.cfg.train.seed)
        self.model.freeze()
        self.lora_parameters = mlx_lora_parameters(self.cfg, self.model)
        linear_to_lora_layers(self.model, self.num_layers, self.lora_parameters)
        train = self.cfg.train
        self.optimizer = (
            optim.AdamW(learning_rate=train.learning_rate, weight_decay=train.weight_decay)
            if train.weight_decay
            else optim.Adam(learning_rate=train.learning_rate)
        )
        self.loss = mlx_global_token_loss(self.world) if self.world_size > 1 else default_loss
        if train.neftune_alpha:
            inner = getattr(self.model, "model", None)
            if not hasattr(inner, "embed_tokens"):
                raise MorrisError("NEFTune needs a model with model.embed_tokens; train without --neftune-alpha")
            inner.embed_tokens = noisy_embedding(inner.embed_tokens, train.neftune_alpha)
        if self.cfg.train.grad_checkpoint:
            # mlx-lm patches the block *class*; finish() undoes it, so later models in this process (the
            # TUI, bench, tests) are not silently checkpointed, with other dropout draws.
            self._block_call = type(self.model.layers[0]).__call__
            grad_checkpoint(self.model.layers[0])
        self.model.train()

    def _compiled_step(self) -> Any:
        """mlx-lm's training step (gradients summed over accumulation, averaged over ranks), compiled over
        the model, optimizer and RNG state. Built on first use: a resume replaces the optimizer state."""
        import mlx.core as mx
        import mlx.nn as nn
        from mlx.nn.utils import average_gradients
        from mlx.utils import tree_map

        loss_value_and_grad = nn.value_and_grad(self.model, self.loss)
        state = [self.model.state, self.optimizer.state, mx.random.state]
        accumulation = self.plan.grad_accumulation

        @partial(mx.compile, inputs=state, outputs=state)
        def step(batch: Any, prev_grad: Any, do_update: bool) -> Any:
            (lvalue, toks), grad = loss_value_and_grad(self.model, *batch)
            if prev_grad is not None:
                grad = tree_map(lambda x, y: x + y, grad, prev_grad)
            if do_update:
                grad = average_gradients(grad)
                if accumulation > 1:
                    grad = tree_map(lambda x: x / accumulation, grad)
                self.optimizer.update(self.model, grad)
                grad = None
            return lvalue, toks, grad

        self._state = state
        return step

    def _training_batches(self, first_step: int) -> Any:
        """The run's batches from global step `first_step` on; each epoch's order depends on (seed, epoch)."""
        from mlx_lm.tuner.trainer import iterate_batches

        step, epoch = 0, 0
        while True:
            np.random.seed(self.cfg.train.seed + epoch)
            for batch in iterate_batches(
                self.train_set, self.cfg.train.batch_size, self.cfg.train.max_seq_length, comm_group=self.world
            ):
                if step >= first_step:
                    yield batch
                step += 1
            epoch += 1

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        import mlx.core as mx

        if self._step_fn is None:
            self._step_fn = self._compiled_step()
        if step != self._next_step:
            self._batches = self._training_batches(step)
        self._next_step = step + 1
        if apply_update:
            self.optimizer.learning_rate = learning_rate
        lvalue, toks, self._grad = self._step_fn(next(self._batches), self._grad, apply_update)
        mx.eval(self._state, lvalue, toks, self._grad)
        if self.world_size > 1:
            lvalue = mx.distributed.all_sum(lvalue, stream=mx.cpu) / self.world_size
            toks = mx.distributed.all_sum(toks, stream=mx.cpu)
        return lvalue.item(), int(toks.item())

    def _validation_batches(self, dataset, batch_size, max_seq_length, loop=False, seed=None, comm_group=None):
        from mlx_lm.tuner.trainer import iterate_batches

        np.random.seed(self.cfg.train.seed)  # always the same batches, whatever happened before
        yield from iterate_batches(dataset, batch_size, max_seq_length, comm_group=comm_group)

    def evaluate(self) -> float:
        from mlx_lm.tuner.trainer import evaluate

        train = self.cfg.train
        val_loss = evaluate(
            model=self.model,
            dataset=self.valid_set,
            batch_size=train.batch_size,
            num_batches=train.val_batches,
            max_seq_length=train.max_seq_length,
            iterate_batches=self._validation_batches,
        )
        self.model.train()
        return val_loss

    def save_adapter(self, adapter_dir: Path) -> None:
        """adapters.safetensors and adapter_config.json, as `mlx_lm lora` writes them."""
        _save_adapter(self.model, Path(adapter_dir) / MLX_WEIGHTS)
        config = adapter_config(
            self.cfg, self.lora_parameters, self.num_layers, self.model_dir, self.data_dir, self.plan
        )
        write_json(Path(adapter_dir) / ADAPTER_CONFIG, config)

    def save_state(self, folder: Path) -> None:
        import mlx.core as mx
        from mlx.utils import tree_flatten

        _save_adapter(self.model, folder / MLX_WEIGHTS)
        mx.save_safetensors(str(folder / "optimizer.safetensors"), dict(tree_flatten(self.optimizer.state)))
        mx.save_safetensors(str(folder / "rng.safetensors"), {"key": mx.random.state[0]})

    def check_state(self, folder: Path) -> None:
        import mlx.core as mx

        for name in (MLX_WEIGHTS, "optimizer.safetensors", "rng.safetensors"):
            mx.load(str(folder / name))

    def load_state(self, folder: Path) -> None:
        import mlx.core as mx
        from mlx.utils import tree_unflatten

        self.model.load_weights(str(folder / MLX_WEIGHTS), strict=False)
        self.optimizer.state = tree_unflatten(list(mx.load(str(folder / "optimizer.safetensors")).items()))
        # mx.random.seed(n) sets the key to n's two 32-bit halves, so a saved key round-trips exactly.
        high, low = (int(x) for x in mx.load(str(folder / "rng.safetensors"))["key"].tolist())
        mx.random.seed((high << 32) | low)

    def peak_memory_gb(self) -> float:
        import mlx.core as mx

        return mx.get_peak_memory() / 1e9

    def finish(self, adapter_dir: Path | None) -> None:
        if adapter_dir is not None:  # the weights at the end of the run, under mlx-lm's name for them
            _save_adapter(self.model, Path(adapter_dir) / MLX_LAST_WEIGHTS)
        if self._block_call is not None:
            type(self.model.layers[0]).__call__ = self._block_call
