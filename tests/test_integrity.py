"""Verified on load: checkpoints, adapters, converted models and prepared data carry the sizes and sha256 of
their files, written last, and a damaged file (cut short, or the same size with other bytes) is reported
instead of being loaded: a damaged checkpoint is skipped for the previous one, a damaged adapter or model
is a one-line error, a prepared split that changed since `morris prepare` is a warning."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from morris_mlx.atomic import MANIFEST_FILENAME, atomic_dir, verify_manifest
from morris_mlx.cli import main
from morris_mlx.config import load_config
from morris_mlx.errors import MorrisError
from morris_mlx.training import checkpoints

SETTINGS = {
    "train.iters": 6,
    "train.save_every": 2,
    "train.steps_per_eval": 2,
    "train.grad_accumulation": 1,
    "lora.rank": 4,
}


def flip_last_bytes(path: Path, n: int = 16) -> None:
    """Same size, still a readable safetensors file, other numbers: only a hash can tell."""
    data = bytearray(path.read_bytes())
    data[-n:] = bytes(b ^ 0xFF for b in data[-n:])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def mlx_run(tiny_model, tmp_path_factory) -> Path:
    from conftest import write_chat_data

    from morris_mlx.backends.mlx_backend import MLXBackend

    root = tmp_path_factory.mktemp("mlx-run")
    out = root / "adapter"
    MLXBackend().train(
        load_config(overrides=SETTINGS), tiny_model, write_chat_data(root / "data"), out, quiet=True
    )
    return out


@pytest.fixture(scope="module")
def torch_run(tiny_model, tmp_path_factory) -> Path:
    pytest.importorskip("peft")
    from conftest import write_chat_data

    from morris_mlx.backends.torch_backend import TorchBackend

    root = tmp_path_factory.mktemp("torch-run")
    out = root / "adapter"
    TorchBackend().train(
        load_config(overrides=SETTINGS), tiny_model, write_chat_data(root / "data"), out, quiet=True
    )
    return out


@pytest.fixture()
def morris_log():
    """Warnings of the "morris" logger (which the CLI stops from propagating, so caplog misses them)."""

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

        @property
        def text(self) -> str:
            return "\n".join(self.lines)

        def attach(self) -> None:
            """(Again:) each CLI run replaces the logger's handlers."""
            if self not in logger.handlers:
                logger.addHandler(self)

    logger = logging.getLogger("morris")
    handler = Collect()
    handler.attach()
    yield handler
    logger.removeHandler(handler)


def copy_unfinished(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    (out / "morris_adapter.json").unlink()
    return out


# the manifest itself ---------------------------------------------------------------------------------


def test_atomic_dir_manifest_is_written_last_and_catches_each_kind_of_damage(tmp_path):
    target = tmp_path / "thing"
    with atomic_dir(target, manifest=True) as tmp:
        (tmp / "a.bin").write_bytes(b"abc" * 100)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("{}")
    files = json.loads((target / MANIFEST_FILENAME).read_text())["files"]
    assert set(files) == {"a.bin", "sub/b.json"} and files["a.bin"]["size"] == 300
    assert verify_manifest(target, "thing", "fix it")
    assert not verify_manifest(tmp_path, "no manifest", "-")  # written before manifests: not checked

    (target / "a.bin").write_bytes(b"abd" * 100)
    with pytest.raises(MorrisError, match="a.bin does not match its recorded sha256; fix it"):
        verify_manifest(target, "thing", "fix it")
    (target / "a.bin").write_bytes(b"abc")
    with pytest.raises(MorrisError, match="a.bin is 3 bytes, 300 when written"):
        verify_manifest(target, "thing", "fix it")
    (target / "a.bin").unlink()
    with pytest.raises(MorrisError, match="a.bin is missing"):
        verify_manifest(target, "thing", "fix it")


def test_atomic_dir_replaces_through_a_symlink_and_over_a_file(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real)
    for _ in range(2):  # the second time proves nothing stale (a `.old`) blocks the next swap
        with atomic_dir(link, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
        assert link.is_symlink() and link.resolve() == real.resolve()
        assert [p.name for p in real.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]

    file_target = tmp_path / "was-a-file"
    file_target.write_text("x")
    with atomic_dir(file_target, overwrite=True) as tmp:
        (tmp / "a").write_text("a")
    assert (file_target / "a").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real", "was-a-file"]

    backup = tmp_path / "real.old"  # the user's own backup beside the target: never touched
    backup.mkdir()
    (backup / "keep.txt").write_text("mine")
    with atomic_dir(real, overwrite=True) as tmp:
        (tmp / "newer.txt").write_text("newer")
    assert (backup / "keep.txt").read_text() == "mine"


def test_remove_stale_temps_clears_a_replaced_folder_but_keeps_an_orphaned_one(tmp_path):
    from morris_mlx.atomic import remove_stale_temps

    (tmp_path / "done").mkdir()
    (tmp_path / ".done.ab12_x.old").mkdir()  # killed after the swap: dead weight
    (tmp_path / ".gone.cd34_y.old").mkdir()  # killed between the renames: the only copy of `gone`
    assert remove_stale_temps(tmp_path) == [".done.ab12_x.old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gone.cd34_y.old", "done"]


# checkpoints -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["mlx", "torch"])
@pytest.mark.parametrize("damage", [flip_last_bytes, truncate], ids=["flipped", "truncated"])
def test_a_damaged_checkpoint_is_reported_and_the_previous_one_used(
    backend, damage, request, tmp_path, morris_log
):
    run = request.getfixturevalue(f"{backend}_run")
    from morris_mlx.training.checkpoints import CheckpointStore

    if backend == "mlx":
        from morris_mlx.backends.mlx_train import MLXTrainer as Trainer

        weights = "adapters.safetensors"
    else:
        from morris_mlx.backends.torch_train import TorchTrainer as Trainer

        weights = "adapter_model.safetensors"
    out = copy_unfinished(run, tmp_path)
    older, latest = checkpoints(out)[-2:]
    assert (latest / MANIFEST_FILENAME).is_file()
    damage(latest / weights)
    assert CheckpointStore(out, Trainer()).latest() == older
    assert f"checkpoint {latest.name}" in morris_log.text and weights in morris_log.text


def test_resume_after_a_damaged_checkpoint_continues_from_the_previous_one(mlx_run, tiny_model, tmp_path):
    from conftest import write_chat_data

    from morris_mlx.backends.mlx_backend import MLXBackend
    from morris_mlx.training import read_metrics

    out = copy_unfinished(mlx_run, tmp_path)
    older, latest = checkpoints(out)[-2:]
    flip_last_bytes(latest / "optimizer.safetensors")
    data = write_chat_data(tmp_path / "data")
    MLXBackend().train(load_config(overrides=SETTINGS), tiny_model, data, out, resume=True, quiet=True)
    resumed = [r for r in read_metrics(out) if r["kind"] == "plan"][-1]
    assert resumed["resumed"] and resumed["step"] == int(older.name.split("_")[1])


# adapters ----------------------------------------------------------------------------------------------


def test_a_finished_adapter_records_its_files_and_a_renamed_or_exported_one_still_verifies(
    mlx_run, tiny_model, tmp_path, monkeypatch
):
    from morris_mlx.adapter_format.provenance import verify_adapter

    provenance = json.loads((mlx_run / "morris_adapter.json").read_text())
    assert set(provenance["files"]) == {"adapters.safetensors"}
    verify_adapter(mlx_run)

    monkeypatch.setenv("MORRIS_ADAPTERS", str(tmp_path / "adapters"))
    shutil.copytree(mlx_run, tmp_path / "adapters" / "mine")
    assert main(["adapters", "rename", "mine", "yours"]) == 0
    verify_adapter(tmp_path / "adapters" / "yours")
    out = tmp_path / "peft"
    assert (
        main(["export", "peft", "--adapter-path", "yours", "--model", str(tiny_model), "--out", str(out)])
        == 0
    )
    exported = json.loads((out / "morris_adapter.json").read_text())["files"]
    assert set(exported) == {"adapter_model.safetensors"}  # its own, not the source's
    verify_adapter(out)

    flip_last_bytes(out / "adapter_model.safetensors")
    with pytest.raises(MorrisError, match="adapter_model.safetensors does not match its recorded sha256"):
        verify_adapter(out)
    assert (
        main(
            [
                "import",
                "peft",
                "--peft-path",
                str(out),
                "--model",
                str(tiny_model),
                "--out",
                str(tmp_path / "back"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "back").exists()


def test_a_resumed_run_is_unfinished_until_it_ends(mlx_run, tiny_model, tmp_path):
    """A finished adapter trained further with --resume loses its provenance while it runs, so its old
    file hashes never vouch for (or condemn) weights that training is replacing."""
    from conftest import write_chat_data

    from morris_mlx.adapter_format.provenance import verify_adapter
    from morris_mlx.backends.mlx_backend import MLXBackend

    out = tmp_path / "more"
    shutil.copytree(mlx_run, out)
    seen = []

    def stop(event):
        seen.append((out / "morris_adapter.json").exists())
        raise KeyboardInterrupt  # the user gives up at once

    cfg = load_config(overrides={**SETTINGS, "train.iters": 8})
    model = tiny_model
    with pytest.raises(KeyboardInterrupt):
        MLXBackend().train(
            cfg, model, write_chat_data(tmp_path / "d"), out, resume=True, callback=stop, quiet=True
        )
    assert seen == [False] and not (out / "morris_adapter.json").exists()
    MLXBackend().train(cfg, model, write_chat_data(tmp_path / "d2"), out, resume=True, quiet=True)
    verify_adapter(out)


# converted models ----------------------------------------------------------------------------------------


def test_a_converted_model_records_its_files_and_a_cut_one_is_refused(tiny_model, tmp_path, capsys):
    from morris_mlx.models.resolve import check_model_dir

    out = tmp_path / "converted"
    assert main(["convert", "--hf-path", str(tiny_model), "--mlx-path", str(out)]) == 0
    manifest = json.loads((out / "morris_model.json").read_text())
    assert "model.safetensors" in manifest["files"] and "config.json" in manifest["files"]
    check_model_dir(out)
    truncate(out / "model.safetensors")
    with pytest.raises(MorrisError, match="model.safetensors is .* bytes.*morris convert --force"):
        check_model_dir(out)
    capsys.readouterr()
    assert main(["generate", "5G", "--backend", "mlx", "--model", str(out), "--max-tokens", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is corrupt or truncated" in err[0]


# prepared data --------------------------------------------------------------------------------------------


def test_a_prepared_split_that_changed_is_reported(tiny_model, tmp_path, morris_log):
    from morris_mlx.dataset.jsonl import load_split

    out = tmp_path / "processed"
    assert main(["prepare", "--out", str(out), "--model", str(tiny_model)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["files"]) == {"train.jsonl", "valid.jsonl", "test.jsonl"}
    morris_log.attach()
    full = load_split(out, "train")
    assert morris_log.lines == []
    lines = (out / "train.jsonl").read_text().splitlines(keepends=True)
    (out / "train.jsonl").write_text("".join(lines[: len(lines) // 2]))  # cut at a line: still valid JSONL
    cut = load_split(out, "train")
    assert len(cut) == len(full) // 2
    assert "train.jsonl has changed" in morris_log.text and "run `morris prepare` again" in morris_log.text


def test_a_new_run_clears_what_a_killed_one_left_behind(mlx_run, tiny_model, tmp_path):
    from conftest import write_chat_data

    out = copy_unfinished(mlx_run, tmp_path)
    (out / ".adapters.safetensors.x1y2.tmp").write_bytes(b"half an adapter")
    (out / "checkpoints" / ".optimizer.safetensors.a1b2.tmp").write_bytes(b"half an optimizer")
    (out / "checkpoints" / "step_0000099.partial").mkdir()
    (out / "notes.tmp").write_text("not ours: kept")  # not hidden, so not a temp file of ours
    argv = ["train", "--backend", "mlx", "--model", str(tiny_model), "--adapter-path", str(out), "--resume"]
    argv += ["--data", str(write_chat_data(tmp_path / "data")), "--iters", "6", "--rank", "4"]
    argv += ["--save-every", "2", "--steps-per-eval", "2", "--grad-accumulation", "1"]
    assert main(argv) == 0
    leftovers = sorted(p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".partial")))
    assert leftovers == ["notes.tmp"]
    assert (out / "morris_adapter.json").is_file()


# another base with the same shapes -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["mlx", "torch"])
def test_same_shaped_other_base_warns_on_load_and_is_refused_on_resume(
    backend, mlx_run, torch_run, tiny_model, tmp_path, morris_log
):
    """A fine-tune of the base has the same shapes, so only the fingerprint can tell them apart."""
    from conftest import write_chat_data

    from morris_mlx.backends import get_backend
    from morris_mlx.models.fingerprint import fingerprint_model
    from morris_mlx.models.random_model import build_random_model

    other = build_random_model(tmp_path / "other", shape="tiny", seed=1)
    assert fingerprint_model(other) != fingerprint_model(tiny_model)
    run = mlx_run if backend == "mlx" else torch_run
    impl = get_backend(backend, announce=False)
    impl.load(tiny_model, run)
    assert "trained on" not in morris_log.text
    impl.load(other, run)
    assert "trained on" in morris_log.text and "meaningless" in morris_log.text

    out = copy_unfinished(run, tmp_path)
    with pytest.raises(MorrisError, match="trained on another base model"):
        impl.train(
            load_config(overrides=SETTINGS), other, write_chat_data(tmp_path / "data"), out, resume=True
        )
