"""LoRA training with transformers + peft, with the semantics of mlx-lm's trainer.

The same config trains the same way on both backends:
- examples are mlx-lm's ChatDataset: the chat template over all messages; with mask_prompt the loss
  starts at the length of the templated prompt (all messages but the last, plus the generation prompt);
- batches are mlx-lm's: examples sorted by length, cut into batches, batches shuffled per epoch by
  numpy with seed + epoch (the MLX backend's order), right-padded with zeros to 1 + a multiple of 32;
- the loss is mlx-lm's default_loss: mean cross-entropy over the unmasked targets of a micro-batch;
- gradients are summed over grad_accumulation micro-batches and divided by it before the update;
- the optimizer is mlx's Adam, which has no bias correction, computed by torch.optim.Adam (see MlxAdam).
The loop around the steps (validation, checkpoints, early stopping, metrics) is the shared harness's
(morris_mlx.training); this module supplies `TorchTrainer`, its steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from morris_mlx.atomic import write_json
from morris_mlx.backends.torch_backend import load_model, load_tokenizer, peak_memory_gb, quiet_peft
from morris_mlx.config import Config
from morris_mlx.errors import MorrisError
from morris_mlx.files import ADAPTER_CONFIG, PEFT_WEIGHTS
from morris_mlx.training import TrainingData, TrainPlan

log = logging.getLogger("morris")

PAD_TO = 32  # mlx-lm pads each batch to 1 + a multiple of 32 tokens


# data -------------------------------------------------------------------------------------------------


@dataclass
class Example:
    tokens: list[int]
    offset: int  # first target token in the loss (0 without prompt masking)


def read_split(data_dir: Path, split: str) -> list[dict[str, Any]]:
    """The chat records of `split`.jsonl, validated by the dataset package (errors name file and line)."""
    from morris_mlx.dataset.jsonl import load_split

    if not Path(data_dir).is_dir():
        raise MorrisError(
            f"data folder {data_dir} does not exist; run `morris prepare --out {data_dir}` first"
        )
    return load_split(data_dir, split)


def tokenize(rows: list[dict[str, Any]], tokenizer: Any, mask_prompt: bool) -> list[Example]:
    """mlx-lm's ChatDataset.process for every record (with open replies for cut parts: training_tokens)."""
    from jinja2 import TemplateError

    from morris_mlx.backends.chat_template import training_tokens

    examples = []
    for row in rows:
        try:
            tokens, offset = training_tokens(tokenizer, row, mask_prompt)
        except TemplateError as exc:
            raise MorrisError(
                f"the model's chat template rejects a training example ({exc}); prepare the data for this model"
            ) from None
        examples.append(Example(tokens, offset))
    return examples


def make_batches(examples: list[Example], batch_size: int) -> list[list[int]]:
    """Indices sorted by length, cut into whole batches (a remainder is dropped, as mlx-lm does)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].tokens))
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def epoch_order(seed: int, epoch: int, n_batches: int) -> np.ndarray:
    """The batch order of an epoch: a function of (seed, epoch) only, so a resumed run sees the same data."""
    return np.random.RandomState(seed + epoch).permutation(n_batches)


def collate(
    examples: list[Example], indices: list[int], max_seq_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token matrix (zero-padded) and (offset, length) rows, as mlx-lm's iterate_batches makes them."""
    batch = [examples[i] for i in indices]
    longest = max(len(e.tokens) for e in batch)
    width = min(1 + PAD_TO * ((longest + PAD_TO - 1) // PAD_TO), max_seq_length)
    tokens = np.zeros((len(batch), width), np.int64)
    bounds = np.zeros((len(batch), 2), np.int64)
    for row, example in enumerate(batch):
        length = min(len(example.tokens), max_seq_length)
        tokens[row, :length] = example.tokens[:length]
        bounds[row] = (example.offset, length)
    return torch.from_numpy(tokens), torch.from_numpy(bounds)


def batch_loss(model: Any, tokens: torch.Tensor, bounds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mlx-lm's default_loss. Its mask keeps targets at positions offset..length inclusive, so each
    sequence also learns the first padding token (id 0) after its last token; kept for parity."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = model(input_ids=inputs).logits.float()
    steps = torch.arange(1, targets.shape[1] + 1, device=tokens.device)
    mask = (steps >= bounds[:, 0:1]) & (steps <= bounds[:, 1:])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    ce = ce.view_as(targets) * mask
    ntoks = mask.sum()
    return ce.sum() / ntoks, ntoks


# optimizer --------------------------------------------------------------------------------------------


class MlxAdam:
    """mlx.optimizers.Adam (m / (sqrt(v) + eps), no bias correction) computed by torch.optim.Adam.

    torch always bias-corrects: its step is lr/c1 * m / (sqrt(v)/c2 + eps) with c1 = 1 - b1^t and
    c2 = sqrt(1 - b2^t). Feeding it lr * c1 / c2 and eps / c2 makes that exactly lr * m / (sqrt(v) + eps).
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.torch = torch.optim.Adam(params, lr=1e-3, betas=betas, eps=eps, weight_decay=0.0)

    def step(self, learning_rate: float, update: int) -> None:
        """Apply optimizer update number `update` (0-based) with `learning_rate`."""
        if self.weight_decay:  # mlx's AdamW: p * (1 - lr * wd), then the Adam step
            with torch.no_grad():
                for group in self.torch.param_groups:
                    for p in group["params"]:
                        p.mul_(1 - learning_rate * self.weight_decay)
        t = update + 1
        c1 = 1 - self.betas[0] ** t
        c2 = math.sqrt(1 - self.betas[1] ** t)
        for group in self.torch.param_groups:
            group["lr"] = learning_rate * c1 / c2
            group["eps"] = self.eps / c2
        self.torch.step()
        self.torch.zero_grad(set_to_none=True)


def neftune_hook(alpha: float) -> Any:
    """A forward hook for the input embeddings: NEFTune noise U(-m, m), m = alpha / sqrt(tokens x hidden),
    in training mode only (as transformers' Trainer applies it)."""

    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        magnitude = alpha / math.sqrt(output.size(-2) * output.size(-1))
        return output + torch.zeros_like(output).uniform_(-magnitude, magnitude)

    return hook


# checkpoints ------------------------------------------------------------------------------------------


def save_adapter(model: Any, target_dir: Path) -> None:
    """Write the PEFT adapter (adapter_model.safetensors + adapter_config.json) into `target_dir`,
    each file replaced atomically so a reader never sees a half-written adapter."""
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".adapter-") as tmp:
        model.save_pretrained(tmp)
        for name in (ADAPTER_CONFIG, PEFT_WEIGHTS):
            with open(Path(tmp) / name, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(Path(tmp) / name, target_dir / name)


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    if torch.backends.mps.is_available():
        tensors["torch_mps"] = torch.mps.get_rng_state()
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    python = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
    }
    return tensors, python


def _set_rng_state(tensors: dict[str, torch.Tensor], python: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    if "torch_mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["torch_mps"])
    version, internal, gauss = python["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = python["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# the trainer -----------------------------------------------------------------------------------------


def load_examples(cfg: Config, data_dir: Path, tokenizer: Any) -> tuple[list[Example], list[Example]]:
    """The tokenized train and valid splits, checked to be trainable with this config."""
    train_set = tokenize(read_split(data_dir, "train"), tokenizer, cfg.train.mask_prompt)
    valid_set = tokenize(read_split(data_dir, "valid"), tokenizer, cfg.train.mask_prompt)
    too_long = sum(e.offset >= cfg.train.max_seq_length for e in train_set + valid_set)
    if too_long:
        raise MorrisError(
            f"{too_long} examples have prompts of {cfg.train.max_seq_length}+ tokens and nothing left to learn; "
            "raise train.max_seq_length or shorten the system prompt"
        )
    if len(valid_set) < cfg.train.batch_size:
        raise MorrisError(
            f"{data_dir}/valid.jsonl has {len(valid_set)} examples, fewer than the batch size "
            f"{cfg.train.batch_size}; add validation examples or lower --batch-size"
        )
    return train_set, valid_set


def _lora_config(cfg: Config, model: Any) -> Any:
    from peft import LoraConfig

    total = model.config.num_hidden_layers
    n = total if cfg.lora.num_layers == -1 else cfg.lora.num_layers
    if n > total:
        raise MorrisError(f"lora.num_layers is {n} but the model has {total} layers; use -1 for all")
    # Inside a transformer block only, as the MLX backend adapts: lm_head is a Linear too, and an adapter
    # on it would train here and be refused there.
    try:
        block = model.get_decoder().layers[0]
    except (AttributeError, IndexError, TypeError):
        block = model
    linear = sorted(
        {name.rsplit(".", 1)[-1] for name, m in block.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    for target in cfg.lora.target_modules:
        if target.rsplit(".", 1)[-1] not in linear:
            raise MorrisError(
                f"target module {target!r} is not a linear layer of this model; choose from: {', '.join(linear)}"
            )
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        layers_to_transform=None if n == total else list(range(total - n, total)),
        bias="none",
    )


class TorchTrainer:
    """The torch backend's steps for the shared training harness (morris_mlx.training)."""

    backend = "torch"
    adapter_format = "peft"

    def __init__(self, device: str = "cpu") -> None:
        self.device, self.rank, self.world_size = device, 0, 1

    def join(self, cfg: Config) -> None:
        from morris_mlx.distributed import torch_world

        self.world = torch_world(self.device)
        self.device, self.rank, self.world_size = self.world.device, self.world.rank, self.world.size

    def load(self, cfg: Config, model_dir: Path, data_dir: Path) -> TrainingData:
        self.cfg, self.model_dir = cfg, Path(model_dir)
        self.tokenizer = load_tokenizer(model_dir, cfg.model.trust_remote_code)
        self.train_set, self.valid_set = load_examples(cfg, Path(data_dir), self.tokenizer)
        return TrainingData(len(self.train_set), sum(len(e.tokens) for e in self.train_set))

    def build(self, plan: TrainPlan) -> None:
        from peft import get_peft_model

        train, seed = self.cfg.train, self.cfg.train.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        base = load_model(self.model_dir, self.device, self.cfg.model.trust_remote_code)
        lora_config = _lora_config(self.cfg, base)
        if train.grad_checkpoint:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.config.use_cache = False
        with quiet_peft():
            self.model = get_peft_model(base, lora_config)
        if train.neftune_alpha:
            self.model.get_input_embeddings().register_forward_hook(neftune_hook(train.neftune_alpha))
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = MlxAdam(trainable, weight_decay=train.weight_decay)
        self.forward = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # DDP averages gradients over ranks during backward; the loss is weighted so that average is the
            # global batch's mean (morris_mlx.distributed explains why).
            index = torch.device(self.device).index
            self.forward = DistributedDataParallel(self.model, device_ids=[index] if "cuda" in self.device else None)
        self.accumulation = plan.grad_accumulation
        self.train_batches = self.batches(self.train_set)
        self.valid_batches = self.batches(self.valid_set)
        if train.val_batches != -1:
            keep = epoch_order(seed, 0, len(self.valid_batches))[: train.val_batches]
            self.valid_batches = [self.valid_batches[i] for i in keep]
        self._orders: dict[int, np.ndarray] = {}
        self.model.train()

    def batches(self, examples: list[Any]) -> list[list[int]]:
        return make_batches(examples, self.cfg.train.batch_size)

    def batch_at(self, step: int) -> list[int]:
        """The training batch of global step `step`: the data order is a function of (seed, epoch) only."""
        epoch, position = divmod(step, len(self.train_batches))
        if epoch not in self._orders:
            self._orders = {epoch: epoch_order(self.cfg.train.seed, epoch, len(self.train_batches))}
        return self.train_batches[self._orders[epoch][position]]

    def update(self, step: int, learning_rate: float) -> None:
        """The optimizer update after the last micro-batch of an accumulation."""
        if self.accumulation > 1:
            for p in self.optimizer.torch.param_groups[0]["params"]:
                if p.grad is not None:
                    p.grad.div_(self.accumulation)
        self.optimizer.step(learning_rate, step // self.accumulation)

    def _shard(self, indices: list[int]) -> list[int]:
        """This rank's rows of a global batch, as mlx-lm's iterate_batches splits them."""
        return indices[self.rank :: self.world_size]

    def _batch(self, examples: list[Example], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, bounds = collate(examples, self._shard(indices), self.cfg.train.max_seq_length)
        return tokens.to(self.device), bounds.to(self.device)

    def train_step(self, step: int, learning_rate: float, apply_update: bool) -> tuple[float, int]:
        tokens, bounds = self._batch(self.train_set, self.batch_at(step))
        syncs = self.world_size == 1 or apply_update
        with contextlib.nullcontext() if syncs else self.forward.no_sync():
            loss, ntoks = batch_loss(self.forward, tokens, bounds)
            if self.world_size > 1:
                all_tokens = self.world.all_sum(ntoks)
                loss = loss * ntoks * self.world_size / all_tokens
                ntoks = all_tokens
            loss.backward()
        if self.world_size > 1:
            loss = self.world.all_sum(loss.detach()) / self.world_size
        if apply_update:
            self.update(step, learning_rate)
        return loss.item(), int(ntoks.item())

    def evaluate(self) -> float:
        self.model.eval()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        with torch.no_grad():
            for indices in self.valid_batches:
                loss, ntoks = batch_loss(self.model, *self._batch(self.valid_set, indices))
                sums += torch.stack([loss.double() * ntoks, ntoks.double()])
        self.model.train()
        total, count = self.world.all_sum(sums).tolist()
        return total / count

    def save_adapter(self, adapter_dir: Path) -> None:
        save_adapter(self.model, adapter_dir)

    def save_state(self, folder: Path) -> None:
        """A PEFT adapter folder plus optimizer and RNG state, all safetensors or JSON (no pickle)."""
        from safetensors.torch import save_file

        self.model.save_pretrained(str(folder))
        opt = self.optimizer.torch.state_dict()
        tensors, scalars = {}, {}
        for index, param_state in opt["state"].items():
            for key, value in param_state.items():
                if torch.is_tensor(value):
                    tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars[f"{index}.{key}"] = value
        save_file(tensors, str(folder / "optimizer.safetensors"))
        write_json(folder / "optimizer.json", {"param_groups": opt["param_groups"], "scalars": scalars})
        rng_tensors, rng_python = _rng_state()
        save_file(rng_tensors, str(folder / "rng.safetensors"))
        write_json(folder / "rng.json", rng_python)

    def check_state(self, folder: Path) -> None:
        from safetensors.torch import load_file

        for name in ("optimizer.json", "rng.json", ADAPTER_CONFIG):
            json.loads((folder / name).read_text(encoding="utf-8"))
        for name in (PEFT_WEIGHTS, "optimizer.safetensors", "rng.safetensors"):
            load_file(str(folder / name))

    def load_state(self, folder: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        try:
            result = set_peft_model_state_dict(self.model, load_file(str(folder / PEFT_WEIGHTS)))
        except RuntimeError:  # shapes differ: another rank or another base model
            raise MorrisError(
                f"checkpoint {folder} was made with another LoRA rank or base model; resume with the same "
                "settings, or start afresh in another --adapter-path"
            ) from None
        unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
        if unexpected:
            raise MorrisError(f"checkpoint {folder} does not match this LoRA config ({unexpected[0]}); start afresh")
        self._load_optimizer(folder)
        _set_rng_state(load_file(str(folder / "rng.safetensors")), json.loads((folder / "rng.json").read_text()))

    def _load_optimizer(self, folder: Path) -> None:
        from safetensors.torch import load_file

        saved = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
        state: dict[int, dict[str, Any]] = {}
        for key, value in [*load_file(str(folder / "optimizer.safetensors")).items(), *saved["scalars"].items()]:
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        groups = [{**g, "betas": tuple(g["betas"])} for g in saved["param_groups"]]
        try:
            self.optimizer.torch.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise MorrisError(f"checkpoint {folder} does not match this LoRA config ({exc}); start afresh") from None

    def peak_memory_gb(self) -> float:
        return peak_memory_gb(self.device)

    def finish(self, adapter_dir: Path | None) -> None:
        self.world.close()
