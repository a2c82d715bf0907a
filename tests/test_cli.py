"""The CLI contract: help with examples, exit codes, lazy imports, config precedence and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from morris_mlx.cli import COMMANDS, main
from morris_mlx.config import load_config
from morris_mlx.errors import MorrisError


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "morris_mlx", *args], capture_output=True, text=True, timeout=120
    )


def test_top_level_help_lists_every_command_and_imports_neither_mlx_nor_torch():
    code = (
        "import sys, io, contextlib\n"
        "from morris_mlx.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out: rc = main(['--help'])\n"
        "heavy = [m for m in ('mlx', 'torch', 'transformers', 'mlx_lm') if m in sys.modules]\n"
        "print(rc, heavy, all(c in out.getvalue() for c in %r))\n" % list(COMMANDS)
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "0 [] True", result.stderr


@pytest.mark.parametrize("command", ["setup-default", "train", "generate", "convert"])
def test_command_help_has_an_example_and_stays_light(command):
    code = (
        "import sys\n"
        "from morris_mlx.cli import main\n"
        "try: main([%r, '--help'])\n"
        "except SystemExit as e: print('rc', e.code)\n"
        "print([m for m in ('mlx', 'torch') if m in sys.modules])\n" % command
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "example" in result.stdout and "rc 0" in result.stdout
    assert result.stdout.strip().endswith("[]")


def test_unknown_command_and_unknown_flag_exit_2_with_one_line(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["--nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown command" in err[0] and "unknown option" in err[1]


def test_bad_flag_value_exits_2():
    result = run("generate", "5G", "--max-tokens", "-3")
    assert result.returncode == 2
    assert "must be positive" in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_and_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("morris ")


def test_config_precedence_cli_over_file_over_defaults(tmp_path):
    cfg_file = tmp_path / "morris.toml"
    cfg_file.write_text("[lora]\nrank = 8\nalpha = 16\n[train]\nlearning_rate = 2e-4\n")
    cfg = load_config(cfg_file, {"lora.rank": 4, "train.iters": None})
    assert cfg.lora.rank == 4  # CLI wins
    assert cfg.lora.alpha == 16.0 and cfg.train.learning_rate == 2e-4  # file over defaults
    assert cfg.lora.dropout == 0.0 and cfg.lora.scale == 4.0
    assert cfg.train.preset == "auto" and cfg.train.grad_accumulation is None  # sized from the data


def test_original_preset_fills_only_unset_keys(tmp_path):
    cfg = load_config(None, {"train.preset": "original", "train.learning_rate": 3e-4})
    assert (
        cfg.train.grad_accumulation == 8 and cfg.train.epochs == 2.0 and cfg.train.lr_schedule == "constant"
    )
    assert cfg.train.learning_rate == 3e-4  # the flag wins over the preset
    assert cfg.lora.rank == 16 and cfg.lora.scale == 2.0
    with pytest.raises(MorrisError, match="train.preset"):
        load_config(None, {"train.preset": "turbo"})


@pytest.mark.parametrize(
    "text, key",
    [
        ("[lora]\nrnak = 8\n", "lora.rnak"),
        ("[lora]\nrank = 'eight'\n", "lora.rank"),
        ("[train]\ngrad_checkpoint = 1\n", "train.grad_checkpoint"),
        ("[trian]\niters = 3\n", "trian"),
        ("[generate]\ntop_p = 1.5\n", "generate.top_p"),
        ("[lora]\ntarget_modules = 'q_proj'\n", "lora.target_modules"),
        ("rank = 3\n", "rank"),
        ("[train]\npreset = ['original']\n", "train.preset"),
        ("[train]\nepochs = inf\n", "train.epochs' must be a finite number"),
        ("[lora]\nalpha = inf\n", "lora.alpha' must be a finite number"),
        ("[scrape]\ndelay = inf\n", "scrape.delay' must be a finite number"),
    ],
)
def test_broken_config_names_the_key(tmp_path, text, key):
    cfg_file = tmp_path / "bad.toml"
    cfg_file.write_text(text)
    with pytest.raises(MorrisError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_config(cfg_file)


def test_broken_config_at_the_cli_is_one_line_and_exit_2(tmp_path):
    cfg_file = tmp_path / "bad.toml"
    cfg_file.write_text("[lora]\nrnak = 8\n")
    result = run("train", "-c", str(cfg_file))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lora.rnak" in lines[0]


def test_invalid_toml_and_missing_config_file(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[lora\n")
    with pytest.raises(MorrisError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(MorrisError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_backend_choice_is_explained():
    from morris_mlx.backends import choose

    choice = choose("auto")
    assert choice.backend in ("mlx", "torch") and choice.reason
    with pytest.raises(MorrisError):
        choose("tpu")


def test_plan_sizes_small_corpora_and_keeps_the_original_one_flag_away():
    from morris_mlx.training import learning_rate_at, make_plan

    auto = load_config().train
    plan = make_plan(auto, examples=27, tokens=20_000)
    assert plan.grad_accumulation == 1 and plan.updates >= 60  # the floor on updates
    assert plan.iters % plan.steps_per_eval == 0 or plan.steps_per_eval <= plan.iters
    big = make_plan(auto, examples=4000, tokens=4_000_000)
    assert big.grad_accumulation == 8 and big.updates == 1500
    original = load_config(None, {"train.preset": "original"}).train
    orig = make_plan(original, examples=25, tokens=20_000)
    assert orig.grad_accumulation == 8 and orig.updates == 7  # ceil(2 * 25 / 8)
    rates = [learning_rate_at(auto, u, 60) for u in range(60)]
    assert rates[0] < rates[6] == pytest.approx(auto.learning_rate) and rates[-1] < auto.learning_rate / 2


def test_generate_stdout_holds_only_the_article_and_logs_go_to_stderr(tiny_model):
    # `morris generate "5G" > article.md` must not put log lines into the article.
    proc = subprocess.run(
        [sys.executable, "-m", "morris_mlx", "generate", "5G", "--backend", "mlx", "--model", str(tiny_model),
         "--max-tokens", "5", "--temp", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "backend" in proc.stderr and "tok/s" in proc.stderr
    assert "backend" not in proc.stdout and "tok/s" not in proc.stdout and proc.stdout.strip()
