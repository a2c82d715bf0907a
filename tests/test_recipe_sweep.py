"""The recipe sweep's verdict comes from its rows: a candidate beats the default only by more than the
spread, and the table says when a stage has too few runs to judge."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "recipe_sweep.py"
spec = importlib.util.spec_from_file_location("recipe_sweep", SCRIPT)
sweep = importlib.util.module_from_spec(spec)
sys.modules["recipe_sweep"] = sweep  # dataclasses look their module up while the script loads
spec.loader.exec_module(sweep)
PRODUCT_DEFAULTS = sweep.DEFAULTS  # what the script runs under, before a test pins it


@pytest.fixture(autouse=True)
def first_defaults(monkeypatch):
    """The sweep's mechanics under the first defaults, whichever the product is at (rows without the
    field, keys without a suffix); the tests of a changed default set their own."""
    monkeypatch.setattr(sweep, "DEFAULTS", 1)
    monkeypatch.setattr(sweep, "EARLIER_DEFAULTS", {})


def row(candidate: str, fold: int, writer: float, contrast: float = -0.1, voice: str = "morris") -> dict:
    return {
        "key": sweep.run_key(candidate, voice, fold, 0), "candidate": candidate, "voice": voice, "fold": fold,
        "seed": 0, "writer_change": writer, "contrast_change": contrast,
        "specificity": writer / contrast, "attribution_base": 0.1, "attribution_adapter": 0.4,
        "attribution_ratio": 4.0, "train_seconds": 300.0, "updates": 60, "best_step": 40,
    }


def test_a_difference_inside_the_spread_is_no_win():
    noisy = sweep.summary([-0.30, -0.10, -0.20])
    default = sweep.summary([-0.18, -0.22, -0.14])
    assert not sweep.beats(noisy, default, "lower")
    clear = sweep.summary([-0.30, -0.31, -0.29])
    assert sweep.beats(clear, default, "lower") and not sweep.beats(default, clear, "lower")
    assert not sweep.beats(sweep.summary([-0.5]), default, "lower")  # one run has no spread to judge by


def test_the_verdict_names_wins_and_losses_and_the_targets():
    runs = [row("default", f, w) for f, w in enumerate((-0.20, -0.21, -0.19))]
    runs += [row("r8", f, w) for f, w in enumerate((-0.30, -0.31, -0.29))]
    runs += [row("wd0.1", f, w) for f, w in enumerate((-0.22, -0.18, -0.20))]
    text = "\n".join(sweep.stage_table(runs, "test"))
    assert "- r8: better than the default on writer drop, specificity" in text
    assert "wd0.1" not in text.split("| wd0.1 |")[1].split("\n", 1)[1]  # in the table, not in the verdict
    assert "Today's default: writer drop -20.0% (target -25.0%)" in text


def test_no_default_runs_no_verdict():
    text = "\n".join(sweep.stage_table([row("r8", 0, -0.3)], "test"))
    assert "No verdict" in text


def test_attribution_ratio_handles_a_base_that_never_sounds_like_the_writer():
    assert sweep.ratio(0.5, 0.25) == 2.0
    assert math.isinf(sweep.ratio(0.5, 0.0)) and math.isnan(sweep.ratio(0.0, 0.0))
    assert math.isnan(sweep.ratio(0.5, math.nan))


def test_attributed_vs_base_is_the_ratio_of_mean_shares_not_the_mean_of_ratios():
    runs = [{**row("default", f, -0.2), "attribution_base": b, "attribution_adapter": a}
            for f, (b, a) in enumerate([(1 / 12, 0.75), (0.25, 0.5), (0.0, 0.5)])]
    stats = sweep.candidate_stats(runs)
    mean, spread, n = stats["attribution_vs_base"]
    # (0.75 + 0.5 + 0.5) / (1/12 + 0.25 + 0) = 5.25, where the per-run ratios are 9, 2 and infinite
    assert math.isclose(mean, 5.25) and math.isnan(spread) and n == 3
    assert math.isclose(stats["attribution_adapter"][0], 1.75 / 3)
    line = next(x for x in sweep.stage_table(runs, "t") if x.startswith("| default |"))
    assert "| 5.25 |" in line and "± -" not in line


def test_recipes_that_prepare_differently_get_their_own_data(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sweep, "morris", lambda *args: calls.append(args))
    plain = sweep.prepared("morris", 1, tmp_path, sweep.CANDIDATES["default"])
    chunks = sweep.prepared("morris", 1, tmp_path, sweep.CANDIDATES["chunks384"])
    assert plain.name == "morris-fold1" and chunks != plain and chunks.name.startswith("morris-fold1-")
    assert calls[1][-2:] == ("--max-seq-length", "384")
    assert sweep.pairs_of(plain).name == "morris-fold1-pairs" and calls[2][0] == "pairs"
    plain_news = sweep.CANDIDATES["orpo-plain"].pair_flags
    other = sweep.pairs_of(plain, plain_news)
    assert other.name.startswith("morris-fold1-pairs-") and calls[3][-2:] == plain_news
    assert sweep.CANDIDATES["orpo"].flags() == "pairs --objective orpo"
    assert sweep.CANDIDATES["default"].flags() == "(defaults)"


def test_rows_of_an_older_yardstick_are_replaced_not_duplicated_and_kept_out_of_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "RECORD", tmp_path / "recipe.json")
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    old = {**row("default", 0, -0.9), "yardstick": sweep.YARDSTICK - 1}
    sweep.save_row(old)
    sweep.save_row({**row("default", 1, -0.2), "yardstick": sweep.YARDSTICK})
    text = sweep.write_table(sweep.load_record())
    assert "-90.0%" not in text and "1 older rows were scored with an earlier yardstick" in text
    record = sweep.save_row({**row("default", 0, -0.3), "yardstick": sweep.YARDSTICK})
    assert sorted(r["key"] for r in record["runs"]) == ["default/morris/fold0/seed0", "default/morris/fold1/seed0"]
    assert "earlier yardstick" not in sweep.write_table(record)


def fake_morris(calls: list[tuple[str, ...]]):
    """`morris` as the sweep calls it, writing just the files the sweep reads next."""
    def run(*args: str) -> None:
        calls.append(args)
        out = Path(args[args.index("--out") + 1]) if "--out" in args else None
        if args[0] in ("prepare", "pairs"):
            out.mkdir(parents=True)
            (out / "train.jsonl").write_text("")
        elif args[0] == "train":
            adapter = Path(args[args.index("--adapter-path") + 1])
            adapter.mkdir(parents=True)
            (adapter / "morris_adapter.json").write_text('{"metrics": {}, "plan": {}}')
        elif args[0] == "eval":
            out.parent.mkdir(parents=True)
            out.with_suffix(".json").write_text('{"style": {"adapter": {}}}')
    return run


def test_every_recipe_is_scored_on_the_default_prepared_fold(tmp_path, monkeypatch):
    """A recipe that prepares differently (paragraph chunks) trains on its own data but is scored on the
    same held-out articles and prompts as the default, or its writer drop would measure other text."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(sweep, "REPO", tmp_path)
    monkeypatch.setattr(sweep, "morris", fake_morris(calls))
    args = sweep.argparse.Namespace(out="runs", backend="torch")
    sweep.run_one("chunks384", "morris", 2, 0, args)
    train = next(c for c in calls if c[0] == "train")
    evaluate = next(c for c in calls if c[0] == "eval")
    trained_on = Path(train[train.index("--data") + 1])
    scored_on = Path(evaluate[evaluate.index("--data") + 1])
    assert trained_on.name.startswith("morris-fold2-") and scored_on.name == "morris-fold2"
    assert evaluate[evaluate.index("--prompts") + 1] == str(sweep.EVAL_PROMPTS)


def test_a_candidate_is_judged_against_the_default_on_the_same_voices_folds_and_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    default = [row("default", f, w) for f, w in enumerate((-0.26, -0.27, -0.28))]
    default += [row("default", f, w, voice="ledger") for f, w in enumerate((-0.34, -0.36, -0.35))]
    same = [row("orpo", f, w) for f, w in enumerate((-0.26, -0.27, -0.28))]  # the gloomy voice only
    text = "\n".join(sweep.stage_table(default + same, "test"))
    assert "orpo: better" not in text and "No candidate differs" in text  # not "worse" for lacking ledger
    runs = [{**r, "yardstick": sweep.YARDSTICK} for r in default + same]
    both = sweep.write_table({"runs": runs}).split("### Both voices")[1].split("### Runs")[0]
    assert "| default | 6 |" in both and "| orpo |" not in both  # a one-voice candidate waits for its finals
    assert "- Today's default on ledger alone: writer drop -35.0%" in both  # a mean can hide a voice


def test_the_longest_copied_span_is_reported_against_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    runs = [{**row("default", f, -0.2), "copied_words_max": n, "yardstick": sweep.YARDSTICK}
            for f, n in enumerate((12, 17, 9))]
    runs += [{**row("r8", f, -0.2), "copied_words_max": n, "yardstick": sweep.YARDSTICK}
             for f, n in enumerate((8, 31, 10))]
    text = sweep.write_table({"runs": runs})
    assert "longest copied span 17 words over 3 runs (target under 30)" in text
    assert "- r8: copies 30 words or more of its training text in r8/morris/fold1/seed0." in text
    assert "- default: copies" not in text
    assert text.split("| r8/morris/fold1/seed0 |")[1].split("\n")[0].endswith("| 31 |")


def test_a_row_missing_a_later_measure_is_read_again_from_its_report_only(tmp_path):
    current = {**row("default", 0, -0.2), "yardstick": sweep.YARDSTICK, "finished": "2026-11-30"}
    assert not sweep.to_do(current, "screen") and sweep.to_do(None, "screen")
    assert not sweep.to_do(None, "rescore") and sweep.to_do({**current, "yardstick": 1}, "rescore")
    report = tmp_path / "report.json"
    assert sweep.refreshed(current, report) is None  # a clean clone has no runs/: the row stays as it is
    report.write_text(json.dumps({"style": {"adapter": {"shared_span_max": 7.0}}}))
    fuller = sweep.refreshed(current, report)
    assert fuller == {**current, "copied_words_max": 7.0}  # the date it was run on, and all else, kept
    assert sweep.refreshed(fuller, report) is None


def test_a_replaced_row_keeps_its_place(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "RECORD", tmp_path / "recipe.json")
    for fold in range(3):
        sweep.save_row(row("default", fold, -0.2))
    record = sweep.save_row({**row("default", 1, -0.2), "copied_words_max": 4.0})
    assert [r["fold"] for r in record["runs"]] == [0, 1, 2] and record["runs"][1]["copied_words_max"] == 4.0


def test_a_run_without_replies_does_not_count_toward_the_longest_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    runs = [{**row("default", f, -0.2), "copied_words_max": n, "yardstick": sweep.YARDSTICK}
            for f, n in enumerate((12, math.nan, 9))]
    assert "longest copied span 12 words over 2 runs" in sweep.write_table({"runs": runs})


def test_with_two_voices_the_verdict_is_also_given_voice_by_voice():
    # Pooled over the voices the spread of the default's writer drop (0.08) hides a gain of 0.02 that
    # both voices show beyond the spread of their own folds.
    runs = [row("default", f, w) for f, w in enumerate((-0.200, -0.205, -0.210))]
    runs += [row("default", f, w, voice="ledger") for f, w in enumerate((-0.360, -0.365, -0.370))]
    runs += [row("chunks512", f, w) for f, w in enumerate((-0.220, -0.225, -0.230))]
    runs += [row("chunks512", f, w, voice="ledger") for f, w in enumerate((-0.380, -0.385, -0.390))]
    runs += [row("r8", f, w) for f, w in enumerate((-0.220, -0.225, -0.230))]  # one voice: no split
    text = "\n".join(sweep.stage_table(runs, "test"))
    assert "- chunks512: better" not in text  # pooled: inside the spread
    assert ("- chunks512, voice by voice (the spread of folds and seeds alone): ledger better on writer drop"
            in text)
    assert "better on every voice: writer drop" in text
    assert "- r8: better than the default on writer drop" in text and "r8, voice by voice" not in text


def prepared_fold(data: Path, titles: list[str], words: int) -> None:
    data.mkdir(parents=True)
    for split, part in (("test", titles[:1]), ("valid", titles[1:])):
        lines = [json.dumps({"messages": [{"role": "user", "content": "Write it"},
                                          {"role": "assistant", "content": f"# {t}\n\n" + "word " * words}]})
                 for t in part]
        (data / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    (data / "train.jsonl").write_text("")


def test_the_length_stage_compares_each_article_with_the_writers_own(tmp_path, monkeypatch):
    """The eval's replies stop at 160 tokens; the length stage asks for whole articles on the held-out
    titles and judges how far their length is from the writer's, against the default on the same runs."""
    monkeypatch.setattr(sweep, "REPO", tmp_path)
    monkeypatch.setattr(sweep, "RECORD", tmp_path / "recipe.json")
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    titles = ["Fibre in the fog", "The slicing séance returns"]
    prepared_fold(tmp_path / "runs" / "data" / "morris-fold0", titles, 500)
    written = {"default": (510, 470), "chunks512": (300, 320)}
    calls = []

    def fake_morris(*args: str) -> None:
        calls.append(args)
        adapter = Path(args[args.index("--adapter-path") + 1])
        topics = [json.loads(line)["topic"] for line in Path(args[args.index("--batch") + 1]).read_text().splitlines()]
        n = written[adapter.name.split("-")[0]]
        Path(args[args.index("--out") + 1]).write_text("".join(
            json.dumps({"topic": t, "text": "w " * k, "finish_reason": "stop"}) + "\n"
            for t, k in zip(topics, n, strict=True)))

    monkeypatch.setattr(sweep, "morris", fake_morris)
    args = sweep.argparse.Namespace(out="runs", backend="torch")
    for candidate in written:
        adapter = sweep.adapter_dir(tmp_path / "runs", candidate, "morris", 0, 1)
        adapter.mkdir(parents=True)
        (adapter / "morris_adapter.json").write_text("{}")
        sweep.save_row({**row(candidate, 0, -0.2), "seed": 1, "key": sweep.run_key(candidate, "morris", 0, 1),
                        "yardstick": sweep.YARDSTICK})
    sweep.measure_row(None, "r8", "morris", 0, 1, args)  # no scored run: nothing generated
    assert calls == []
    for candidate in written:
        key = sweep.run_key(candidate, "morris", 0, 1)
        sweep.measure_row({r["key"]: r for r in sweep.load_record()["runs"]}[key], candidate, "morris", 0, 1, args)
    assert [c[c.index("--max-tokens") + 1] for c in calls] == ["1024", "1024"]
    rows = {r["candidate"]: r for r in sweep.load_record()["runs"]}
    assert rows["chunks512"]["length_articles"][0] == {
        "title": "Fibre in the fog", "writer_words": 505, "words": 300, "finish_reason": "stop"}
    sweep.measure_row(rows["default"], "default", "morris", 0, 1, args)  # measured once, not again
    assert len(calls) == 2
    text = sweep.write_table(sweep.load_record())
    assert "| chunks512 | morris | 1 | 2 | 310 | 505 | -39% ± 3% | 1.00 |" in text
    assert ("- chunks512: length -39% against the default's -3%, worse beyond the spread, over the 1 run "
            "the default has too.") in text


def test_a_failing_morris_step_of_the_length_stage_exits_2_and_records_nothing(tmp_path, monkeypatch, capsys):
    for name in ("REPO", "RECORD", "TABLE", "SETUP"):
        monkeypatch.setattr(sweep, name, getattr(sweep, name))  # main() sets them; put them back after
    monkeypatch.setattr(sweep, "REPO", tmp_path)
    record, runs = tmp_path / "recipe.json", tmp_path / "runs"
    prepared_fold(runs / "data" / "morris-fold0", ["Fibre in the fog", "Slicing"], 50)
    adapter = sweep.adapter_dir(runs, "default", "morris", 0, 0)
    adapter.mkdir(parents=True)
    (adapter / "morris_adapter.json").write_text("{}")
    sweep.use(sweep.Setup(), record)
    sweep.save_row({**row("default", 0, -0.2), "yardstick": sweep.YARDSTICK})
    before = record.read_text()

    def failing(*args: str) -> None:
        raise subprocess.CalledProcessError(1, [sys.executable, "-m", "morris_mlx", *args])

    monkeypatch.setattr(sweep, "morris", failing)
    monkeypatch.setattr(sys, "argv", ["recipe_sweep.py", "length", "--folds", "0", "--only", "default",
                                      "--out", str(runs), "--record", str(record)])
    assert sweep.main() == 2
    assert "default/morris/fold0/seed0: `morris generate` exited with 1; nothing recorded" in capsys.readouterr().err
    assert record.read_text() == before


def test_article_length_is_also_judged_voice_by_voice():
    def measured(candidate: str, voice: str, words: list[int]) -> dict:
        return {**row(candidate, 0, -0.2, voice=voice), "length_articles": [
            {"title": str(i), "writer_words": 500, "words": w, "finish_reason": "stop"} for i, w in enumerate(words)]}

    runs = [measured("default", "morris", [500, 520, 480]), measured("default", "ledger", [300, 320, 280]),
            measured("r8", "morris", [900, 950, 1000]), measured("r8", "ledger", [500, 510, 490])]
    text = "\n".join(sweep.length_table(runs))
    assert "| r8 | morris | 1 | 3 | 950 | 500 | +90% ± 4% | 1.00 |" in text
    # Pooled, r8 runs long and the default short by about as much; each voice tells them apart.
    assert ("- r8: length +38% against the default's -23%, no different beyond the spread, over the 2 runs "
            "the default has too; voice by voice: ledger +0% against the default's -40%, better; "
            "morris +90% against the default's +0%, worse.") in text


def test_an_empty_reply_is_the_shortest_article_not_an_error():
    runs = [{**row("default", 0, -0.2), "length_articles": [
        {"title": "t", "writer_words": 500, "words": 0, "finish_reason": "stop"}]}]
    assert "| default | morris | 1 | 1 | 0 | 500 | -100% ± " in "\n".join(sweep.length_table(runs))


def test_a_measure_some_runs_lack_is_shown_as_partial_and_not_judged():
    runs = [row("default", f, w, -0.15) for f, w in enumerate((-0.26, -0.27, -0.28))]
    # the contrast rose in one run (no ratio) and barely moved in another: the mean of the two left (6.8 ±
    # 4.9) would call this candidate more specific than the default (1.8) by more than the spread
    runs += [{**row("dpo", 0, -0.05, 0.10), "specificity": None}, row("dpo", 1, -0.09, -0.0077),
             row("dpo", 2, -0.128, -0.068)]
    text = "\n".join(sweep.stage_table(runs, "test"))
    line = next(x for x in text.split("\n") if x.startswith("| dpo |"))
    assert "(2 of 3 runs)" in line and line.count("of 3 runs") == 1
    assert "- dpo: better than the default on nothing; worse on writer drop" in text


# A small written corpus: a fictional columnist on railways, twenty articles of the sentences below.
RAIL_SENTENCES = [
    "The timetable, printed with the confidence of a weather forecast, promised a train every twelve minutes.",
    "Nobody at the operator has yet explained where the other eleven went.",
    "I have spent more of this year on platform four than in my own kitchen.",
    "The new rolling stock arrived painted in a shade the press office calls heritage maroon.",
    "Passengers call it the colour of a bruise, which is closer to the truth.",
    "Fares rose by the usual amount, which is to say by slightly more than anyone's wages.",
    "The minister rode the line once, on a Sunday, with the signals cleared ahead of him.",
    "He declared it a triumph of modern engineering and went home by car.",
    "Engineering works are scheduled, as ever, for the only weekend anyone wanted to travel.",
    "The replacement bus service replaces neither the train nor, in any useful sense, a bus.",
    "Somewhere in a depot outside the city, a perfectly good locomotive waits for a driver.",
    "The drivers, for their part, wait for a pay offer that does not insult them.",
    "A consultant's report, two hundred pages long, recommends a further report.",
    "The station café closes at six, because nobody could possibly want tea after dark.",
    "Delay repay forms run to four pages and ask for the ticket you surrendered at the barrier.",
    "Still, the announcements are now made in a soothing voice, which helps almost not at all.",
]


def rail_corpus(path: Path, articles: int = 20, paragraphs: int = 3) -> Path:
    import random

    lines = []
    for i in range(articles):
        rng = random.Random(i)
        body = "\n\n".join(" ".join(rng.sample(RAIL_SENTENCES, 4)) for _ in range(paragraphs))
        lines.append(json.dumps({"url": f"https://example.org/rail/{i}", "title": f"Platform notes {i}",
                                 "body": body, "author": "A. Commuter"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_sweep(*args: str):
    import subprocess

    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


def test_the_sweep_runs_on_a_writers_own_articles_into_a_record_of_their_own(tmp_path, tiny_model):
    pytest.importorskip("torch")
    essays = rail_corpus(tmp_path / "essays.jsonl")
    record = tmp_path / "sweep" / "rail.json"
    common = ("--raw", str(essays), "--record", str(record), "--model", str(tiny_model),
              "--out", str(tmp_path / "runs"), "--folds", "0", "--seeds", "0", "--only", "default")
    done = run_sweep("screen", *common)
    assert done.returncode == 0, done.stderr[-3000:]
    kept = json.loads(record.read_text())
    (run,) = kept["runs"]
    assert run["key"] == sweep.run_key("default", "essays", 0, 0, PRODUCT_DEFAULTS)
    assert run["defaults"] == PRODUCT_DEFAULTS and run["yardstick"] == sweep.YARDSTICK
    assert math.isfinite(run["writer_change"]) and math.isfinite(run["contrast_change"])
    # every validation is kept, so another patience can be judged from the record
    steps = [step for step, _ in run["val_losses"]]
    assert steps[0] == 0 and steps == sorted(steps) and run["best_step"] in steps
    assert all(math.isfinite(loss) for _, loss in run["val_losses"])
    assert kept["setup"]["raw"][0]["file"] == "essays.jsonl" and kept["setup"]["model"] == str(tiny_model)
    prepared = [json.loads(x) for x in (tmp_path / "runs" / "data" / "essays-fold0" / "test.jsonl").read_text().splitlines()]
    # the held-out articles are the writer's own, not a bundled voice's
    assert prepared and {x["messages"][-1]["content"].splitlines()[0] for x in prepared} <= {
        f"# Platform notes {i}" for i in range(20)}
    table = record.with_suffix(".md").read_text()
    assert "### Screen: the essays voice, training seed 0, every fold" in table
    assert "`morris prepare --raw essays.jsonl --fold F`" in table and "| default | 1 |" in table

    again = run_sweep("screen", *common)  # the row exists: nothing is trained again
    assert again.returncode == 0 and json.loads(record.read_text())["runs"] == kept["runs"]

    other = rail_corpus(tmp_path / "other.jsonl", articles=21)
    mixed = run_sweep("screen", *common[:1], str(other), *common[2:])
    assert mixed.returncode == 2 and "holds runs of essays.jsonl" in mixed.stderr
    assert json.loads(record.read_text())["runs"] == kept["runs"]
    # a record of its own, but the first corpus's runs folder: its finished runs are not taken for these
    reused = run_sweep("screen", "--raw", str(other), "--record", str(tmp_path / "other.json"), *common[4:])
    assert reused.returncode == 2 and "holds runs of another setup" in reused.stderr
    assert not (tmp_path / "other.json").exists()


def test_own_articles_need_a_record_of_their_own(tmp_path):
    essays = rail_corpus(tmp_path / "essays.jsonl")
    refused = run_sweep("screen", "--raw", str(essays))
    assert refused.returncode == 2 and "--raw needs --record" in refused.stderr
    record = ("--record", str(tmp_path / "r.json"))
    missing = run_sweep("screen", "--raw", str(tmp_path / "nope.jsonl"), *record)
    assert missing.returncode == 2 and "nope.jsonl does not exist" in missing.stderr
    (tmp_path / "broken.jsonl").write_text('{"url": "u", "title": "t", "body": "b"}\n{not json\n')
    broken = run_sweep("screen", "--raw", str(tmp_path / "broken.jsonl"), *record)
    assert broken.returncode == 2 and "broken.jsonl line 2" in broken.stderr
    (tmp_path / "empty.txt").write_text("")
    no_contrast = run_sweep("screen", "--raw", str(essays), "--contrast", str(tmp_path / "empty.txt"), *record)
    assert no_contrast.returncode == 2 and "holds no text" in no_contrast.stderr
    not_a_model = run_sweep("screen", "--raw", str(essays), "--model", str(essays), *record)
    assert not_a_model.returncode == 2 and "is not a model folder" in not_a_model.stderr
    contrast = ("--contrast", str(essays))  # any readable text will do: it is refused before it is used
    measured_twice = run_sweep("screen", "--raw", str(essays), *contrast, "--others", str(essays), *record)
    assert measured_twice.returncode == 2 and "is the set specificity is measured against" in measured_twice.stderr
    markdown = run_sweep("screen", "--raw", str(essays), "--record", str(tmp_path / "r.md"))
    assert markdown.returncode == 2 and "name a .json file" in markdown.stderr
    (tmp_path / "r.json").write_text("{}")
    not_a_record = run_sweep("table", *record)
    assert not_a_record.returncode == 2 and "is not a sweep record" in not_a_record.stderr
    assert (tmp_path / "r.json").read_text() == "{}" and not (tmp_path / "r.md").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["broken.jsonl", "empty.txt", "essays.jsonl", "r.json"]


def test_a_held_out_article_cut_into_parts_is_measured_whole(tmp_path, tiny_model):
    from morris_mlx.cli import main as cli

    essays = rail_corpus(tmp_path / "essays.jsonl", paragraphs=12)
    data = tmp_path / "data"
    assert cli(["prepare", "--raw", str(essays), "--out", str(data), "--model", str(tiny_model),
                "--max-seq-length", "900"]) == 0
    held = [json.loads(x)["messages"][-1]["content"] for s in ("test", "valid")
            for x in (data / f"{s}.jsonl").read_text().splitlines()]
    titled = [t for t in held if t.startswith("# ")]
    assert len(held) > len(titled) > 0  # the articles were cut: some parts have no title line
    articles = sweep.heldout_articles(data)
    assert [title for title, _, _ in articles] == [t.splitlines()[0][2:] for t in titled]
    bodies = {(row := json.loads(line))["title"]: row["body"] for line in essays.read_text().splitlines()}
    for title, words, parts in articles:  # each article whole: its title line and every part of its body
        assert words == len(f"# {title}".split()) + len(bodies[title].split()) and parts > 1
    assert sweep.length_budget(articles) == 2 * max(words for _, words, _ in articles) > sweep.LENGTH_MAX_TOKENS
    assert sweep.length_budget([("whole", 600, 1)]) == sweep.LENGTH_MAX_TOKENS  # the bundled articles' budget


def test_the_articles_model_and_contrast_of_a_setup_reach_every_command(tmp_path, monkeypatch):
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(sweep, "REPO", tmp_path)
    monkeypatch.setattr(sweep, "morris", fake_morris(calls))
    setup = sweep.Setup(raw=("/w/articles.jsonl",), contrast="/w/others.jsonl", model="/w/model")
    monkeypatch.setattr(sweep, "SETUP", setup)
    monkeypatch.setattr(sweep, "heldout_articles", lambda data: [("Title", 500, 1)])
    sweep.run_one("orpo-plain", "articles", 0, 0, sweep.argparse.Namespace(out="runs", backend="torch"))
    with pytest.raises(FileNotFoundError):  # the fake writes no articles: the call is what counts here
        sweep.measure_length(tmp_path / "adapter", tmp_path / "data", "torch")
    by_command = {c[0]: c for c in calls}
    assert set(by_command) == {"prepare", "pairs", "train", "eval", "generate"}
    for command, args in by_command.items():
        assert args[args.index("--model") + 1] == "/w/model", command
    assert by_command["prepare"][1:3] == ("--raw", "/w/articles.jsonl") and "--voice" not in by_command["prepare"]
    assert by_command["eval"][by_command["eval"].index("--contrast") + 1] == "/w/others.jsonl"
    assert by_command["pairs"][-2:] == sweep.CANDIDATES["orpo-plain"].pair_flags
    with pytest.raises(SystemExit):  # no other voice among one's own articles
        sweep.pair_flags(sweep.CANDIDATES["orpo-others"], "articles")
    monkeypatch.setattr(sweep, "SETUP", sweep.Setup(raw=setup.raw, others="/w/other-writers"))
    assert sweep.pair_flags(sweep.CANDIDATES["orpo-others"], "articles") == ("--rejected-from", "/w/other-writers")


def test_another_voice_is_rejected_from_the_other_bundled_corpus():
    from morris_mlx.paths import voice_dir

    assert sweep.pair_flags(sweep.CANDIDATES["orpo-others"], "morris") == ("--rejected-from", str(voice_dir("ledger")))
    assert sweep.pair_flags(sweep.CANDIDATES["orpo-others"], "ledger") == ("--rejected-from", str(voice_dir("morris")))
    assert sweep.pair_flags(sweep.CANDIDATES["orpo"], "morris") == ()


# When a default changes ---------------------------------------------------------------------------------


@pytest.fixture()
def dropout_changed(monkeypatch):
    """The product's defaults as they would be after LoRA dropout went from 0.1 to 0: the rows recorded so
    far were trained under the first defaults, and their dropout0 runs trained as today's default does."""
    monkeypatch.setattr(sweep, "DEFAULTS", 2)
    monkeypatch.setattr(sweep, "EARLIER_DEFAULTS", {1: sweep.EarlierDefaults("LoRA dropout 0.1", as_today="dropout0")})


def earlier_row(candidate: str, fold: int, writer: float) -> dict:
    """A row recorded before rows carried their defaults."""
    key = sweep.run_key(candidate, "morris", fold, 0, defaults=1)
    return {**row(candidate, fold, writer), "key": key, "yardstick": sweep.YARDSTICK}


def test_rows_of_earlier_defaults_are_judged_against_the_default_of_their_day(tmp_path, monkeypatch, dropout_changed):
    monkeypatch.setattr(sweep, "TABLE", tmp_path / "recipe.md")
    runs = [earlier_row("default", f, w) for f, w in enumerate((-0.20, -0.21, -0.19))]
    runs += [earlier_row("r8", f, w) for f, w in enumerate((-0.30, -0.31, -0.29))]
    runs += [earlier_row("dropout0", f, w) for f, w in enumerate((-0.25, -0.26, -0.24))]
    runs += [{**row("r8", f, w), "yardstick": sweep.YARDSTICK, "defaults": 2}
             for f, w in enumerate((-0.25, -0.26, -0.24))]
    text = sweep.write_table({"runs": runs})
    todays, then = text.split("## Earlier defaults: LoRA dropout 0.1")
    assert "## Today's defaults" in todays and "| default | 3 |" in todays and "| dropout0 |" not in todays
    assert "- Today's default: writer drop -25.0%" in todays
    assert "No candidate differs from the default" in todays  # today's r8 against today's default
    assert "| default/morris/fold0/seed0/defaults2 (trained as dropout0/morris/fold0/seed0) |" in todays
    assert "- r8: better than the default on writer drop" in then  # against the default of its day
    assert "- The default then: writer drop -20.0%" in then and "Today's default" not in then
    assert "| r8/morris/fold0/seed0/defaults2 |" not in then


def test_todays_default_is_not_trained_again_where_an_earlier_candidate_trained_as_it(
    tmp_path, monkeypatch, capsys, dropout_changed
):
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(sweep, "REPO", tmp_path)
    monkeypatch.setattr(sweep, "RECORD", tmp_path / "recipe.json")
    monkeypatch.setattr(sweep, "morris", fake_morris(calls))
    args = sweep.argparse.Namespace(out="runs", backend="torch", stage="final")
    sweep.save_row(earlier_row("dropout0", 0, -0.25))
    sweep.save_row(earlier_row("r8", 0, -0.3))
    sweep.save_row({**earlier_row("wd10", 0, -0.3), "yardstick": sweep.YARDSTICK - 1})

    sweep.sweep_one("default", "morris", 0, 0, args)
    assert calls == []  # dropout0's run under the first defaults is today's default's
    sweep.sweep_one("r8", "morris", 0, 0, args)  # r8 under the first defaults is not r8 today
    train = next(c for c in calls if c[0] == "train")
    assert train[train.index("--adapter-path") + 1].endswith("adapters/r8-morris-fold0-seed0-defaults2")
    rows = {r["key"]: r for r in sweep.load_record()["runs"]}
    assert rows["r8/morris/fold0/seed0/defaults2"]["defaults"] == 2
    assert rows["r8/morris/fold0/seed0"]["writer_change"] == -0.3  # the earlier run is kept as it was

    calls.clear()
    sweep.sweep_one("wd10", "morris", 0, 0, sweep.argparse.Namespace(out="runs", backend="torch", stage="rescore"))
    assert calls == []  # its adapter is gone, and training it now would train it under today's defaults
    assert "wd10/morris/fold0/seed0: skipped; it was trained under earlier defaults" in capsys.readouterr().out
