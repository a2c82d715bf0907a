"""The preference stage (DPO, ORPO) on both backends: the losses against their papers' formulas, the two
backends against each other, and the harness's promises (resume, early stopping, provenance) for pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from morris_mlx.config import load_config
from morris_mlx.dataset.pairs import load_pairs, pair_from_example
from morris_mlx.errors import MorrisError
from morris_mlx.training import read_metrics

torch = pytest.importorskip("torch")

# Per-sequence log-probabilities summed over the reply, for a batch of three pairs.
CHOSEN = np.array([-120.5, -80.25, -200.0])
REJECTED = np.array([-60.0, -90.5, -150.75])
REF_CHOSEN = np.array([-118.0, -85.0, -190.0])
REF_REJECTED = np.array([-61.0, -88.0, -149.0])
CHOSEN_TOKENS = np.array([100.0, 64.0, 180.0])
REJECTED_TOKENS = np.array([50.0, 70.0, 120.0])
BETA = 0.1


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def textbook_dpo() -> float:
    margin = (CHOSEN - REF_CHOSEN) - (REJECTED - REF_REJECTED)
    return float(np.mean(-log_sigmoid(BETA * margin)))


def textbook_orpo() -> float:
    a_c, a_r = CHOSEN / CHOSEN_TOKENS, REJECTED / REJECTED_TOKENS
    log_odds = (a_c - a_r) - (np.log1p(-np.exp(a_c)) - np.log1p(-np.exp(a_r)))
    nll = -CHOSEN.sum() / CHOSEN_TOKENS.sum()
    return float(nll - BETA * np.mean(log_sigmoid(log_odds)))


def test_the_textbook_values_are_the_libraries_values():
    # TRL 1.16 and mlx-lm-lora 5.10 give 0.82225288 for this DPO batch and 0.65238095 for the ORPO
    # odds-ratio term; our ORPO adds the chosen replies' token-weighted NLL (docs/preference.md).
    assert textbook_dpo() == pytest.approx(0.82225288, abs=1e-8)
    assert textbook_orpo() == pytest.approx(1.23020903, abs=1e-8)


@pytest.mark.parametrize("objective, expected", [("dpo", textbook_dpo), ("orpo", textbook_orpo)])
def test_torch_loss_is_the_papers_formula(objective, expected):
    from morris_mlx.backends.torch_prefer import preference_loss

    logps = torch.tensor(np.concatenate([CHOSEN, REJECTED]), dtype=torch.float64)
    counts = torch.tensor(np.concatenate([CHOSEN_TOKENS, REJECTED_TOKENS]), dtype=torch.float64)
    reference = torch.tensor(np.concatenate([REF_CHOSEN, REF_REJECTED]), dtype=torch.float64)
    assert preference_loss(objective, BETA, logps, counts, reference).item() == pytest.approx(
        expected(), rel=1e-9
    )


@pytest.mark.parametrize("objective, expected", [("dpo", textbook_dpo), ("orpo", textbook_orpo)])
def test_mlx_loss_is_the_papers_formula(objective, expected, monkeypatch):
    mx = pytest.importorskip("mlx.core")
    from morris_mlx.backends import mlx_prefer

    side = {
        "chosen": (mx.array(CHOSEN), mx.array(CHOSEN_TOKENS)),
        "rejected": (mx.array(REJECTED), mx.array(REJECTED_TOKENS)),
    }
    monkeypatch.setattr(mlx_prefer, "sequence_logps", lambda model, tokens, bounds: side[tokens])
    reference = mx.array(np.concatenate([REF_CHOSEN, REF_REJECTED]))
    loss, tokens = mlx_prefer.preference_loss(
        objective, BETA, None, "chosen", None, "rejected", None, reference
    )
    assert loss.item() == pytest.approx(expected(), rel=1e-5)
    assert tokens.item() == CHOSEN_TOKENS.sum() + REJECTED_TOKENS.sum()


def write_pairs(chat_dir: Path, out: Path) -> Path:
    """Pairs whose rejected replies are upbeat press-release prose, unlike the chosen gloomy ones."""
    out.mkdir(parents=True)
    for split in ("train", "valid"):
        rows = [json.loads(line) for line in (chat_dir / f"{split}.jsonl").read_text().splitlines()]
        pairs = [
            pair_from_example(
                row, f"We are delighted to announce record growth in item {i}. Customers love it."
            )
            for i, row in enumerate(rows)
        ]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return out


@pytest.fixture()
def pairs_dir(tiny_data, tmp_path) -> Path:
    return write_pairs(tiny_data, tmp_path / "pairs")


OVERRIDES = {
    "train.iters": 8,
    "train.save_every": 4,
    "train.steps_per_eval": 4,
    "train.learning_rate": 1e-3,
    "train.warmup_steps": 0,
    "lora.rank": 4,
    "lora.dropout": 0.0,
}


def backend(name: str):
    if name == "mlx":
        pytest.importorskip("mlx.core")
        from morris_mlx.backends.mlx_backend import MLXBackend

        return MLXBackend()
    from morris_mlx.backends.torch_backend import TorchBackend

    return TorchBackend("cpu")


def train(
    name: str,
    model: Path,
    data: Path,
    out: Path,
    objective: str,
    resume: bool = False,
    callback=None,
    **extra,
):
    cfg = load_config(overrides={**OVERRIDES, "train.objective": objective, **extra})
    return backend(name).train(cfg, model, data, out, resume=resume, callback=callback, quiet=True)


def metric(adapter: Path, kind: str, key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in read_metrics(adapter) if r["kind"] == kind}


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_both_backends_start_from_the_same_loss_and_learn_the_preference(
    objective, tiny_model, pairs_dir, tmp_path
):
    first = {}
    for name in ("torch", "mlx"):
        out = tmp_path / name
        result = train(name, tiny_model, pairs_dir, out, objective)
        val = metric(out, "val", "val_loss")
        first[name] = val[0]
        assert val[8] < val[0] and result.best_val_loss < val[0]
        provenance = json.loads((out / "morris_adapter.json").read_text())
        assert provenance["config"]["train"]["objective"] == objective
        assert provenance["system_prompt"] == "You are a gloomy British telecom columnist."
    # Before the first update LoRA is a no-op, so both backends see the base model.
    assert first["torch"] == pytest.approx(first["mlx"], abs=1e-4)
    if objective == "dpo":  # the policy is its own reference: sigmoid(0) for every pair
        assert first["torch"] == pytest.approx(math.log(2), abs=1e-6)


@pytest.mark.parametrize("name", ["torch", "mlx"])
def test_a_stopped_dpo_run_resumes_to_the_same_adapter(name, tiny_model, pairs_dir, tmp_path):
    train(name, tiny_model, pairs_dir, tmp_path / "full", "dpo")
    stopped = train(
        name,
        tiny_model,
        pairs_dir,
        tmp_path / "cut",
        "dpo",
        callback=lambda e: e.kind == "train" and e.step == 4,
    )
    assert stopped.stopped_early and stopped.steps == 4
    train(name, tiny_model, pairs_dir, tmp_path / "cut", "dpo", resume=True)
    full, cut = metric(tmp_path / "full", "train", "loss"), metric(tmp_path / "cut", "train", "loss")
    for step in range(5, 9):  # the reference log-probabilities are the base model's again after resuming
        assert cut[step] == pytest.approx(full[step], abs=1e-5)


def test_preference_training_stops_early_and_keeps_an_adapter(tiny_model, pairs_dir, tmp_path):
    out = tmp_path / "a"
    result = train(
        "torch",
        tiny_model,
        pairs_dir,
        out,
        "orpo",
        **{"train.learning_rate": 1e-12, "train.patience": 1, "train.steps_per_eval": 2, "train.iters": 16},
    )
    assert result.stopped_early and result.steps < 16
    assert (out / "adapter_model.safetensors").is_file() and (out / "morris_adapter.json").is_file()


@pytest.mark.parametrize("name", ["torch", "mlx"])
def test_the_wrong_kind_of_data_is_a_clear_error_before_anything_is_written(
    name, tiny_model, tiny_data, pairs_dir, tmp_path
):
    with pytest.raises(MorrisError, match="not a preference pair; build them with `morris pairs"):
        train(name, tiny_model, tiny_data, tmp_path / "a", "orpo")
    with pytest.raises(MorrisError, match="a preference pair, not a chat example; train it with --objective"):
        train(name, tiny_model, pairs_dir, tmp_path / "b", "sft")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_broken_pairs_name_the_line(pairs_dir):
    lines = (pairs_dir / "valid.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["rejected"] = [{"role": "assistant", "content": "  "}]
    (pairs_dir / "valid.jsonl").write_text("\n".join([lines[0], json.dumps(broken), *lines[2:]]) + "\n")
    with pytest.raises(MorrisError, match=r"valid.jsonl line 2: the rejected reply is empty"):
        load_pairs(pairs_dir, "valid")
    broken["rejected"] = "text"
    (pairs_dir / "valid.jsonl").write_text(json.dumps(broken) + "\n")
    with pytest.raises(MorrisError, match=r"line 1: 'rejected' must be a list holding one assistant message"):
        load_pairs(pairs_dir, "valid")


# morris pairs ---------------------------------------------------------------------------------------


def morris(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "morris_mlx", *args], capture_output=True, text=True, timeout=300
    )


def test_pairs_command_builds_pairs_from_the_models_own_replies(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "pairs"
    run = morris(
        "pairs",
        "--model",
        str(tiny_model),
        "--data",
        str(tiny_data),
        "--out",
        str(out),
        "--max-tokens",
        "12",
        "--backend",
        "torch",
    )
    assert run.returncode == 0, run.stderr
    chat = {
        s: [json.loads(x) for x in (tiny_data / f"{s}.jsonl").read_text().splitlines()]
        for s in ("train", "valid")
    }
    for split in ("train", "valid"):
        pairs = load_pairs(out, split)
        assert len(pairs) == len(chat[split])
        for pair, row in zip(pairs, chat[split], strict=True):
            assert pair["prompt"] == row["messages"][:-1]
            assert pair["chosen"] == row["messages"][-1:]
            assert pair["rejected"][0]["content"] != row["messages"][-1]["content"]
    record = json.loads((out / "pairs.json").read_text())
    assert record["settings"]["max_tokens"] == 12 and record["pairs"] == {"train": 16, "valid": 4}

    again = morris("pairs", "--model", str(tiny_model), "--data", str(tiny_data), "--out", str(out))
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr


class RecordingGenerator:
    """Replies with the system prompt it was asked under, so a pair shows what its rejected side answered."""

    backend, model_dir, adapter_path = "fake", Path("model"), None

    def generate_batch(self, conversations, settings, batch_size):
        from morris_mlx.backends.base import BatchResult

        for i, turns in enumerate(conversations):
            yield i, BatchResult(f"under: {turns[0]['content']} | asked: {turns[-1]['content']}", "stop", 0, 3)


def test_rejected_replies_can_answer_another_system_prompt_while_the_pair_keeps_the_writers(tiny_data, tmp_path):
    from morris_mlx.pairs import PairSettings, make_pairs

    plain = "You are a wire reporter. Write plain, neutral news."
    make_pairs(tiny_data, tmp_path / "plain", RecordingGenerator(), PairSettings(rejected_system=plain))
    make_pairs(tiny_data, tmp_path / "own", RecordingGenerator(), PairSettings())
    chat = [json.loads(x) for x in (tiny_data / "train.jsonl").read_text().splitlines()]
    for pair, own, row in zip(load_pairs(tmp_path / "plain", "train"), load_pairs(tmp_path / "own", "train"),
                              chat, strict=True):
        writer_system, ask = row["messages"][0]["content"], row["messages"][-2]["content"]
        assert pair["prompt"] == own["prompt"] == row["messages"][:-1]  # the writer's prompt, either way
        assert pair["rejected"][0]["content"] == f"under: {plain} | asked: {ask}"
        assert own["rejected"][0]["content"] == f"under: {writer_system} | asked: {ask}"
    assert json.loads((tmp_path / "plain" / "pairs.json").read_text())["settings"]["rejected_system"] == plain


def test_a_rejected_system_prompt_is_added_where_the_prompt_has_none():
    from morris_mlx.pairs import rejected_prompt

    asked = [{"role": "user", "content": "Write about fibre."}]
    assert rejected_prompt(asked, "plain") == [{"role": "system", "content": "plain"}, *asked]
    assert rejected_prompt(asked, None) is asked


def test_an_opening_is_whole_paragraphs_then_whole_sentences():
    from morris_mlx.pairs import opening

    text = "One two three. Four five.\n\nSix seven eight. Nine ten eleven. Twelve.\n\nThirteen."
    assert opening(text, 5) == "One two three. Four five."
    assert opening(text, 9) == "One two three. Four five.\n\nSix seven eight."
    assert opening(text, 100) == text
    assert opening("A sentence with no end in sight at all", 4) == "A sentence with no"


def test_rejected_replies_can_be_other_writers_on_the_closest_subject(tiny_data, tmp_path):
    from conftest import TOPICS

    from morris_mlx.cli import main as cli

    others = tmp_path / "others.jsonl"
    texts = {topic: f"{topic} report. Quarterly {topic} figures were published on Tuesday. The {topic} "
             f"programme is on schedule, a spokesperson said.\n\nMore on {topic} follows next week."
             for topic in TOPICS}
    others.write_text("".join(json.dumps({"body": text}) + "\n" for text in texts.values()))
    out = tmp_path / "pairs"
    # no --model: nothing is loaded, so nothing can be missing
    assert cli(["pairs", "--data", str(tiny_data), "--out", str(out), "--rejected-from", str(others)]) == 0
    chat = [json.loads(x) for x in (tiny_data / "train.jsonl").read_text().splitlines()]
    for pair, row in zip(load_pairs(out, "train"), chat, strict=True):
        topic = row["messages"][-2]["content"].split(": ", 1)[1]
        assert pair["prompt"] == row["messages"][:-1] and pair["chosen"] == row["messages"][-1:]
        assert pair["rejected"][0]["content"] == texts[topic]  # short enough to be its own opening
    record = json.loads((out / "pairs.json").read_text())
    assert record["rejected_from"] == str(others.resolve()) and record["pairs"] == {"train": 16, "valid": 4}


def test_rejected_words_cuts_other_writers_openings_shorter(tiny_data, tmp_path, capsys):
    from morris_mlx.cli import main as cli

    others = tmp_path / "others.jsonl"
    body = "First sentence of five words. Then a second one follows here.\n\nA later paragraph."
    others.write_text(json.dumps({"body": body}) + "\n")
    out = tmp_path / "pairs"
    args = ["pairs", "--data", str(tiny_data), "--out", str(out), "--rejected-from", str(others)]
    assert cli([*args, "--rejected-words", "8"]) == 0
    assert {pair["rejected"][0]["content"] for pair in load_pairs(out, "train")} == {
        "First sentence of five words."
    }
    assert "(8 words at most)" in json.loads((out / "pairs.json").read_text())["rejected"]
    # sizing openings means nothing for a model's replies, and a length of no words is refused by argparse
    assert cli(["pairs", "--data", str(tiny_data), "--out", str(tmp_path / "p2"), "--rejected-words", "8"]) == 2
    assert "needs --rejected-from" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli([*args, "--rejected-words", "0", "--force"])
    assert exit_info.value.code == 2 and not (tmp_path / "p2").exists()


def test_other_writers_and_a_model_for_the_rejected_side_are_one_too_many(tiny_data, tmp_path, capsys):
    from morris_mlx.cli import main as cli

    (tmp_path / "empty.jsonl").write_text("")
    base = ["pairs", "--data", str(tiny_data), "--out", str(tmp_path / "pairs"), "--rejected-from"]
    assert cli([*base, str(tmp_path / "empty.jsonl")]) == 2
    assert "holds no text" in capsys.readouterr().err
    assert cli([*base, str(tmp_path / "nowhere.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "nowhere.jsonl does not exist; name other writers' articles" in err and "--contrast" not in err
    assert cli([*base, str(tmp_path / "empty.jsonl"), "--rejected-system", "plain"]) == 2
    assert "leave out --rejected-system" in capsys.readouterr().err
    from morris_mlx.pairs import closest_others

    with pytest.raises(MorrisError, match="share no words but English stop words"):
        closest_others(["the and of", "it is"], ["was the", "to be"])
    assert not (tmp_path / "pairs").exists()


def test_pairs_command_bad_input_exits_2_and_writes_nothing(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "pairs"
    missing = morris("pairs", "--model", str(tiny_model), "--data", str(tmp_path / "nope"), "--out", str(out))
    assert missing.returncode == 2 and "does not exist; run `morris prepare" in missing.stderr
    (tiny_data / "valid.jsonl").write_text('{"messages": "oops"}\n')
    broken = morris(
        "pairs", "--model", str(tiny_model), "--data", str(tiny_data), "--out", str(out), "--backend", "torch"
    )
    assert broken.returncode == 2 and "valid.jsonl line 1" in broken.stderr
    assert not out.exists() and not (tmp_path / "pairs.partial").exists()
    empty = morris("pairs", "--model", str(tiny_model), "--data", str(tiny_data), "--out", str(out),
                   "--rejected-system", "  ")
    assert empty.returncode == 2 and "--rejected-system is empty" in empty.stderr and not out.exists()


def test_distributed_preference_training_is_refused_before_launching(tiny_model, pairs_dir, tmp_path):
    run = morris(
        "train",
        "--model",
        str(tiny_model),
        "--data",
        str(pairs_dir),
        "--objective",
        "dpo",
        "--distributed",
        "--processes",
        "2",
        "--adapter-path",
        str(tmp_path / "a"),
    )
    assert run.returncode == 2 and "runs in one process; drop --distributed" in run.stderr
    assert not (tmp_path / "a").exists()


def test_log_probabilities_stay_on_the_batchs_device():
    from types import SimpleNamespace

    from morris_mlx.backends.torch_prefer import sequence_logps

    def model(input_ids):  # a GPU stand-in: everything on the meta device, nothing computed
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, 11, device=input_ids.device))

    tokens = torch.zeros(4, 9, dtype=torch.long, device="meta")
    bounds = torch.zeros(4, 2, dtype=torch.long, device="meta")
    logps, counts = sequence_logps(model, tokens, bounds)
    assert logps.device.type == "meta" and counts.shape == (4,)


def test_a_batch_is_chosen_rows_then_rejected_rows_with_their_references():
    from morris_mlx.dataset.pairs import PairExample
    from morris_mlx.training.preference import collate_pairs

    pairs = [
        PairExample([1, 2, 3, 4], 2, [1, 2, 9], 2),
        PairExample([5, 6, 7], 1, [5, 8], 1),
        PairExample([1, 1, 1, 1, 1], 3, [2, 2, 2, 2], 3),
    ]
    (chosen, chosen_bounds), (rejected, rejected_bounds) = collate_pairs(pairs, [2, 0], max_seq_length=64)
    assert chosen.shape == rejected.shape == (2, 33)
    assert chosen[:, :5].tolist() == [[1, 1, 1, 1, 1], [1, 2, 3, 4, 0]]
    assert rejected[:, :5].tolist() == [[2, 2, 2, 2, 0], [1, 2, 9, 0, 0]]
    assert chosen_bounds.tolist() == [[3, 5], [2, 4]] and rejected_bounds.tolist() == [[3, 4], [2, 3]]
    reference = np.array([[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]])  # (chosen, rejected) per pair
    assert reference[[2, 0]].T.reshape(-1).tolist() == [-5.0, -1.0, -6.0, -2.0]
    (cut, cut_bounds), _ = collate_pairs(pairs, [2], max_seq_length=4)
    assert cut.shape == (1, 4) and cut_bounds.tolist() == [[3, 4]]
    # Each side is padded to its own longest row: a short rejected reply does not cost an article's width.
    long = [PairExample(list(range(1, 200)), 2, [1, 2, 3], 2)]
    (c, _), (r, _) = collate_pairs(long, [0], max_seq_length=1024)
    assert c.shape == (1, 225) and r.shape == (1, 33)


@pytest.mark.parametrize("objective", ["dpo", "orpo"])
def test_both_backends_agree_on_the_first_loss_of_a_two_pair_batch(
    objective, tiny_model, pairs_dir, tmp_path
):
    first = {}
    for name in ("torch", "mlx"):
        out = tmp_path / name
        train(name, tiny_model, pairs_dir, out, objective, **{"train.batch_size": 2, "train.iters": 2})
        first[name] = metric(out, "train", "loss")[1]  # computed before the first update
    assert first["torch"] == pytest.approx(first["mlx"], abs=1e-4)


def test_resuming_with_another_objective_or_beta_is_refused(tiny_model, pairs_dir, tmp_path):
    out = tmp_path / "a"
    train("torch", tiny_model, pairs_dir, out, "dpo", callback=lambda e: e.kind == "train" and e.step == 4)
    with pytest.raises(MorrisError, match="train.objective = 'dpo', not 'orpo'"):
        train("torch", tiny_model, pairs_dir, out, "orpo", resume=True)
    with pytest.raises(MorrisError, match="train.beta = 0.1, not 0.5"):
        train("torch", tiny_model, pairs_dir, out, "dpo", resume=True, **{"train.beta": 0.5})
    with pytest.raises(MorrisError, match="train.beta"):
        load_config(overrides={"train.beta": math.inf})


def test_eval_and_review_look_behind_a_pairs_folder(tmp_path, tiny_data):
    from morris_mlx.commands.eval import prepared_behind
    from morris_mlx.review.sources import _article_text

    pairs = write_pairs(tiny_data, tmp_path / "pairs")
    (pairs / "pairs.json").write_text(json.dumps({"data": str(tiny_data)}))
    assert prepared_behind(pairs) == tiny_data and prepared_behind(tiny_data) == tiny_data
    line = (pairs / "train.jsonl").read_text().splitlines()[0]
    assert _article_text(line) == json.loads(line)["chosen"][0]["content"]
