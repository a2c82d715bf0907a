"""Security: no model or tokenizer code runs unless asked (trust_remote_code), no pickle is ever loaded
(safetensors only), adapter names cannot leave their folder, and tokens never reach a log."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from morris_mlx.cli import main
from morris_mlx.config import load_config
from morris_mlx.errors import MorrisError

SECRET = "secret-123"


def cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


# trust_remote_code ----------------------------------------------------------------------------------------


def remote_code_model(tiny_model: Path, root: Path, marker: Path) -> Path:
    """The tiny model, asking (config and tokenizer) for code of its own that leaves `marker` when run."""
    model = root / "custom-code-model"
    shutil.copytree(tiny_model, model)
    (model / "custom_code.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig, PreTrainedTokenizerFast\n"
        "class CustomConfig(PretrainedConfig):\n    model_type = 'custom'\n"
        "class CustomTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type="custom",
        auto_map={"AutoConfig": "custom_code.CustomConfig", "AutoModelForCausalLM": "custom_code.Custom"},
    )
    (model / "config.json").write_text(json.dumps(config))
    tokenizer = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer.update(auto_map={"AutoTokenizer": [None, "custom_code.CustomTokenizer"]})
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    return model


def test_remote_code_is_off_unless_asked(tiny_model, tmp_path, capsys):
    assert load_config().model.trust_remote_code is False
    marker = tmp_path / "remote-code-ran"
    model = remote_code_model(tiny_model, tmp_path, marker)
    data = tmp_path / "data"
    from conftest import write_chat_data

    write_chat_data(data)
    runs = [
        ["generate", "5G", "--backend", "torch", "--model", str(model), "--max-tokens", "2"],
        ["generate", "5G", "--backend", "mlx", "--model", str(model), "--max-tokens", "2"],
        [
            "train",
            "--backend",
            "torch",
            "--model",
            str(model),
            "--data",
            str(data),
            "--iters",
            "2",
            "--adapter-path",
            str(tmp_path / "a1"),
        ],
        [
            "train",
            "--backend",
            "mlx",
            "--model",
            str(model),
            "--data",
            str(data),
            "--iters",
            "2",
            "--adapter-path",
            str(tmp_path / "a2"),
        ],
        ["prepare", "--model", str(model), "--out", str(tmp_path / "p")],
    ]
    for argv in runs:
        cli(argv)  # refused or run with the built-in classes; either way the model's own code stays shut
        assert not marker.exists(), argv

    # The same folder with trust_remote_code asked for does run it: the check above can fail.
    capsys.readouterr()
    cli(["prepare", "--model", str(model), "--out", str(tmp_path / "p2"), "--trust-remote-code"])
    assert marker.exists()


# safetensors only -------------------------------------------------------------------------------------------


class Payload:
    """A pickle that creates a folder when loaded: what a malicious .bin checkpoint can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickles_are_never_loaded_and_pickle_only_folders_are_refused(tiny_model, tmp_path, capsys):
    import mlx.core as mx  # noqa: F401 - an MLX adapter is made below

    from morris_mlx.bench.measure import make_random_adapter

    marker = tmp_path / "pickle-ran"
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.is_dir()  # the payload works when something does unpickle it

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    adapter = make_random_adapter(tiny_model, tmp_path / "mlx-adapter", rank=4)
    peft = tmp_path / "peft-adapter"
    assert (
        main(
            ["export", "peft", "--adapter-path", str(adapter), "--model", str(tiny_model), "--out", str(peft)]
        )
        == 0
    )
    (peft / "adapter_model.bin").write_bytes(pickle.dumps(Payload(marker)))
    (adapter / "adapters.npz").write_bytes(pickle.dumps(Payload(marker)))
    for backend in ("torch", "mlx"):
        for adapter_dir in (peft, adapter):
            argv = [
                "generate",
                "5G",
                "--backend",
                backend,
                "--model",
                str(model),
                "--max-tokens",
                "2",
                "--adapter-path",
                str(adapter_dir),
            ]
            assert cli(argv) == 0, capsys.readouterr().err
            assert not marker.exists(), argv

    (model / "model.safetensors").unlink()
    capsys.readouterr()
    assert cli(["generate", "5G", "--backend", "torch", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "pytorch_model.bin" in err and "--allow-pickle" in err
    (peft / "adapter_model.safetensors").unlink()
    assert (
        cli(["generate", "5G", "--backend", "torch", "--model", str(tiny_model), "--adapter-path", str(peft)])
        == 2
    )
    assert "adapter_model.bin, refused" in capsys.readouterr().err
    assert not marker.exists()

    # Even with --allow-pickle, only tensors are unpickled (weights_only): the payload is refused.
    argv = ["convert", "--hf-path", str(model), "--mlx-path", str(tmp_path / "out"), "--allow-pickle"]
    assert cli(argv) == 2
    assert "cannot read the pickle weights" in capsys.readouterr().err
    argv = ["import", "peft", "--peft-path", str(peft), "--out", str(tmp_path / "imp"), "--allow-pickle"]
    assert cli([*argv, "--model", str(tiny_model)]) == 2
    assert "refused even with --allow-pickle" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out").exists() and not (tmp_path / "imp").exists()


def test_allow_pickle_resaves_genuine_checkpoints_as_safetensors(tiny_model, tmp_path, capsys):
    """What an old pytorch_model.bin / adapter_model.bin holds converts to what its safetensors twin does."""
    import torch
    from export_fixtures import mlx_logits
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from morris_mlx.bench.measure import make_random_adapter

    legacy = tmp_path / "legacy"
    # transformers 5 writes safetensors only, so the legacy file is made the way older versions did.
    legacy.mkdir()
    torch.save(
        AutoModelForCausalLM.from_pretrained(str(tiny_model)).state_dict(), legacy / "pytorch_model.bin"
    )
    for item in tiny_model.iterdir():
        if item.suffix != ".safetensors" and item.is_file():
            shutil.copy2(item, legacy / item.name)
    assert (legacy / "pytorch_model.bin").is_file() and not list(legacy.glob("*.safetensors"))
    argv = ["convert", "--hf-path", str(legacy), "--dtype", "float32"]
    assert cli([*argv, "--mlx-path", str(tmp_path / "refused")]) == 2
    assert "--allow-pickle" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert cli([*argv, "--mlx-path", str(tmp_path / "a"), "--allow-pickle"]) == 0
    assert (
        cli(
            ["convert", "--hf-path", str(tiny_model), "--dtype", "float32", "--mlx-path", str(tmp_path / "b")]
        )
        == 0
    )
    assert json.loads((tmp_path / "a" / "morris_model.json").read_text())["resaved_from_pickle"] is True
    assert (mlx_logits(tmp_path / "a") == mlx_logits(tmp_path / "b")).all()

    adapter = make_random_adapter(tiny_model, tmp_path / "mlx-adapter", rank=4)
    peft = tmp_path / "peft"
    assert (
        cli(
            ["export", "peft", "--adapter-path", str(adapter), "--model", str(tiny_model), "--out", str(peft)]
        )
        == 0
    )
    torch.save(load_file(str(peft / "adapter_model.safetensors")), str(peft / "adapter_model.bin"))
    reference = tmp_path / "from-safetensors"
    assert (
        cli(["import", "peft", "--peft-path", str(peft), "--model", str(tiny_model), "--out", str(reference)])
        == 0
    )
    (peft / "adapter_model.safetensors").unlink()
    imported = tmp_path / "from-pickle"
    argv = ["import", "peft", "--peft-path", str(peft), "--model", str(tiny_model), "--out", str(imported)]
    assert cli(argv) == 2
    assert "--allow-pickle" in capsys.readouterr().err and not imported.exists()
    assert cli([*argv, "--allow-pickle"]) == 0
    a, b = (
        load_file(str(imported / "adapters.safetensors")),
        load_file(str(reference / "adapters.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# names -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../x", "..", ".", "/etc/passwd", "a/b", "a\\b", ".hidden", "x\0y", "x\ny", " x", "", "x.partial"],
)
def test_adapter_names_cannot_leave_their_folder(name, tmp_path, monkeypatch):
    from morris_mlx import registry

    root = tmp_path / "adapters"
    monkeypatch.setenv("MORRIS_ADAPTERS", str(root))
    (root / "mine").mkdir(parents=True)
    (root / "mine" / "adapters.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(MorrisError):
        registry.check_name(name)
    with pytest.raises(MorrisError):
        registry.rename_adapter("mine", name)
    assert sorted(p.name for p in root.iterdir()) == ["mine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapters"]
    with pytest.raises(MorrisError):
        registry.delete_adapter(name)


# secrets -------------------------------------------------------------------------------------------------------


def assert_no_secret(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_convert_never_logs_the_hub_token(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    assert (
        cli(["--verbose", "convert", "--hf-path", "some-org/some-model", "--mlx-path", str(tmp_path / "a")])
        == 2
    )
    out, err = capsys.readouterr()
    assert "hub is unreachable" in err
    assert cli(["--verbose", "convert", "--hf-path", str(tiny_model), "--mlx-path", str(tmp_path / "b")]) == 0
    out2, err2 = capsys.readouterr()
    assert (tmp_path / "morris_home" / "logs" / "morris.log").is_file()
    assert_no_secret(tmp_path, out, err, out2, err2)


def test_the_scraper_never_logs_tokens_or_credentials(tmp_path, monkeypatch, capsys):
    from test_scrape_support import article_html, listing_html, serve_site, write_profile

    monkeypatch.setenv("HF_TOKEN", SECRET)
    with serve_site() as site:
        site.add("/news/first-story-here", article_html("first-story-here"))
        leaky = f"http://user:{SECRET}@{site.host}/news/second-story-here"
        site.add("/news/second-story-here", article_html("second-story-here"))
        site.add("/author/iain-morris", listing_html(["/news/first-story-here", leaky]))
        profile = write_profile(tmp_path, site)
        argv = [
            "--verbose",
            "scrape",
            "--profile",
            str(profile),
            "--out",
            str(tmp_path / "raw" / "a.jsonl"),
            "--delay",
            "0",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
        assert cli(argv) in (0, 1)
        headers = [h for _, h in site.requests]
    out, err = capsys.readouterr()
    collected = (tmp_path / "raw" / "a.jsonl").read_text()
    assert "first-story-here" in collected and "second-story-here" in collected  # fetched without them
    assert not any("Authorization" in h for h in headers)
    assert_no_secret(tmp_path, out, err)
