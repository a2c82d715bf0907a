"""Every setting, as dataclasses with help text, and how they are resolved.

Precedence: command-line flags > the config file given with `-c FILE` (TOML, or YAML when PyYAML is
installed) > the defaults below (the recipe sweep's; `--preset original` restores the original Morris
Bot's). The resolved config is written next to the data, adapters and exports a command makes
(`morris_config.json`).

A config file has one table per section, for example:

    [lora]
    rank = 8
    [train]
    learning_rate = 2e-4
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError

CONFIG_FILENAME = "morris_config.json"
OBJECTIVES = ("sft", "dpo", "orpo")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class ModelConfig:
    base: str = _f(
        "HuggingFaceH4/zephyr-7b-beta",
        "Base model: hub id or local Hugging Face/MLX directory. Used when present locally; "
        "otherwise commands fall back to the embedded default model.",
    )
    path: str | None = _f(None, "Explicit model directory (--model); overrides `base`.")
    backend: str = _f("auto", "auto | mlx | torch. auto picks the fastest available here.")
    trust_remote_code: bool = _f(False, "Allow model code from the model directory (off: safer).")


@dataclass
class LoraConfig:
    rank: int = _f(32, "LoRA rank r (the first recipe sweep's pick on the bundled pastiche; the original used 16).")
    alpha: float = _f(
        64.0, "LoRA alpha; the update is scaled by alpha / rank (mlx-lm `scale`), 2.0 as in the original."
    )
    # 0, not 0.1: no different on any measure of the recipe sweep, and drawing the masks took about a sixth
    # of a torch training step on a CPU (docs/voice-yardstick.md, "Dropout").
    dropout: float = _f(0.0, "Dropout on the LoRA input.")
    target_modules: list[str] = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Linear layers to adapt: attention and MLP (the first recipe sweep's pick); "
        "--preset original keeps q/k/v/o only.",
    )
    num_layers: int = _f(-1, "Adapt the last N transformer blocks; -1 means all of them.")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass
class TrainConfig:
    preset: str = _f(
        "auto",
        "auto: a schedule sized from the data (docs/recipe.md judges it against other recipes); "
        "original: the original Morris Bot's settings (lr 1e-4, 2 epochs, accumulation 8, constant lr).",
    )
    objective: str = _f(
        "sft",
        "sft: learn the writer's articles (chat JSONL from `morris prepare`); dpo or orpo: a preference "
        "stage on pairs from `morris pairs` (the writer's article chosen over the base model's).",
    )
    beta: float = _f(
        0.1,
        "Preference strength: DPO's beta (how far from the base model the adapter may move), ORPO's lambda "
        "(weight of the odds-ratio term beside the chosen articles' loss).",
    )
    learning_rate: float = _f(2e-4, "Peak learning rate (Adam).")
    weight_decay: float = _f(
        0.0,
        "Decoupled weight decay on the LoRA weights (AdamW): each update multiplies them by "
        "1 - learning_rate x weight_decay, pulling the adapter toward the base model.",
    )
    neftune_alpha: float = _f(
        0.0,
        "NEFTune: uniform noise of scale alpha / sqrt(tokens x hidden) on the input embeddings while "
        "training, against memorising a small corpus (0: off; 5 is the paper's usual value).",
    )
    epochs: float = _f(3.0, "Passes over the training set; turned into iterations.")
    iters: int | None = _f(None, "Iterations (micro-batches); overrides epochs and min_updates when set.")
    min_updates: int = _f(60, "Floor on optimizer updates, so a small corpus still gets enough steps.")
    batch_size: int = _f(1, "Examples per micro-batch.")
    grad_accumulation: int | None = _f(
        None, "Micro-batches per optimizer update; empty: 1 for a small corpus, 8 from 400 batches up."
    )
    max_seq_length: int = _f(2048, "Longest training sequence in tokens.")
    mask_prompt: bool = _f(True, "Compute the loss on the assistant turn only.")
    warmup_steps: int | None = _f(None, "Linear learning-rate warm-up in updates; empty: 10% of the run.")
    lr_schedule: str = _f("cosine", "constant | cosine (decay to 10% over the run).")
    steps_per_report: int = _f(1, "Iterations between training-loss reports.")
    steps_per_eval: int | None = _f(None, "Iterations between validations; empty: about 8 per run.")
    val_batches: int = _f(-1, "Validation batches per measurement; -1 uses the whole split.")
    save_every: int | None = _f(None, "Iterations between resumable checkpoints; empty: at each validation.")
    # 2, not 3: the third validation past the best never held a better one in the runs whose validation
    # losses were kept, and it cost a sixth of make demo's training steps (docs/voice-yardstick.md, "Patience").
    patience: int = _f(2, "Stop after this many validations without improvement (0: never stop early).")
    val_smoothing: float = _f(
        0.0,
        "Judge early stopping and the kept adapter by a moving average of validation losses, this weight on "
        "the past (0: each validation alone; 0.5 halves the noise of a small validation split).",
    )
    grad_checkpoint: bool = _f(False, "Recompute activations in the backward pass to save memory.")
    seed: int = _f(0, "Seed for data order, LoRA initialisation and dropout.")


# Presets fill the keys a user did not set (flags and -c FILE still win).
PRESETS: dict[str, dict[str, Any]] = {
    "auto": {},
    "original": {
        "train.learning_rate": 1e-4,
        "train.epochs": 2.0,
        "train.min_updates": 0,
        "train.batch_size": 1,
        "train.grad_accumulation": 8,
        "train.warmup_steps": 0,
        "train.lr_schedule": "constant",
        "train.patience": 0,
        "lora.rank": 16,
        "lora.alpha": 32.0,
        "lora.dropout": 0.1,
        "lora.target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "lora.num_layers": -1,
    },
}


@dataclass
class GenerateConfig:
    system_prompt: str | None = _f(
        None, "System prompt; empty means the prompt of the voice the adapter was trained on (bundled/voices/NAME/system.txt)."
    )
    max_tokens: int = _f(400, "Most tokens to generate.")
    temp: float = _f(0.7, "Sampling temperature; 0 is greedy.")
    top_p: float = _f(0.9, "Nucleus sampling threshold (1.0 disables).")
    top_k: int = _f(0, "Keep only the k most likely tokens (0 disables).")
    min_p: float = _f(0.0, "Drop tokens below min_p times the top probability (0 disables).")
    repetition_penalty: float = _f(1.1, "Penalty on recently generated tokens (1.0 disables).")
    seed: int | None = _f(None, "Seed for reproducible sampling.")
    time_limit: float | None = _f(None, "Stop after this many seconds and keep the partial text.")
    fuse: bool = _f(True, "Fuse the adapter into the weights for speed (false keeps it apart).")


@dataclass
class DataConfig:
    raw: list[str] = _f([], "Raw article JSONL files; empty means the bundled corpus of `voice`.")
    voice: str = _f(
        "morris",
        "Bundled writer voice: its system prompt, and its corpus when no raw files are given "
        "(morris: gloomy British columnist; ledger: dry, numbers-first American columnist).",
    )
    out: str = _f("data/processed", "Folder for train/valid/test.jsonl and stats.json.")
    seed: int = _f(42, "Seed for the split.")
    fold: int = _f(0, "Cross-validation fold: fold k holds out the k-th block of test articles (0: the usual split).")
    valid_fraction: float = _f(0.1, "Share of articles for validation.")
    test_fraction: float = _f(0.1, "Share of articles held out for evaluation.")
    max_seq_length: int = _f(1024, "Longest example in tokens; longer articles are cut at paragraphs.")
    train_parts: int = _f(
        0,
        "Also train on each training article cut at paragraphs into parts of at most this many tokens, "
        "beside the whole article (0: off); validation and test stay whole.",
    )
    parts_per_article: int = _f(
        0,
        "With train_parts: the most parts of each training article kept beside it, picked at random "
        "with the seed, so the parts do not outnumber the whole articles (0: all of them).",
    )
    open_parts: bool = _f(
        False,
        "Train the parts of a cut article, all but its last, without the end-of-reply token, so the model "
        "learns to stop where articles end, not where a cut fell.",
    )
    min_words: int = _f(120, "Articles shorter than this are dropped.")
    include_general: bool = _f(True, "Keep non-telecom examples so the voice carries over.")


@dataclass
class ScrapeConfig:
    profile: str = _f("lightreading", "Site profile (a bundled name: lightreading, generic) or a path to one.")
    author_url: str | None = _f(None, "Author or listing page on any site; locks the crawl to its host.")
    max_articles: int = _f(200, "Stop after this many articles.")
    max_pages: int = _f(2000, "Most pages fetched in one run.")
    max_bytes: int = _f(5_000_000, "Largest page accepted, in bytes.")
    since: str | None = _f(None, "Only articles published on or after this date (YYYY-MM-DD).")
    delay: float = _f(1.5, "Seconds between requests.")
    timeout: float = _f(20.0, "Seconds before a request times out.")
    retries: int = _f(4, "Retries on 429, 5xx and timeouts, with backoff.")
    out: str = _f("data/raw/articles.jsonl", "Output JSONL file.")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    data: DataConfig = field(default_factory=DataConfig)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return `value` coerced to `annotation`, or raise MorrisError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(key, value, inner[0])
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise MorrisError(f"config key {key!r} must be a list, got {value!r}")
        return [_check_type(f"{key}[]", v, item) for v in value]
    if annotation is bool:
        if not isinstance(value, bool):
            raise MorrisError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MorrisError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MorrisError(f"config key {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):  # inf passes every "positive" check, then overflows mid-run
            raise MorrisError(f"config key {key!r} must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise MorrisError(f"config key {key!r} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {annotation!r} for {key}")


def _set(cfg: Config, key: str, value: Any) -> None:
    section_name, _, name = key.partition(".")
    section = getattr(cfg, section_name, None)
    if section is None or not dataclasses.is_dataclass(section) or not name:
        sections = ", ".join(f.name for f in dataclasses.fields(Config))
        raise MorrisError(f"unknown config section in {key!r}; sections are: {sections}")
    hints = typing.get_type_hints(type(section))
    if name not in hints:
        raise MorrisError(f"unknown config key {key!r}; known keys in [{section_name}]: {', '.join(hints)}")
    setattr(section, name, _check_type(key, value, hints[name]))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML (or YAML) config file into nested dicts; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MorrisError(f"config file {path} does not exist; pass an existing TOML file to -c")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MorrisError(f"config file {path} is not UTF-8 text") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise MorrisError("YAML config needs PyYAML: pip install pyyaml (or use TOML)") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise MorrisError(f"config file {path} is not valid YAML: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MorrisError(f"config file {path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise MorrisError(f"config file {path} must hold tables such as [train]")
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the file at `path`, then `overrides` ({"section.key": value}, None skipped).

    A training preset (train.preset) fills only the keys neither the file nor the flags set.
    """
    explicit: dict[str, Any] = {}
    if path is not None:
        for section, table in read_config_file(path).items():
            if not isinstance(table, dict):
                _set(Config(), str(section), table)  # raises: a bare key outside any table
            for name, value in table.items():
                explicit[f"{section}.{name}"] = value
    explicit.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = Config()
    preset = explicit.get("train.preset", cfg.train.preset)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise MorrisError(f"config key 'train.preset' must be one of {', '.join(PRESETS)}, got {preset!r}")
    for key, value in {**PRESETS[preset], **explicit}.items():
        _set(cfg, key, value)
    validate(cfg)
    return cfg


def _none_or_positive(value: int | None) -> bool:
    return value is None or value > 0


def validate(cfg: Config) -> None:
    """Range checks that a type check cannot make; each error names its key."""
    checks = [
        ("model.backend", cfg.model.backend in ("auto", "mlx", "torch"), "one of auto, mlx, torch"),
        ("lora.rank", cfg.lora.rank > 0, "a positive integer"),
        ("lora.alpha", cfg.lora.alpha > 0, "positive"),
        ("lora.dropout", 0.0 <= cfg.lora.dropout < 1.0, "in [0, 1)"),
        ("lora.target_modules", bool(cfg.lora.target_modules), "a non-empty list"),
        ("lora.num_layers", cfg.lora.num_layers == -1 or cfg.lora.num_layers > 0, "-1 or positive"),
        ("train.learning_rate", 0 < cfg.train.learning_rate < 1, "in (0, 1)"),
        ("train.epochs", cfg.train.epochs > 0, "positive"),
        ("train.iters", cfg.train.iters is None or cfg.train.iters > 0, "positive"),
        ("train.batch_size", cfg.train.batch_size > 0, "a positive integer"),
        ("train.grad_accumulation", _none_or_positive(cfg.train.grad_accumulation), "a positive integer"),
        ("train.min_updates", cfg.train.min_updates >= 0, "zero or more"),
        ("train.patience", cfg.train.patience >= 0, "zero or more"),
        ("train.val_smoothing", 0 <= cfg.train.val_smoothing < 1, "in [0, 1)"),
        ("train.max_seq_length", cfg.train.max_seq_length >= 16, "at least 16"),
        ("train.warmup_steps", cfg.train.warmup_steps is None or cfg.train.warmup_steps >= 0, "zero or more"),
        ("train.lr_schedule", cfg.train.lr_schedule in ("constant", "cosine"), "constant or cosine"),
        ("train.steps_per_report", cfg.train.steps_per_report > 0, "positive"),
        ("train.steps_per_eval", _none_or_positive(cfg.train.steps_per_eval), "positive"),
        ("train.save_every", _none_or_positive(cfg.train.save_every), "positive"),
        ("train.val_batches", cfg.train.val_batches == -1 or cfg.train.val_batches > 0, "-1 or positive"),
        ("generate.max_tokens", 0 < cfg.generate.max_tokens <= 1_000_000, "between 1 and 1,000,000"),
        ("generate.temp", 0 <= cfg.generate.temp <= 10, "between 0 and 10"),
        ("generate.top_p", 0 < cfg.generate.top_p <= 1, "in (0, 1]"),
        ("generate.top_k", cfg.generate.top_k >= 0, "zero or more"),
        ("generate.min_p", 0 <= cfg.generate.min_p < 1, "in [0, 1)"),
        ("generate.repetition_penalty", 0 < cfg.generate.repetition_penalty <= 10, "in (0, 10]"),
        ("generate.time_limit", cfg.generate.time_limit is None or cfg.generate.time_limit > 0, "positive"),
        ("data.valid_fraction", 0 < cfg.data.valid_fraction < 0.5, "in (0, 0.5)"),
        ("data.test_fraction", 0 < cfg.data.test_fraction < 0.5, "in (0, 0.5)"),
        ("data.max_seq_length", cfg.data.max_seq_length >= 64, "at least 64"),
        (
            "data.train_parts",
            cfg.data.train_parts == 0 or 64 <= cfg.data.train_parts < cfg.data.max_seq_length,
            "0 (off), or at least 64 and under data.max_seq_length",
        ),
        (
            "data.parts_per_article",
            cfg.data.parts_per_article == 0 or (cfg.data.parts_per_article > 0 and cfg.data.train_parts > 0),
            "0 (all), or positive with data.train_parts set",
        ),
        ("data.min_words", cfg.data.min_words >= 0, "zero or more"),
        ("data.fold", cfg.data.fold >= 0, "zero or more"),
        # Decoupled decay multiplies the weights by (1 - lr x wd) each update: that is what must stay
        # under 1. A cap on wd alone refused every value large enough to matter at LoRA's learning rates.
        (
            "train.weight_decay",
            0 <= cfg.train.weight_decay and cfg.train.learning_rate * cfg.train.weight_decay < 1,
            "zero or more, with learning_rate x weight_decay under 1",
        ),
        ("train.neftune_alpha", cfg.train.neftune_alpha >= 0, "zero or more"),
        ("train.objective", cfg.train.objective in OBJECTIVES, "one of " + ", ".join(OBJECTIVES)),
        ("train.beta", 0 < cfg.train.beta < math.inf, "a positive number"),
        ("scrape.max_articles", cfg.scrape.max_articles > 0, "positive"),
        ("scrape.max_pages", cfg.scrape.max_pages > 0, "positive"),
        ("scrape.max_bytes", cfg.scrape.max_bytes > 0, "positive"),
        ("scrape.delay", cfg.scrape.delay >= 0, "zero or more"),
        ("scrape.timeout", cfg.scrape.timeout > 0, "positive"),
        ("scrape.retries", cfg.scrape.retries >= 0, "zero or more"),
    ]
    for key, ok, what in checks:
        if not ok:
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            raise MorrisError(f"config key {key!r} must be {what}, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from `to_dict` output (e.g. the copy stored beside an artifact)."""
    cfg = Config()
    for section, table in data.items():
        for name, value in table.items():
            _set(cfg, f"{section}.{name}", value)
    return cfg


def write_config(
    cfg: Config, directory: str | Path, extra: dict[str, Any] | None = None, filename: str = CONFIG_FILENAME
) -> Path:
    """Store the resolved config beside an artifact, atomically (an artifact that is one file of a shared
    folder names its own `filename`)."""
    from morris_mlx.atomic import write_json

    path = Path(directory) / filename
    write_json(path, {**to_dict(cfg), **({"_meta": extra} if extra else {})})
    return path


def field_help(section_cls: type, name: str) -> str:
    """The help text of a config field, for argparse."""
    for f in dataclasses.fields(section_cls):
        if f.name == name:
            return f.metadata.get("help", "")
    raise KeyError(name)
