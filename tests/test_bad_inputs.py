"""Bad input across every command: exit code 2, one line on stderr saying what was wrong, nothing half-written.

Each case runs `morris_mlx.cli.main` in-process. Its output path (and every shared input) is snapshotted
before and after: it must not exist afterwards, or be exactly as it was. Ctrl-C cases raise
KeyboardInterrupt from deep inside a stage (a library call, a file write) on the tiny model.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import write_chat_data

from morris_mlx.cli import main
from morris_mlx.models.random_model import ModelShape, build_random_model


def cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own exit for a bad flag value: the process exit code
        return int(exc.code or 0)


def snapshot(path: Path) -> dict[str, tuple[int, int]] | None:
    """Every file and folder below `path` with size and mtime; None when it does not exist."""
    if not path.exists():
        return None
    if path.is_file():
        stat = path.stat()
        return {".": (stat.st_size, stat.st_mtime_ns)}
    return {
        p.relative_to(path).as_posix(): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
    }


def leftovers(path: Path) -> list[str]:
    """Temp names a crash-safe writer might leave beside `path` (atomic_dir / atomic_path)."""
    if not path.parent.is_dir():
        return []
    return sorted(
        p.name
        for p in path.parent.iterdir()
        if p.name in (f"{path.name}.partial", f"{path.name}.old") or p.name.startswith(f".{path.name}.")
    )


def raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# shared inputs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tiny_model, tmp_path_factory) -> SimpleNamespace:
    """Models, data, raw files and adapters, good and bad, built once; no case may change them."""
    from morris_mlx.backends.mlx_backend import MLXBackend
    from morris_mlx.config import load_config

    root = tmp_path_factory.mktemp("world")
    w = SimpleNamespace(root=root, model=tiny_model)
    w.other = build_random_model(
        root / "other-shape", shape=ModelShape(hidden_size=32, num_attention_heads=2, num_key_value_heads=1)
    )

    w.badtype = root / "unknown-type"
    shutil.copytree(tiny_model, w.badtype)
    config = json.loads((w.badtype / "config.json").read_text())
    config.update(model_type="frobnicator", architectures=["FrobnicatorForCausalLM"])
    (w.badtype / "config.json").write_text(json.dumps(config))

    w.pickle = root / "pickle-model"
    w.pickle.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model / name, w.pickle)
    (w.pickle / "pytorch_model.bin").write_bytes(b"PK\x03\x04 a pickle would run code here")

    w.data = write_chat_data(root / "data")
    w.bad = {}
    for name, train in {
        "non-utf8": b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
        "malformed": b'{"messages": [\n',
        "empty": b"",
        "not-chat": b'{"text": "hello"}\n',
    }.items():
        w.bad[name] = write_chat_data(root / f"data-{name}")
        (w.bad[name] / "train.jsonl").write_bytes(train)

    raw = root / "raw"
    raw.mkdir()
    good = {"url": "https://x.test/a", "title": "T", "body": "word " * 200}
    w.raw = {
        "non-utf8": b'{"url": "u", "title": "caf\xe9", "body": "b"}\n',
        "empty": b"",
        "malformed": b'{"url": "u", "title": \n',
        "wrong-type": json.dumps({**good, "title": 5}).encode() + b"\n",
        "huge-line": json.dumps({**good, "body": "x" * 6_000_000}).encode() + b"\n",
    }
    for name, content in w.raw.items():
        (raw / f"{name}.jsonl").write_bytes(content)
    w.raw = {name: raw / f"{name}.jsonl" for name in w.raw}
    w.corpus_non_utf8 = root / "corpus-non-utf8"
    w.corpus_non_utf8.mkdir()
    (w.corpus_non_utf8 / "a.md").write_bytes(b"# Title\n\nCaf\xe9 society, in Latin-1.\n")
    w.corpus_empty = root / "corpus-empty"
    w.corpus_empty.mkdir()
    w.bench_without_settings = raw / "bench.json"
    w.bench_without_settings.write_text(json.dumps([{"measurement": "train:mlx", "value": 1.0}]))
    w.contrast_non_utf8 = raw / "contrast.txt"
    w.contrast_non_utf8.write_bytes(b"\xff\xfe not UTF-8 at all")

    w.toml = {}
    for name, text in {
        "unknown-key": b"[train]\nlearnin_rate = 1e-4\n",
        "wrong-type": b'[train]\nlearning_rate = "fast"\n',
        "unknown-section": b"[trian]\niters = 3\n",
        "bare-key": b"rank = 4\n",
        "invalid": b"[train\n",
        "non-utf8": b"[train]\n# caf\xe9\n",
        "wrong-generate": b"[generate]\ntemp = [1, 2]\n",
    }.items():
        w.toml[name] = raw / f"{name}.toml"
        w.toml[name].write_bytes(text)

    # A real adapter with checkpoints and provenance (the file sizes and hashes loaders check).
    cfg = load_config(
        overrides={
            "train.iters": 4,
            "train.save_every": 2,
            "train.steps_per_eval": 2,
            "train.grad_accumulation": 1,
            "lora.rank": 4,
        }
    )
    w.adapter = root / "trained"
    MLXBackend().train(cfg, tiny_model, w.data, w.adapter, quiet=True)
    w.truncated = root / "truncated"
    shutil.copytree(w.adapter, w.truncated)
    weights = (w.truncated / "adapters.safetensors").read_bytes()
    (w.truncated / "adapters.safetensors").write_bytes(weights[: len(weights) // 2])
    w.flipped = root / "flipped"
    shutil.copytree(w.adapter, w.flipped)
    flipped = bytearray((w.flipped / "adapters.safetensors").read_bytes())
    flipped[-16:] = bytes(b ^ 0xFF for b in flipped[-16:])  # same size, other numbers
    (w.flipped / "adapters.safetensors").write_bytes(bytes(flipped))
    w.pickle_adapter = root / "pickle-adapter"
    w.pickle_adapter.mkdir()
    (w.pickle_adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (w.pickle_adapter / "adapter_model.bin").write_bytes(b"PK\x03\x04")
    w.unfinished = root / "unfinished"
    shutil.copytree(w.adapter, w.unfinished)
    (w.unfinished / "morris_adapter.json").unlink()
    return w


@pytest.fixture()
def ctx(world, tmp_path) -> SimpleNamespace:
    """The shared inputs plus this case's own folder; `out` is where a case's output would go."""
    tmp = tmp_path / "case"
    tmp.mkdir()
    return SimpleNamespace(**vars(world), tmp=tmp, out=tmp / "out", adapters=tmp_path / "adapters")


# the cases ------------------------------------------------------------------------------------------


@dataclass
class Case:
    argv: Callable[[SimpleNamespace], list]  # built from the context; Paths become strings
    expect: str  # a piece of the one-line error, naming the problem or the fix
    setup: Callable[[SimpleNamespace, pytest.MonkeyPatch], None] | None = None
    check: Callable[[SimpleNamespace], None] | None = None  # extra checks after the run


def existing_output(c: SimpleNamespace, mp: pytest.MonkeyPatch) -> None:
    """An earlier, good output in the way: a failed run must leave it exactly as it was."""
    shutil.copytree(c.data, c.out)


def output_is_a_file(c: SimpleNamespace, mp: pytest.MonkeyPatch) -> None:
    """A file where the output's folder would be: refused before the work, not after it."""
    c.out.write_text("a file of the user's\n")


def registered(c: SimpleNamespace, mp: pytest.MonkeyPatch) -> None:
    shutil.copytree(c.adapter, c.adapters / "mine")


def interrupt(target: str) -> Callable[[SimpleNamespace, pytest.MonkeyPatch], None]:
    """Raise KeyboardInterrupt from `module:attribute` (a function deep inside a stage)."""
    module, _, name = target.partition(":")

    def setup(c: SimpleNamespace, mp: pytest.MonkeyPatch) -> None:
        mp.setattr(importlib.import_module(module), name, raise_interrupt)

    return setup


def interrupt_save(module: str, attribute: str, file_name: str):
    """Raise KeyboardInterrupt when `module.attribute` (a tensor writer) is asked to write `file_name`:
    the middle of a checkpoint, after the adapter and optimizer state are written."""

    def setup(c: SimpleNamespace, mp: pytest.MonkeyPatch) -> None:
        mod = importlib.import_module(module)
        real = getattr(mod, attribute)

        def save(*args, **kwargs):
            if any(str(a).endswith(file_name) for a in args if isinstance(a, (str, Path))):
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        mp.setattr(mod, attribute, save)

    return setup


def interrupted_training_left_nothing_finished(c: SimpleNamespace) -> None:
    from morris_mlx.training import checkpoints

    assert not (c.out / "morris_adapter.json").exists()
    assert checkpoints(c.out) == []  # the interrupted one was the first: no complete checkpoint
    assert not list(c.out.rglob("*.partial")) and not list(c.out.rglob(".*.tmp"))


def train(*extra: object, backend: str = "mlx") -> Callable[[SimpleNamespace], list]:
    def argv(c: SimpleNamespace) -> list:
        return [
            "train",
            "--backend",
            backend,
            "--model",
            c.model,
            "--data",
            c.data,
            "--adapter-path",
            c.out,
            *extra,
        ]

    return argv


def tiny_train(backend: str) -> Callable[[SimpleNamespace], list]:
    return lambda c: [
        *train(backend=backend)(c),
        *("--iters", "4", "--save-every", "2", "--steps-per-eval", "2", "--rank", "4"),
    ]


def pairs(*extra: object) -> Callable[[SimpleNamespace], list]:
    return lambda c: [
        "pairs", "--backend", "torch", "--model", c.model, "--data", c.data, "--out", c.out,
        "--max-tokens", "2", *extra,
    ]


def generate(*extra: object, backend: str = "mlx") -> Callable[[SimpleNamespace], list]:
    return lambda c: ["generate", "5G", "--backend", backend, "--model", c.model, "--max-tokens", "3", *extra]


def prepare(*extra: object) -> Callable[[SimpleNamespace], list]:
    return lambda c: ["prepare", "--out", c.out, "--model", c.model, *extra]


def evaluate(adapter: str = "adapter", model: str = "model", *extra: object) -> Callable:
    return lambda c: [
        "eval",
        *("--adapter-path", getattr(c, adapter), "--model", getattr(c, model), "--data", c.data),
        *("--out", c.out / "report", "--prompts", "1", "--max-tokens", "2", *extra),
    ]


def export(fmt: str, adapter: str = "adapter", model: str = "model", *extra: object) -> Callable:
    return lambda c: [
        "export",
        fmt,
        *("--adapter-path", getattr(c, adapter), "--model", getattr(c, model), "--out", c.out, *extra),
    ]


CASES: dict[str, Case] = {
    # prepare ------------------------------------------------------------------------------------------
    "prepare-missing-raw": Case(lambda c: [*prepare()(c), "--raw", c.tmp / "nope.jsonl"], "does not exist"),
    "prepare-non-utf8-raw": Case(lambda c: [*prepare()(c), "--raw", c.raw["non-utf8"]], "not UTF-8"),
    "prepare-empty-raw": Case(lambda c: [*prepare()(c), "--raw", c.raw["empty"]], "is empty"),
    "prepare-malformed-raw": Case(lambda c: [*prepare()(c), "--raw", c.raw["malformed"]], "not valid JSON"),
    "prepare-wrong-type-raw": Case(
        lambda c: [*prepare()(c), "--raw", c.raw["wrong-type"]], "'title' must be a string"
    ),
    "prepare-huge-line-raw": Case(
        lambda c: [*prepare()(c), "--raw", c.raw["huge-line"]], "left after cleaning"
    ),
    "prepare-non-utf8-corpus": Case(lambda c: [*prepare()(c), "--corpus", c.corpus_non_utf8], "UTF-8"),
    "prepare-empty-corpus": Case(lambda c: [*prepare()(c), "--corpus", c.corpus_empty], "holds no *.md"),
    "prepare-max-seq-length-0": Case(prepare("--max-seq-length", "0"), "data.max_seq_length"),
    "prepare-valid-fraction-2": Case(prepare("--valid-fraction", "2"), "data.valid_fraction"),
    "prepare-train-parts-over-limit": Case(prepare("--train-parts", "1024"), "data.train_parts"),
    "prepare-parts-per-article-without-parts": Case(prepare("--parts-per-article", "1"), "data.parts_per_article"),
    "prepare-seed-not-a-number": Case(prepare("--seed", "abc"), "invalid int value"),
    "prepare-config-unknown-key": Case(
        lambda c: [*prepare()(c), "-c", c.toml["unknown-key"]], "learnin_rate"
    ),
    "prepare-keeps-old-output": Case(
        lambda c: [*prepare()(c), "--raw", c.raw["malformed"]], "not valid JSON", setup=existing_output
    ),
    "prepare-ctrl-c-while-writing": Case(
        prepare(), "interrupted", setup=interrupt("morris_mlx.dataset.prepare:write_config")
    ),
    # train --------------------------------------------------------------------------------------------
    "train-missing-data": Case(
        lambda c: ["train", "--model", c.model, "--data", c.tmp / "nope", "--adapter-path", c.out],
        "run `morris prepare` first",
    ),
    "train-negative-lr": Case(train("--lr", "-1"), "train.learning_rate"),
    "train-rank-0": Case(train("--rank", "0"), "must be positive"),
    "train-dropout-1.5": Case(train("--dropout", "1.5"), "lora.dropout"),
    "train-weight-decay-shrinks-to-zero": Case(
        train("--lr", "1e-3", "--weight-decay", "1000"), "learning_rate x weight_decay under 1"
    ),
    "train-lm-head-mlx": Case(train("--target-modules", "lm_head"), "not a linear layer"),
    "train-lm-head-torch": Case(train("--target-modules", "lm_head", backend="torch"), "not a linear layer"),
    "train-max-seq-length-0": Case(train("--max-seq-length", "0"), "must be positive"),
    "train-lr-nan": Case(train("--lr", "nan"), "train.learning_rate"),
    "train-iters-and-epochs": Case(train("--iters", "3", "--epochs", "2"), "not allowed with"),
    "train-unknown-model-type-mlx": Case(
        lambda c: [*train()(c), "--model", c.badtype, "--iters", "2"], "frobnicator"
    ),
    "train-unknown-model-type-torch": Case(
        lambda c: [*train(backend="torch")(c), "--model", c.badtype, "--iters", "2"], "frobnicator"
    ),
    "train-pickle-only-model": Case(
        lambda c: [*train(backend="torch")(c), "--model", c.pickle], "pytorch_model.bin"
    ),
    "train-non-utf8-data": Case(lambda c: [*train()(c), "--data", c.bad["non-utf8"]], "not UTF-8"),
    "train-empty-split-mlx": Case(lambda c: [*train()(c), "--data", c.bad["empty"]], "train.jsonl is empty"),
    "train-malformed-data-torch": Case(
        lambda c: [*train(backend="torch")(c), "--data", c.bad["malformed"]], "not valid JSON"
    ),
    "train-not-chat-data": Case(lambda c: [*train()(c), "--data", c.bad["not-chat"]], "'messages'"),
    "train-prompt-fills-max-seq-length-mlx": Case(
        train("--max-seq-length", "16", "--iters", "2"), "nothing left to learn"
    ),
    "train-config-unknown-key": Case(lambda c: [*train()(c), "-c", c.toml["unknown-key"]], "learnin_rate"),
    "train-config-wrong-type": Case(lambda c: [*train()(c), "-c", c.toml["wrong-type"]], "must be a number"),
    "train-config-unknown-section": Case(
        lambda c: [*train()(c), "-c", c.toml["unknown-section"]], "unknown config section"
    ),
    "train-config-bare-key": Case(lambda c: [*train()(c), "-c", c.toml["bare-key"]], "rank"),
    "train-config-invalid-toml": Case(lambda c: [*train()(c), "-c", c.toml["invalid"]], "not valid TOML"),
    "train-config-non-utf8": Case(lambda c: [*train()(c), "-c", c.toml["non-utf8"]], "not UTF-8"),
    "train-config-missing": Case(lambda c: [*train()(c), "-c", c.tmp / "nope.toml"], "does not exist"),
    "train-resume-without-checkpoint": Case(train("--resume"), "no usable checkpoint"),
    "train-unknown-target-module": Case(train("--target-modules", "qkv_fused"), "not a linear layer"),
    "train-over-a-finished-adapter": Case(
        lambda c: [*train()(c), "--adapter-path", c.adapter], "already holds a finished adapter"
    ),
    "train-over-an-unfinished-run-mlx": Case(
        lambda c: [*train()(c), "--adapter-path", c.unfinished], "pass --resume"
    ),
    "train-ctrl-c-mid-checkpoint-mlx": Case(
        tiny_train("mlx"),
        "--resume",
        setup=interrupt_save("mlx.core", "save_safetensors", "rng.safetensors"),
        check=interrupted_training_left_nothing_finished,
    ),
    "train-ctrl-c-mid-checkpoint-torch": Case(
        tiny_train("torch"),
        "--resume",
        setup=interrupt_save("safetensors.torch", "save_file", "rng.safetensors"),
        check=interrupted_training_left_nothing_finished,
    ),
    "train-orpo-on-chat-data": Case(train("--objective", "orpo"), "not a preference pair; build them"),
    "train-dpo-beta-0": Case(train("--objective", "dpo", "--beta", "0"), "train.beta"),
    # pairs --------------------------------------------------------------------------------------------
    "pairs-missing-data": Case(
        lambda c: ["pairs", "--model", c.model, "--data", c.tmp / "nope", "--out", c.out], "does not exist"
    ),
    "pairs-malformed-data": Case(
        lambda c: [*pairs()(c), "--data", c.bad["malformed"]], "not valid JSON"
    ),
    "pairs-out-holds-the-data": Case(
        lambda c: [*pairs("--force")(c), "--out", c.data.parent], "overlaps the prepared data"
    ),
    "pairs-keeps-old-output": Case(pairs(), "already exists; pass --force", setup=existing_output),
    "pairs-ctrl-c-while-pairing": Case(
        pairs(), "interrupted", setup=interrupt("morris_mlx.pairs:pair_from_example")
    ),
    # generate -----------------------------------------------------------------------------------------
    "generate-negative-temp": Case(generate("--temp", "-1"), "generate.temp"),
    "generate-top-p-2": Case(generate("--top-p", "2"), "generate.top_p"),
    "generate-absurd-max-tokens": Case(generate("--max-tokens", str(10**12)), "generate.max_tokens"),
    "generate-max-tokens-0": Case(generate("--max-tokens", "0"), "must be positive"),
    "generate-empty-topic": Case(lambda c: ["generate", "  ", "--model", c.model], "topic is empty"),
    "generate-non-utf8-topic": Case(
        lambda c: [*generate()(c)[:1], "caf\udce9", *generate()(c)[2:]], "topic is not valid UTF-8"
    ),
    "generate-non-utf8-system-prompt": Case(
        generate("--system-prompt", "\udcff"), "system prompt is not valid UTF-8"
    ),
    "generate-missing-adapter": Case(
        lambda c: [*generate()(c), "--adapter-path", c.tmp / "nope"], "does not exist"
    ),
    "generate-adapter-for-another-base-mlx": Case(
        lambda c: [*generate()(c), "--model", c.other, "--adapter-path", c.adapter], "another base model"
    ),
    "generate-adapter-for-another-base-torch": Case(
        lambda c: [*generate(backend="torch")(c), "--model", c.other, "--adapter-path", c.adapter],
        "another base model",
    ),
    "generate-truncated-adapter-mlx": Case(
        lambda c: [*generate()(c), "--adapter-path", c.truncated], "adapters.safetensors is"
    ),
    "generate-flipped-bytes-adapter-torch": Case(
        lambda c: [*generate(backend="torch")(c), "--adapter-path", c.flipped], "recorded sha256"
    ),
    "generate-pickle-only-adapter": Case(
        lambda c: [*generate(backend="torch")(c), "--adapter-path", c.pickle_adapter],
        "adapter_model.bin, refused",
    ),
    "generate-pickle-only-model": Case(lambda c: [*generate()(c), "--model", c.pickle], "--allow-pickle"),
    "generate-unknown-model-type-torch": Case(
        lambda c: [*generate(backend="torch")(c), "--model", c.badtype], "frobnicator"
    ),
    "generate-config-wrong-type": Case(
        lambda c: [*generate()(c), "-c", c.toml["wrong-generate"]], "generate.temp"
    ),
    "generate-ctrl-c-while-decoding": Case(
        generate(), "interrupted", setup=interrupt("mlx_lm.generate:generate_step")
    ),
    # eval ---------------------------------------------------------------------------------------------
    "eval-missing-adapter": Case(lambda c: ["eval", "--adapter-path", c.tmp / "nope"], "does not exist"),
    "eval-missing-data": Case(lambda c: [*evaluate()(c), "--data", c.tmp / "nope"], "has no train.jsonl"),
    "eval-non-utf8-contrast": Case(lambda c: [*evaluate()(c), "--contrast", c.contrast_non_utf8], "UTF-8"),
    "eval-adapter-for-another-base": Case(evaluate("adapter", "other"), "another base model"),
    "eval-truncated-adapter": Case(evaluate("truncated"), "adapters.safetensors is"),
    "eval-pickle-only-model": Case(evaluate("adapter", "pickle"), "--allow-pickle"),
    "eval-out-below-a-file": Case(evaluate(), "is a file, not a folder", setup=output_is_a_file),
    "eval-ctrl-c-while-scoring": Case(
        evaluate(), "interrupted", setup=interrupt("morris_mlx.evaluation.perplexity:token_nll")
    ),
    # export / import ----------------------------------------------------------------------------------
    "export-missing-adapter": Case(
        lambda c: ["export", "peft", "--adapter-path", c.tmp / "nope", "--out", c.out], "does not exist"
    ),
    "export-path-traversal": Case(
        lambda c: ["export", "peft", "--adapter-path", "../../etc", "--out", c.out], "holds no adapter"
    ),
    "export-truncated-adapter": Case(export("peft", "truncated"), "adapters.safetensors is"),
    "export-flipped-bytes-adapter": Case(export("fused", "flipped"), "recorded sha256"),
    "export-adapter-for-another-base": Case(export("peft", "adapter", "other"), "another base model"),
    "export-gguf-another-base": Case(export("gguf", "adapter", "other"), "another base model"),
    "export-pickle-only-adapter": Case(export("peft", "pickle_adapter"), "adapter_model.bin, refused"),
    "export-bad-outtype": Case(export("gguf", "adapter", "model", "--outtype", "q4"), "invalid choice"),
    "export-keeps-old-output": Case(export("peft"), "--force", setup=existing_output),
    "export-ctrl-c-while-writing": Case(
        export("peft"), "interrupted", setup=interrupt("morris_mlx.adapter_format.mapping:write_json")
    ),
    "import-missing": Case(
        lambda c: ["import", "peft", "--peft-path", c.tmp / "nope", "--out", c.out], "does not exist"
    ),
    "import-an-mlx-adapter": Case(
        lambda c: ["import", "peft", "--peft-path", c.adapter, "--out", c.out], "already an MLX adapter"
    ),
    # adapters -----------------------------------------------------------------------------------------
    "adapters-rename-from-parent": Case(lambda c: ["adapters", "rename", "../mine", "x"], "path separator"),
    "adapters-rename-to-parent": Case(
        lambda c: ["adapters", "rename", "mine", "../escaped"], "path separator", setup=registered
    ),
    "adapters-rename-to-absolute": Case(
        lambda c: ["adapters", "rename", "mine", c.tmp / "escaped"], "path separator", setup=registered
    ),
    "adapters-rename-to-dot-dot": Case(
        lambda c: ["adapters", "rename", "mine", ".."], "path step", setup=registered
    ),
    "adapters-rename-to-reserved": Case(
        lambda c: ["adapters", "rename", "mine", "x.partial"], "reserved suffix", setup=registered
    ),
    "adapters-delete-outside": Case(lambda c: ["adapters", "delete", c.adapter, "--yes"], "path separator"),
    "adapters-show-unknown": Case(lambda c: ["adapters", "show", "ghost"], "no adapter named 'ghost'"),
    # convert ------------------------------------------------------------------------------------------
    "convert-missing-dir": Case(
        lambda c: ["convert", "--hf-path", c.tmp / "nope", "--mlx-path", c.out], "neither a local directory"
    ),
    "convert-not-a-hub-id": Case(
        lambda c: ["convert", "--hf-path", "not/a/hub/id", "--mlx-path", c.out], "neither a local directory"
    ),
    "convert-hub-unreachable": Case(
        lambda c: ["convert", "--hf-path", "org/model", "--mlx-path", c.out], "hub is unreachable"
    ),
    "convert-pickle-only": Case(
        lambda c: ["convert", "--hf-path", c.pickle, "--mlx-path", c.out], "pickle checkpoints"
    ),
    "convert-allow-pickle-not-a-checkpoint": Case(
        lambda c: ["convert", "--hf-path", c.pickle, "--mlx-path", c.out, "--allow-pickle"],
        "cannot read the pickle weights",
    ),
    "import-allow-pickle-not-a-checkpoint": Case(
        lambda c: ["import", "peft", "--peft-path", c.pickle_adapter, "--out", c.out, "--allow-pickle"],
        "refused even with --allow-pickle",
    ),
    "convert-unknown-model-type": Case(
        lambda c: ["convert", "--hf-path", c.badtype, "--mlx-path", c.out], "frobnicator"
    ),
    "convert-q-bits-3": Case(
        lambda c: ["convert", "--hf-path", c.model, "--mlx-path", c.out, "-q", "--q-bits", "3"],
        "invalid choice",
    ),
    "convert-keeps-foreign-folder": Case(
        lambda c: ["convert", "--hf-path", c.model, "--mlx-path", c.out],
        "choose another",
        setup=existing_output,
    ),
    "convert-ctrl-c-after-writing": Case(
        lambda c: ["convert", "--hf-path", c.model, "--mlx-path", c.out],
        "interrupted",
        setup=interrupt("morris_mlx.models.convert:fix_rope_config"),
    ),
    # the rest -----------------------------------------------------------------------------------------
    "bench-missing-json": Case(lambda c: ["bench", "--from-json", c.tmp / "nope.json"], "cannot read"),
    "bench-out-is-a-folder": Case(
        lambda c: ["bench", "--model", c.model, "--out", c.out], "is a folder", setup=existing_output
    ),
    "bench-markdown-below-a-file": Case(
        lambda c: ["bench", "--model", c.model, "--markdown", c.out / "table.md"],
        "is a file, not a folder",
        setup=output_is_a_file,
    ),
    "bench-records-without-settings": Case(
        lambda c: ["bench", "--from-json", c.bench_without_settings], "not a list of bench measurements"
    ),
    "convert-onto-its-source": Case(
        lambda c: ["convert", "--hf-path", c.model, "--mlx-path", c.model, "--force"], "overlaps --hf-path"
    ),
    "convert-onto-a-file": Case(
        lambda c: ["convert", "--hf-path", c.model, "--mlx-path", c.out], "is a file", setup=output_is_a_file
    ),
    "bench-bad-what": Case(lambda c: ["bench", "--what", "everything", "--model", c.model], "--what"),
    "scrape-bad-since": Case(lambda c: ["scrape", "--since", "someday", "--out", c.out], "YYYY-MM-DD"),
    "scrape-config-unknown-key": Case(
        lambda c: ["scrape", "-c", c.toml["unknown-key"], "--out", c.out], "learnin_rate"
    ),
    "review-missing-file": Case(lambda c: ["review", c.tmp / "nope.md"], "does not exist"),
    "review-non-utf8-article": Case(lambda c: ["review", c.raw["non-utf8"]], "not UTF-8"),
    "review-non-utf8-terms": Case(
        lambda c: ["review", "--terms", c.raw["non-utf8"], c.raw["non-utf8"]], "not UTF-8"
    ),
    "tui-missing-model": Case(lambda c: ["tui", "--model", c.tmp / "nope"], "does not exist"),
    "tui-unknown-adapter": Case(lambda c: ["tui", "--adapter-path", "ghost"], "no adapter named"),
    "tui-bad-flag": Case(lambda c: ["tui", "--colour", "red"], "unrecognized arguments"),
    "setup-default-bad-flag": Case(lambda c: ["setup-default", "--fast"], "unrecognized arguments"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(name, ctx, monkeypatch, capsys):
    case = CASES[name]
    if case.setup is not None:
        case.setup(ctx, monkeypatch)
    argv = [str(a) for a in case.argv(ctx)]
    command = argv[0]
    before, shared = snapshot(ctx.out), snapshot(ctx.root)

    assert cli(argv) == 2
    # Progress logs (stderr, like every CLI) may come first; the error itself is exactly one line, the last.
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    err = [line for line in lines if line.startswith("morris ") and ": error: " in line]
    assert len(err) == 1 and lines[-1] == err[0], lines
    assert err[0].startswith(f"morris {command}: error: "), err[0]
    assert case.expect in err[0], err[0]
    assert not any("Traceback" in line for line in lines)

    monkeypatch.undo()  # the checks below may load what the case patched
    if case.check is not None:
        case.check(ctx)
    else:
        assert snapshot(ctx.out) == before, "the output was written or changed"
    assert leftovers(ctx.out) == []
    assert snapshot(ctx.root) == shared, "a shared input was changed"


def test_the_matrix_covers_every_command():
    from morris_mlx.cli import COMMANDS

    covered = {name.split("-")[0] for name in CASES} | {"setup-default"}
    assert set(COMMANDS) - covered <= {"serve"}  # serve has its own tests
    assert len(CASES) >= 40


# backend failures at the CLI and TUI boundary -------------------------------------------------------

METAL_OOM = (
    "[metal::malloc] Attempting to allocate 68719476736 bytes which is greater than the maximum allowed "
    "buffer size of 28991029248 bytes."
)


def out_of_memory_errors() -> list[BaseException]:
    import torch

    return [
        MemoryError(),
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
        RuntimeError("MPS backend out of memory (MPS allocated: 17.2 GB, other allocations: 1 GB)"),
        RuntimeError(METAL_OOM),
        RuntimeError("[METAL] Command buffer execution failed: Insufficient Memory"),
    ]


@pytest.mark.parametrize("exc", out_of_memory_errors(), ids=lambda e: type(e).__name__ + ":" + str(e)[:20])
def test_out_of_memory_from_any_backend_is_one_line_with_a_hint(exc, tiny_model, monkeypatch, capsys):
    from morris_mlx.errors import explain

    assert explain(exc) is not None
    monkeypatch.setattr(importlib.import_module("mlx_lm.generate"), "generate_step", _raiser(exc))
    argv = ["generate", "5G", "--backend", "mlx", "--model", str(tiny_model), "--max-tokens", "3"]
    assert cli(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    err = [line for line in lines if ": error: " in line]
    assert len(err) == 1 and lines[-1] == err[0], lines
    assert err[0].startswith("morris generate: error: out of memory; try a smaller --batch-size")


def _raiser(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("shape mismatch: (2, 64) vs (64, 3)"), ValueError("out of memory"), KeyError("lm_head")],
)
def test_other_errors_are_not_mistaken_for_out_of_memory(exc):
    from morris_mlx.errors import explain

    assert explain(exc) is None


def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_the_log(tiny_model, monkeypatch, capsys):
    from morris_mlx.paths import morris_home

    monkeypatch.setattr(
        importlib.import_module("mlx_lm.generate"), "generate_step", _raiser(ValueError("boom\nsecond line"))
    )
    argv = ["generate", "5G", "--backend", "mlx", "--model", str(tiny_model), "--max-tokens", "3"]
    assert cli(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (
        "morris generate: error: ValueError: boom second line (run with --verbose for the traceback)"
    )
    assert "Traceback" not in captured.out + captured.err
    log = (morris_home() / "logs" / "morris.log").read_text()
    assert "Traceback (most recent call last)" in log and "ValueError: boom" in log

    assert cli(["--verbose", *argv]) == 2
    captured = capsys.readouterr()
    assert "Traceback (most recent call last)" in captured.out + captured.err
    assert captured.err.strip().splitlines()[-1] == "morris generate: error: ValueError: boom second line"


def test_the_tui_reports_a_backend_out_of_memory_and_stays_usable(tmp_path):
    from test_tui_write import SIZE, make_app, run, write
    from tui_fakes import FakeBackend, record_notifications, wait_until

    from morris_mlx.tui.session import describe_error

    assert describe_error(RuntimeError("x\ny"), "writing") == "writing failed: RuntimeError: x y"
    backend = FakeBackend(load_errors=[RuntimeError(METAL_OOM)])
    app = make_app(tmp_path, backend)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            screen = await write(pilot, "spectrum")
            await wait_until(pilot, lambda: any(s == "error" for _, s in notes), what="error notification")
            assert notes[-1][0].startswith("out of memory while loading")
            assert "smaller or quantized model" in notes[-1][0] and "--" not in notes[-1][0]  # no CLI flags
            await pilot.press("ctrl+g")  # the next try loads and writes
            await wait_until(pilot, lambda: screen.article is not None, what="recovery")

    run(scenario)
