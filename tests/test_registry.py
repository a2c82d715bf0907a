"""The adapter registry and `morris adapters`: listing, names, rename, delete."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from morris_mlx import registry
from morris_mlx.cli import main as cli
from morris_mlx.errors import MorrisError
from morris_mlx.paths import adapters_dir, morris_home


def fake_adapter(
    root: Path, name: str, fmt: str = "mlx", provenance: dict | None = None, metrics: list | None = None
) -> Path:
    """An adapter directory with placeholder weights: the registry reads names and JSON, never tensors."""
    path = root / name
    path.mkdir(parents=True)
    if fmt == "mlx":
        (path / "adapters.safetensors").write_bytes(b"\0" * 16)
        config = {
            "fine_tune_type": "lora",
            "num_layers": -1,
            "model": "/models/base",
            "lora_parameters": {"rank": 8, "scale": 2.0, "dropout": 0.0, "keys": ["self_attn.q_proj"]},
        }
    else:
        (path / "adapter_model.safetensors").write_bytes(b"\0" * 16)
        config = {
            "peft_type": "LORA",
            "r": 4,
            "lora_alpha": 8,
            "target_modules": ["q_proj"],
            "base_model_name_or_path": "org/base",
        }
    (path / "adapter_config.json").write_text(json.dumps(config))
    if provenance is not None:
        (path / "morris_adapter.json").write_text(json.dumps(provenance))
    if metrics is not None:
        (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return path


def test_roots_are_the_adapters_folder_then_morris_home():
    assert registry.adapter_roots() == [adapters_dir(), morris_home() / "adapters"]


def test_list_finds_both_formats_in_both_roots_newest_first():
    fake_adapter(adapters_dir(), "old", provenance={"created": "2026-01-01T00:00:00+00:00", "backend": "mlx"})
    fake_adapter(
        morris_home() / "adapters", "new", fmt="peft", provenance={"created": "2026-06-01T00:00:00+00:00"}
    )
    (adapters_dir() / "not-an-adapter").mkdir()
    fake_adapter(adapters_dir(), "half.partial")
    infos = registry.list_adapters()
    assert [(i.name, i.format) for i in infos] == [("new", "peft"), ("old", "mlx")]
    assert infos[1].backend == "mlx" and infos[1].config["lora_parameters"]["rank"] == 8


def test_adapter_without_provenance_is_dated_by_its_weights():
    path = fake_adapter(adapters_dir(), "plain")
    stamp = time.time() - 3600
    os.utime(path / "adapters.safetensors", (stamp, stamp))
    info = registry.get_adapter("plain")
    assert info.provenance == {} and info.backend is None
    assert info.created is not None and info.created.endswith("+00:00")
    assert info.base_model == "/models/base"  # from mlx-lm's own "model" key


def test_metrics_come_from_provenance_else_from_the_metrics_log():
    fake_adapter(adapters_dir(), "done", provenance={"metrics": {"best_val_loss": 1.5, "steps": 40}})
    fake_adapter(
        adapters_dir(),
        "running",
        metrics=[
            {"kind": "train", "step": 8, "loss": 3.0},
            {"kind": "val", "step": 8, "val_loss": 2.5},
            {"kind": "train", "step": 16, "loss": 2.0},
            {"kind": "val", "step": 16, "val_loss": 2.7},
        ],
    )
    assert registry.get_adapter("done").metrics == {"best_val_loss": 1.5, "steps": 40}
    assert registry.get_adapter("running").metrics == {
        "final_train_loss": 2.0,
        "best_val_loss": 2.5,
        "steps": 16,
    }


def test_base_model_prefers_provenance_path():
    prov = {"base_model": {"path": "/m/SmolLM2", "name": "SmolLM2", "fingerprint": "x"}}
    fake_adapter(adapters_dir(), "a", provenance=prov)
    fake_adapter(adapters_dir(), "p", fmt="peft")
    assert registry.get_adapter("a").base_model == "/m/SmolLM2"
    assert registry.get_adapter("p").base_model == "org/base"


def test_get_adapter_by_path_and_unknown_names(tmp_path):
    outside = fake_adapter(tmp_path / "elsewhere", "mine", fmt="peft")
    assert registry.get_adapter(str(outside)).path == outside
    with pytest.raises(MorrisError, match="no adapter named 'ghost'"):
        registry.get_adapter("ghost")
    with pytest.raises(MorrisError, match="does not exist"):
        registry.get_adapter(str(tmp_path / "nope" / "x"))
    with pytest.raises(MorrisError, match="holds no adapter"):
        registry.get_adapter(str(tmp_path))


@pytest.mark.parametrize(
    "bad", ["", "  ", "../evil", "a/b", "a\\b", ".hidden", "..", ".", "x.partial", "tab\there", "x" * 200]
)
def test_check_name_refuses_unsafe_names(bad):
    with pytest.raises(MorrisError):
        registry.check_name(bad)


def test_check_name_accepts_plain_names():
    assert registry.check_name("morris-r16_v2.1") == "morris-r16_v2.1"


def test_rename_moves_and_updates_provenance_name():
    fake_adapter(adapters_dir(), "run1", provenance={"name": "run1", "backend": "mlx"})
    info = registry.rename_adapter("run1", "best")
    assert info.name == "best" and info.path == adapters_dir() / "best"
    assert not (adapters_dir() / "run1").exists()
    assert json.loads((info.path / "morris_adapter.json").read_text())["name"] == "best"


def test_rename_never_overwrites_and_checks_names():
    fake_adapter(adapters_dir(), "a")
    fake_adapter(morris_home() / "adapters", "b")
    with pytest.raises(MorrisError, match="already exists"):
        registry.rename_adapter("a", "b")  # b lives in the other root: still refused
    with pytest.raises(MorrisError, match="path separator"):
        registry.rename_adapter("a", "../../etc")
    with pytest.raises(MorrisError, match="no adapter named"):
        registry.rename_adapter("zzz", "c")
    assert (adapters_dir() / "a" / "adapters.safetensors").exists()


def test_delete_removes_only_the_named_adapter():
    fake_adapter(adapters_dir(), "keep")
    fake_adapter(adapters_dir(), "drop")
    registry.delete_adapter("drop")
    assert [i.name for i in registry.list_adapters()] == ["keep"]
    assert sorted(p.name for p in adapters_dir().iterdir()) == ["keep"]
    with pytest.raises(MorrisError):
        registry.delete_adapter("../keep")


def test_cli_list_show_rename_delete(capsys):
    fake_adapter(
        adapters_dir(),
        "cli-run",
        provenance={
            "backend": "mlx",
            "created": "2026-11-24T10:00:00+00:00",
            "data": {"path": "/data", "sha256": "ab" * 32},
            "metrics": {"best_val_loss": 1.25},
        },
    )
    assert cli(["adapters", "list"]) == 0
    out = capsys.readouterr().out
    assert "cli-run" in out and "1.2500" in out
    assert cli(["adapters", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "cli-run"
    assert cli(["adapters", "show", "cli-run"]) == 0
    out = capsys.readouterr().out
    assert "self_attn.q_proj" in out and "/data" in out and "best val loss" in out
    assert cli(["adapters", "rename", "cli-run", "renamed"]) == 0
    capsys.readouterr()
    assert cli(["adapters", "delete", "renamed"]) == 2  # not a terminal and no --yes: refused
    assert "--yes" in capsys.readouterr().err
    assert (adapters_dir() / "renamed").exists()
    assert cli(["adapters", "delete", "renamed", "--yes"]) == 0
    assert not (adapters_dir() / "renamed").exists()
    assert cli(["adapters", "show", "renamed"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no adapter named" in err
