"""Recipe sweep: which training defaults teach a writer's voice, judged against noise.

Every run trains one candidate recipe on one bundled voice, one fold of its articles (the held-out test
articles differ between folds) and one training seed, with the product's own commands, then scores it
with `morris eval`: the writer's held-out perplexity drop (plain text, first 512 tokens), the drop on the
contrast corpus (other writing on the same topics), their ratio (specificity), how often the classifier
attributes generated text to the writer against the base model, and the training time.

    python scripts/recipe_sweep.py screen --voices morris --folds 0,1,2 --seeds 0 --only default,r8,wd0.1
    python scripts/recipe_sweep.py final --voices morris,ledger --folds 0,1,2 --seeds 0,1 --only default,r8
    python scripts/recipe_sweep.py rescore --only default,neftune5   # re-evaluate rows of an older yardstick
    python scripts/recipe_sweep.py length --voices morris,ledger --folds 0 --seeds 1 --only default,r8
    python scripts/recipe_sweep.py table          # rewrite docs/recipe.md from docs/recipe.json

Runs are resumable and kept: each finished run is a row of docs/recipe.json (adapters and reports stay
under runs/, which is not committed), and a run whose row exists is not redone, so a sweep can be spread
over several sessions. A killed training run resumes from its checkpoint. The table and its verdict are
computed from the rows only: one candidate beats another when the difference of their means is larger
than the spread (standard deviation over runs) of either.

The eval's replies stop at 160 tokens, so it cannot see whether an adapter writes a whole article. The
`length` stage asks a scored run's adapter for an article on each held-out article's title with
`morris generate` (up to 1024 tokens) and compares its length with the writer's own article of that title;
it is slow on a CPU (minutes per run), so it is run for finalists on one fold and seed per voice.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.training.records import read_metrics

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "docs" / "recipe.json"  # `--record` points the sweep at another (the table goes beside it)
TABLE = REPO / "docs" / "recipe.md"
BASELINE = "default"
# Version of the scoring: rows scored otherwise are left out of the table until `rescore` re-evaluates
# them. 2: the attribution classifier's "not the writer" side holds the base model's own replies too;
# 3: generated replies are decoded in batches (other draws than one by one); 4: every candidate is scored
# on the fold's default-prepared data (the same held-out text and prompts whatever its own prepare flags),
# by a classifier that learned the base model's voice from 24 replies, not 6 (one day only, superseded by
# 5); 5: attribution shares over replies to held-out prompts only, 12 of them (each held-out article's
# prompt asked twice); 6: the classifier's passages take their length from the base model's replies alone,
# so every candidate on a fold is judged by the same classifier.
YARDSTICK = 6
# The product's training defaults, as the rows know them: raised when a default changes. A candidate's
# flags sit on top of the defaults it was trained under, so each row records them (rows without the field
# were trained under the first), a candidate is judged against the default of its own rows' day, and
# today's tables hold the runs trained as today's defaults train.
DEFAULTS = 2


@dataclass(frozen=True)
class EarlierDefaults:
    """Defaults rows were once trained under: how they differ from today's, and the candidate of theirs
    that trained exactly as today's default does (its runs are today's default's, and are not redone)."""

    differ: str
    as_today: str | None = None


EARLIER_DEFAULTS: dict[int, EarlierDefaults] = {
    1: EarlierDefaults("LoRA dropout 0.1 (every row recorded before rows kept their defaults)", as_today="dropout0"),
}
EVAL_PROMPTS = 15  # 12 asks of the 6 held-out articles' prompts (test and validation) and 3 off-topic
EVAL_MAX_TOKENS = 160

QKVO = ["--target-modules", "q_proj", "k_proj", "v_proj", "o_proj"]
OTHER_VOICE = "{other voice}"  # in pair flags: the other bundled voice's corpus
# The contrast corpus's voice as a system prompt: rejected replies in it make the preference the writer
# over other writing on the same topic (what specificity measures) rather than over the model's own try at
# the writer's voice. The eval's contrast articles themselves are never trained on.
PLAIN_NEWS = ("You are a wire-service reporter covering telecoms. Write a plain, neutral news report: what "
              "happened, the figures and who said what, in the order a reader needs them. No opinion, no jokes, "
              "no rhetorical questions, no asides. Plain prose paragraphs.")


@dataclass(frozen=True)
class Recipe:
    """A change from today's defaults: `morris train` flags, `morris prepare` flags (a candidate with its
    own prepared data), and whether it trains on preference pairs built from the prepared data (with
    `morris pairs` flags of its own)."""

    train: tuple[str, ...] = ()
    prepare: tuple[str, ...] = ()
    pairs: bool = False
    pair_flags: tuple[str, ...] = ()

    def flags(self) -> str:
        pairs = ["pairs", *(shlex.quote(f) for f in self.pair_flags)] if self.pairs else []
        parts = [*(["prepare", *self.prepare] if self.prepare else []), *pairs, *self.train]
        return " ".join(parts) or "(defaults)"


CANDIDATES: dict[str, Recipe] = {
    BASELINE: Recipe(),
    "original": Recipe(("--preset", "original")),
    "r8": Recipe(("--rank", "8", "--alpha", "16")),
    "r16": Recipe(("--rank", "16", "--alpha", "32")),
    "dropout0.3": Recipe(("--dropout", "0.3")),
    # No dropout on the LoRA input: its random masks take about a sixth of a torch step on the CPU, and
    # 0.3 was no better than 0.1 on any fold. Today's default since 2026-12-04.
    "dropout0": Recipe(("--dropout", "0")),
    "dropout0.1": Recipe(("--dropout", "0.1")),  # the default until 2026-12-04
    "wd0.1": Recipe(("--weight-decay", "0.1")),
    # 0.1 is the customary value and a no-op at lr 2e-4 (weights x 0.99998 per update); 10 takes 0.2%.
    "wd10": Recipe(("--weight-decay", "10")),
    "neftune5": Recipe(("--neftune-alpha", "5")),
    "qkvo": Recipe(tuple(QKVO)),
    "last-half": Recipe(("--num-layers", "15")),  # the embedded default has 30 blocks
    "lr1e-4": Recipe(("--learning-rate", "1e-4")),
    # Half the default rate cost the gloomy voice specificity (1.67 against 1.79): the other way.
    "lr4e-4": Recipe(("--learning-rate", "4e-4")),
    # Twice the rate raised specificity (2.35) but cost drop (-23.9%): halfway between.
    "lr3e-4": Recipe(("--learning-rate", "3e-4")),
    "no-early-stop": Recipe(("--patience", "0")),
    "patience6": Recipe(("--patience", "6")),
    "smooth0.5": Recipe(("--val-smoothing", "0.5")),
    # More examples from the same text: articles cut at paragraphs into parts of at most 384 tokens.
    "chunks384": Recipe(prepare=("--max-seq-length", "384")),
    "chunks512": Recipe(prepare=("--max-seq-length", "512")),
    # The parts of chunks512 without the end-of-reply token, but for each article's last: chunks taught the
    # model to stop where a cut fell (articles 41-69% short, about one part's length).
    "chunks512-open": Recipe(prepare=("--max-seq-length", "512", "--open-parts")),
    # The same parts, but beside the whole training articles (chunks wrote articles 41-69% short).
    "parts512": Recipe(prepare=("--train-parts", "512")),
    # Parts beside the whole articles, with open parts: the wholes teach the length (chunks512-open, which
    # has none, ran 54% long on the gloomy voice), the parts the voice, and no part teaches a stop at a cut.
    "parts512-open": Recipe(prepare=("--train-parts", "512", "--open-parts")),
    # Today's data with open parts: only articles longer than the training length are cut (two per fold of
    # the numbers-first voice, none of the gloomy one), as real columns of 1,000 words and more would be.
    "open": Recipe(prepare=("--open-parts",)),
    # One part of each article, picked at random: parts512's outnumbered the wholes 3 to 1 and cut length.
    "parts512x1": Recipe(prepare=("--train-parts", "512", "--parts-per-article", "1")),
    # More validation text (7 articles instead of 3); the test articles of each fold stay the same.
    "valid20": Recipe(prepare=("--valid-fraction", "0.2")),
    # The preference stage instead of supervised training: chosen = the writer, rejected = the base model.
    "orpo": Recipe(("--objective", "orpo"), pairs=True),
    "dpo": Recipe(("--objective", "dpo"), pairs=True),
    # ORPO with rejected replies in the plain newswire voice for the same prompts.
    "orpo-plain": Recipe(("--objective", "orpo"), pairs=True, pair_flags=("--rejected-system", PLAIN_NEWS)),
    # ORPO with the other bundled voice's article on the closest subject rejected (its opening): the writer
    # over another writer on the same topic. The eval's contrast corpus is never trained on.
    "orpo-others": Recipe(("--objective", "orpo"), pairs=True, pair_flags=("--rejected-from", OTHER_VOICE)),
    # The same with 60-word openings (about 80 tokens against 200 words' 290): orpo-others cost about twice
    # the default's training time, too much for a default that `make demo` runs in under 10 minutes.
    "orpo-others60": Recipe(("--objective", "orpo"), pairs=True,
                            pair_flags=("--rejected-from", OTHER_VOICE, "--rejected-words", "60")),
}

# What each row records, how the table shows it, and which way is better.
METRICS = {
    "writer_change": ("writer drop", "pct", "lower"),
    "contrast_change": ("contrast drop", "pct", "info"),
    "specificity": ("specificity", "ratio", "higher"),
    "attribution_adapter": ("attributed", "share", "higher"),
    "attribution_vs_base": ("attributed vs base", "ratio", "info"),
    "train_seconds": ("train s", "seconds", "lower"),
}
TARGETS = {"writer_change": -0.25, "specificity": 2.0, "attribution_vs_base": 3.0}
COPY_LIMIT = 30  # words: no generated span this long may come from the training text
# Measures rows gained after scoring 5 began: a row without one is read again from its run's report while
# that is on disk (no training, no evaluation).
LATER_FIELDS = ("copied_words_max",)


LENGTH_MAX_TOKENS = 1024  # the training length: room for the longest bundled article and its prompt
LENGTH_SEED = 3
LENGTH_BATCH = 8  # articles decoded together: all of a bundled fold's six; a large real corpus in eights


@dataclass(frozen=True)
class Setup:
    """Where a sweep's articles, contrast set and model come from: the bundled voices, contrast corpus
    and embedded default model unless given. With `raw`, every run is on the writer's own articles
    (`morris prepare --raw`), as a user with a scraped corpus would train. `others`: other writers whose
    openings a recipe rejects (OTHER_VOICE; the other bundled voice by default, needed with `raw`)."""

    raw: tuple[str, ...] = ()
    contrast: str | None = None
    model: str | None = None
    others: str | None = None

    def source(self, voice: str) -> list[str]:
        return ["--raw", *self.raw] if self.raw else ["--voice", voice]

    def model_flags(self) -> list[str]:
        return ["--model", self.model] if self.model else []

    def identity(self) -> dict[str, Any]:
        """What the record keeps, so rows of other articles, contrast text or model never mix in one table
        (files by content: a corpus scraped again is another corpus)."""
        from morris_mlx.atomic import file_digests, sha256_file

        def digest(path: str | None) -> str | None:
            if path is None:
                return None
            if Path(path).is_dir():  # the folder's files, by name and content
                return hashlib.sha256(json.dumps(file_digests(path), sort_keys=True).encode()).hexdigest()
            return sha256_file(path)

        return {"raw": [{"file": Path(f).name, "sha256": digest(f)} for f in self.raw],
                "contrast": self.contrast and {"file": Path(self.contrast).name, "sha256": digest(self.contrast)},
                "model": self.model,
                **({"others": {"file": Path(self.others).name, "sha256": digest(self.others)}} if self.others else {})}


SETUP = Setup()  # bundled; `main` sets it from --raw, --contrast and --model


def morris(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "morris_mlx", *args], check=True, cwd=REPO)


def run_key(candidate: str, voice: str, fold: int, seed: int, defaults: int | None = None) -> str:
    """The row's key; runs under the first defaults keep the key they were recorded with."""
    key = f"{candidate}/{voice}/fold{fold}/seed{seed}"
    defaults = DEFAULTS if defaults is None else defaults
    return key if defaults == 1 else f"{key}/defaults{defaults}"


def defaults_of(row: dict[str, Any]) -> int:
    return row.get("defaults", 1)


def prepared(voice: str, fold: int, root: Path, recipe: Recipe) -> Path:
    """The fold's prepared data for `recipe` (its own folder when it prepares differently)."""
    suffix = "-" + "".join(recipe.prepare).replace("--", "_") if recipe.prepare else ""
    data = root / "data" / f"{voice}-fold{fold}{suffix}"
    if not (data / "train.jsonl").is_file():
        morris("prepare", *SETUP.source(voice), "--fold", str(fold), "--out", str(data), "--max-seq-length", "1024",
               *SETUP.model_flags(), *recipe.prepare)
    return data


def pairs_of(data: Path, flags: tuple[str, ...] = ()) -> Path:
    """Preference pairs of prepared `data`: rejected replies from the base model, 256 tokens each, made
    with `morris pairs` `flags` (their own folder when there are any)."""
    suffix = "-" + hashlib.sha256("\0".join(flags).encode()).hexdigest()[:8] if flags else ""
    pairs = data.with_name(data.name + "-pairs" + suffix)
    if not (pairs / "train.jsonl").is_file():
        morris("pairs", "--backend", "torch", "--data", str(data), "--out", str(pairs), "--force",
               *SETUP.model_flags(), *flags)
    return pairs


def pair_flags(recipe: Recipe, voice: str) -> tuple[str, ...]:
    """The recipe's `morris pairs` flags for `voice`, other writers in place of OTHER_VOICE: `--others`,
    else the other bundled voice's corpus (a writer's own articles have none: refused)."""
    if OTHER_VOICE not in recipe.pair_flags:
        return recipe.pair_flags
    from morris_mlx.paths import bundled_voices, voice_dir

    bundled = [str(voice_dir(v)) for v in bundled_voices() if v != voice and not SETUP.raw]
    others = SETUP.others or (bundled[0] if bundled else None)
    if others is None:
        print(f"{voice}: this recipe rejects other writers' openings; pass --others PATH (other writers on the "
              "same topics, not the --contrast set) or leave it out of --only", file=sys.stderr)
        raise SystemExit(2)
    return tuple(others if flag == OTHER_VOICE else flag for flag in recipe.pair_flags)


def ratio(adapter: float | None, base: float | None) -> float:
    """How many times as often the adapter's texts are attributed to the writer as the base model's."""
    if adapter is None or base is None or not math.isfinite(adapter) or not math.isfinite(base):
        return math.nan
    return adapter / base if base > 0 else (math.inf if adapter > 0 else math.nan)


def adapter_dir(root: Path, candidate: str, voice: str, fold: int, seed: int, defaults: int | None = None) -> Path:
    """A run's adapter; a run under other defaults than the first has its own, never an earlier one's."""
    name = f"{candidate}-{voice}-fold{fold}-seed{seed}"
    defaults = DEFAULTS if defaults is None else defaults
    return root / "adapters" / (name if defaults == 1 else f"{name}-defaults{defaults}")


def report_of(adapter: Path) -> Path:
    """The eval report's path without suffix."""
    return adapter / "eval" / "report"


def to_do(row: dict[str, Any] | None, stage: str) -> bool:
    """Whether a run needs training or evaluation: it has no row (a rescore leaves it), or its row was
    scored with an older yardstick."""
    if row is None:
        return stage != "rescore"
    return row.get("yardstick") != YARDSTICK


def later_measures(report: dict[str, Any]) -> dict[str, Any]:
    """The LATER_FIELDS of a row, from its run's eval report."""
    return {"copied_words_max": report["style"]["adapter"].get("shared_span_max")}


def refreshed(row: dict[str, Any], report_path: Path) -> dict[str, Any] | None:
    """`row` with the later measures it lacks, read from its run's report; None when it lacks none or
    the report is gone (a clean clone has no runs/). Nothing is trained or evaluated."""
    if all(f in row for f in LATER_FIELDS) or not report_path.is_file():
        return None
    return {**row, **later_measures(json.loads(report_path.read_text()))}


def run_one(
    candidate: str, voice: str, fold: int, seed: int, args: argparse.Namespace, rescore: bool = False,
    defaults: int | None = None,
) -> dict[str, Any]:
    """Train (unless the adapter is finished) and evaluate (unless a report exists and not `rescore`).
    `defaults`: those the run was trained under (today's unless it is an earlier run rescored)."""
    root, recipe = REPO / args.out, CANDIDATES[candidate]
    defaults = DEFAULTS if defaults is None else defaults
    data = prepared(voice, fold, root, recipe)
    adapter = adapter_dir(root, candidate, voice, fold, seed, defaults)
    if not (adapter / "morris_adapter.json").is_file():
        resume = ["--resume"] if (adapter / "checkpoints").is_dir() else []
        train_data = pairs_of(data, pair_flags(recipe, voice)) if recipe.pairs else data
        morris("train", "--backend", args.backend, "--data", str(train_data), "--adapter-path", str(adapter),
               "--seed", str(seed), "--max-seq-length", "1024", *SETUP.model_flags(), *resume, *recipe.train)
    report_path = report_of(adapter)
    if rescore or not report_path.with_suffix(".json").is_file():
        # Scored on the default-prepared fold whatever the recipe prepared: the same held-out text for all.
        scored_on = prepared(voice, fold, root, CANDIDATES[BASELINE])
        morris("eval", "--backend", args.backend, "--adapter-path", str(adapter), "--data", str(scored_on),
               "--prompts", str(EVAL_PROMPTS), "--max-tokens", str(EVAL_MAX_TOKENS), "--seed", "0",
               "--out", str(report_path), *SETUP.model_flags(),
               *(["--contrast", SETUP.contrast] if SETUP.contrast else []))
    report = json.loads(report_path.with_suffix(".json").read_text())
    provenance = json.loads((adapter / "morris_adapter.json").read_text())
    voice_block, attribution = report.get("voice") or {}, report.get("attribution") or {}
    metrics = provenance.get("metrics") or {}
    return {
        "key": run_key(candidate, voice, fold, seed, defaults),
        "yardstick": YARDSTICK,
        "defaults": defaults,
        "candidate": candidate,
        "flags": recipe.flags(),
        "voice": voice,
        "fold": fold,
        "seed": seed,
        "backend": args.backend,
        "writer_change": voice_block.get("writer_change"),
        "contrast_change": voice_block.get("contrast_change"),
        "specificity": voice_block.get("specificity"),
        "attribution_base": attribution.get("base_share"),
        "attribution_adapter": attribution.get("adapter_share"),
        "classifier_accuracy": attribution.get("cv_accuracy"),
        "copied_words_mean": report["style"]["adapter"].get("shared_span_mean"),
        **later_measures(report),
        "train_seconds": metrics.get("train_seconds"),
        "updates": (provenance.get("plan") or {}).get("updates"),
        "best_step": metrics.get("best_step"),
        "stopped_early": metrics.get("stopped_early"),
        # Every validation, so another patience or smoothing can be judged from the record, not a rerun.
        "val_losses": [[r["step"], r["val_loss"]] for r in read_metrics(adapter) if r.get("kind") == "val"],
        "finished": time.strftime("%Y-%m-%d"),
    }


def heldout_articles(data: Path) -> list[tuple[str, int, int]]:
    """(title, words, parts) of the writer's held-out articles (test, then validation) in prepared `data`,
    whose assistant turns start with the article's "# Title" line; an article longer than the training
    length comes in parts, and the parts after its first (no title line) count toward its words."""
    from morris_mlx.dataset.jsonl import load_split  # the product's reader: validated, checked against stats

    articles: list[tuple[str, int, int]] = []
    for split in ("test", "valid"):
        first = len(articles)
        for example in load_split(data, split):
            text = example["messages"][-1]["content"]
            heading = text.splitlines()[0] if text else ""
            if heading.startswith("# "):
                articles.append((heading[2:].strip(), len(text.split()), 1))
            elif len(articles) > first:  # a later part of the split's last article
                title, words, parts = articles[-1]
                articles[-1] = (title, words + len(text.split()), parts + 1)
            else:
                raise SystemExit(f"{data / split}.jsonl: an article without its '# Title' line: {heading[:60]!r}")
    return articles


def length_budget(writer: list[tuple[str, int, int]]) -> int:
    """Tokens an article may run to: the training length, or, where a held-out article is longer than that
    (it came in parts, as real columns may), twice its words (a word is 1.3-1.5 tokens of English), so
    that the writer's length can be matched and overshot."""
    longest = max((words for _, words, parts in writer if parts > 1), default=0)
    return max(LENGTH_MAX_TOKENS, 2 * longest)


def measure_length(adapter: Path, data: Path, backend: str) -> list[dict[str, Any]]:
    """The adapter's article for each held-out title (generated once, kept beside its eval report) against
    the writer's own: words of each, and why generation stopped ("stop": the model ended it)."""
    writer = heldout_articles(data)
    out = adapter / "eval" / "length-articles.jsonl"
    if not out.is_file():
        topics = adapter / "eval" / "length-topics.jsonl"
        topics.parent.mkdir(parents=True, exist_ok=True)
        topics.write_text("".join(json.dumps({"topic": title}) + "\n" for title, _, _ in writer))
        morris("generate", "--batch", str(topics), "--out", str(out), "--adapter-path", str(adapter),
               "--backend", backend, "--max-tokens", str(length_budget(writer)), "--seed", str(LENGTH_SEED),
               "--batch-size", str(min(len(writer), LENGTH_BATCH)), *SETUP.model_flags())
    replies = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    if [r["topic"] for r in replies] != [title for title, _, _ in writer]:
        raise SystemExit(f"{out} holds other titles than {data}'s held-out articles; remove it and run again")
    return [{"title": title, "writer_words": words, "words": len(r["text"].split()),
             "finish_reason": r["finish_reason"]} for (title, words, _), r in zip(writer, replies, strict=True)]


def load_record() -> dict[str, Any]:
    if not RECORD.is_file():
        return {"runs": []}
    data = json.loads(RECORD.read_text())
    # The sweep before this yardstick (one split, one seed, a generic-text check) is kept apart, unjudged.
    return {"runs": [], "superseded": data} if isinstance(data, list) else data


def save_row(row: dict[str, Any]) -> dict[str, Any]:
    """Add `row` to docs/recipe.json, replacing an older row of its run, and return the whole record.
    Read afresh each time, so two sweeps writing rows (a screen and a rescore) keep each other's."""
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    with open(RECORD.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other sweep's read-modify-write waits for ours
        record = load_record()
        check_setup(record)  # again under the lock: another sweep may have started this record meanwhile
        record["setup"] = SETUP.identity()
        keys = [r["key"] for r in record["runs"]]
        if row["key"] in keys:  # in its place, so the table's order of runs stays put
            record["runs"][keys.index(row["key"])] = row
        else:
            record["runs"].append(row)
        partial = RECORD.with_suffix(".json.partial")
        partial.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
        partial.replace(RECORD)  # a reader never sees half a file
    return record


def check_setup(record: dict[str, Any]) -> None:
    """Refuse to add rows of other articles, contrast text or model to a record (a record from before the
    setup was kept holds the bundled one's)."""
    kept = record.get("setup", Setup().identity() if record["runs"] else SETUP.identity())
    if kept != SETUP.identity():
        def name(identity: dict[str, Any]) -> str:
            raw = ", ".join(f["file"] for f in identity["raw"]) or "the bundled voices"
            contrast = (identity["contrast"] or {}).get("file", "the bundled contrast corpus")
            return f"{raw} against {contrast} on {identity['model'] or 'the embedded default model'}"
        print(f"{RECORD} holds runs of {name(kept)}, not {name(SETUP.identity())} (or the files changed "
              "since); pass --record NEW.json for a record of its own", file=sys.stderr)
        raise SystemExit(2)


def current(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows scored with today's yardstick (older ones wait for `rescore`)."""
    return [r for r in runs if r.get("yardstick") == YARDSTICK]


def today(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows trained as today's defaults train: today's own, and those of an earlier candidate that
    trained as today's default does, as the default's (where the default has no run of its own there)."""
    rows = [r for r in runs if defaults_of(r) == DEFAULTS]
    have = {(r["candidate"], r["voice"], r["fold"], r["seed"]) for r in rows}
    for r in runs:
        earlier, where = EARLIER_DEFAULTS.get(defaults_of(r)), (BASELINE, r["voice"], r["fold"], r["seed"])
        if earlier and r["candidate"] == earlier.as_today and where not in have:
            rows.append({**r, "candidate": BASELINE, "key": run_key(*where), "trained_as": r["key"]})
            have.add(where)
    return rows


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def summary(values: list[float]) -> tuple[float, float, int]:
    """(mean, standard deviation, n) of the finite values; NaN where there are none."""
    finite = [v for v in values if is_finite(v)]
    if not finite:
        return math.nan, math.nan, 0
    spread = statistics.pstdev(finite) if len(finite) > 1 else math.nan
    return statistics.fmean(finite), spread, len(finite)


def beats(a: tuple[float, float, int], b: tuple[float, float, int], better: str) -> bool:
    """Whether mean a is better than mean b by more than the spread of either (and both have 2+ runs)."""
    (ma, sa, na), (mb, sb, nb) = a, b
    if na < 2 or nb < 2 or not all(math.isfinite(x) for x in (ma, mb, sa, sb)):
        return False
    gain = (mb - ma) if better == "lower" else (ma - mb)
    return gain > max(sa, sb)


def fmt(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return {"pct": f"{100 * value:+.1f}%", "ratio": f"{value:.2f}", "share": f"{value:.2f}",
            "seconds": f"{value:.0f}", "words": f"{value:.0f}"}[kind]


def candidate_stats(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """(mean, spread, n) of every measure over one candidate's runs. "Attributed vs base" is the ratio of
    the mean shares, without a spread: the base model's share is (nearly) the same for every candidate on
    a fold, so candidates are judged by the adapter's share, and a mean of per-run ratios would be ruled
    by the runs whose base share is 1/12 (a ratio of 9) or 0 (no ratio at all)."""
    stats = {k: summary([r.get(k) for r in runs]) for k in METRICS if k != "attribution_vs_base"}
    base = summary([r.get("attribution_base") for r in runs])
    stats["attribution_vs_base"] = (ratio(stats["attribution_adapter"][0], base[0]), math.nan, base[2])
    return {k: stats[k] for k in METRICS}


def stage_table(runs: list[dict[str, Any]], title: str, default: str = "Today's default") -> list[str]:
    """Mean ± spread per candidate over `runs`, and the verdict against the default."""
    by_candidate: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_candidate.setdefault(run["candidate"], []).append(run)
    order = [c for c in CANDIDATES if c in by_candidate] + sorted(set(by_candidate) - set(CANDIDATES))
    lines = [f"### {title}", "", "| recipe | runs | " + " | ".join(m[0] for m in METRICS.values()) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    stats = {c: candidate_stats(by_candidate[c]) for c in order}
    for c in order:
        count = len(by_candidate[c])
        cells = [(f"{fmt(m, kind)} ± {fmt(s, kind).lstrip('+')}" if n > 1 and math.isfinite(s) else fmt(m, kind))
                 + (f" ({n} of {count} runs)" if 0 < n < count else "")
                 for (m, s, n), (_, kind, _) in zip(stats[c].values(), METRICS.values(), strict=True)]
        lines.append(f"| {c} | {count} | " + " | ".join(cells) + " |")
    lines += ["", *verdict({c: by_candidate[c] for c in order}, default), ""]
    return lines


def matched(runs: list[dict[str, Any]], others: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """The runs of each list whose voice, fold and seed the other list has too: a candidate is compared
    with the default on the same articles, seeds and voices (the voices differ in how far they move)."""
    def where(r: dict[str, Any]) -> tuple[Any, ...]:
        return r["voice"], r["fold"], r["seed"]

    shared = {where(r) for r in runs} & {where(r) for r in others}
    return [r for r in runs if where(r) in shared], [r for r in others if where(r) in shared]


def judged(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The measures on which `mine` is better, and worse, than `theirs` by more than the spread. A measure
    that some run lacks (specificity, where the contrast perplexity did not drop) is not judged: the mean
    of the runs that have it is not the candidate's mean."""
    s, d = candidate_stats(mine), candidate_stats(theirs)
    judgeable = {k: better for k, (_, _, better) in METRICS.items()
                 if better != "info" and s[k][2] == len(mine) and d[k][2] == len(theirs)}
    wins = [METRICS[k][0] for k, better in judgeable.items() if beats(s[k], d[k], better)]
    losses = [METRICS[k][0] for k, better in judgeable.items() if beats(d[k], s[k], better)]
    return wins, losses


def by_voice(candidate: str, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    """The verdict voice by voice, where the spread is that of folds and seeds alone: pooled over voices
    it also holds how differently the voices move (the numbers-first one drops further under any recipe),
    which is no noise and can hide a difference that every voice shows."""
    voices = sorted({r["voice"] for r in mine})
    if len(voices) < 2:
        return []
    verdicts = {v: judged([r for r in mine if r["voice"] == v], [r for r in theirs if r["voice"] == v])
                for v in voices}
    if not any(wins or losses for wins, losses in verdicts.values()):
        return []
    every = [m[0] for m in METRICS.values() if all(m[0] in wins for wins, _ in verdicts.values())]
    parts = [f"{v} better on {' and '.join(wins) or 'nothing'}, worse on {' and '.join(losses) or 'nothing'}"
             for v, (wins, losses) in verdicts.items()]
    return [f"- {candidate}, voice by voice (the spread of folds and seeds alone): {'; '.join(parts)}; "
            f"better on every voice: {', '.join(every) or 'nothing'}."]


def verdict(by_candidate: dict[str, list[dict[str, Any]]], default: str = "Today's default") -> list[str]:
    """Each candidate against the default (`default` names it: today's, or the one of earlier rows' day)."""
    if BASELINE not in by_candidate:
        return [f"No verdict: {default[0].lower() + default[1:]} has no runs in this stage yet."]
    lines = []
    for c, runs in by_candidate.items():
        if c == BASELINE:
            continue
        mine, theirs = matched(runs, by_candidate[BASELINE])
        wins, losses = judged(mine, theirs)
        if wins or losses:
            lines.append(f"- {c}: better than the default on {', '.join(wins) or 'nothing'}; "
                         f"worse on {', '.join(losses) or 'nothing'} (differences beyond the spread, over the "
                         f"{len(mine)} runs whose voice, fold and seed the default has too).")
        lines += by_voice(c, mine, theirs)
        copiers = [r["key"] for r in runs if (r.get("copied_words_max") or 0) >= COPY_LIMIT]
        if copiers:
            lines.append(f"- {c}: copies {COPY_LIMIT} words or more of its training text in {', '.join(copiers)}.")
    if not lines and len(by_candidate) > 1:
        lines.append("- No candidate differs from the default by more than the spread on any measure.")
    def against_targets(runs: list[dict[str, Any]]) -> str:
        stats = candidate_stats(runs)
        parts = [f"{METRICS[k][0]} {fmt(stats[k][0], METRICS[k][1])} (target {fmt(t, METRICS[k][1])})"
                 for k, t in TARGETS.items()]
        copied = [r["copied_words_max"] for r in runs if is_finite(r.get("copied_words_max"))]
        if copied:
            parts.append(f"longest copied span {max(copied):.0f} words over {len(copied)} runs "
                         f"(target under {COPY_LIMIT})")
        return "; ".join(parts)

    lines.append(f"- {default}: {against_targets(by_candidate[BASELINE])}.")
    voices = sorted({r["voice"] for r in by_candidate[BASELINE]})
    if len(voices) > 1:  # a mean over voices can hide one that misses
        lines += [f"- {default} on {v} alone: "
                  f"{against_targets([r for r in by_candidate[BASELINE] if r['voice'] == v])}." for v in voices]
    return lines


def log_ratios(runs: list[dict[str, Any]]) -> list[float]:
    """log(adapter's words / writer's words) for each generated article and the writer's of the same title:
    in logs, twice as long and half as long are equally far from the writer. An empty reply counts as one
    word, so that it is the shortest article rather than no number at all."""
    return [math.log(max(a["words"], 1) / a["writer_words"]) for r in runs for a in r.get("length_articles") or []]


def length_bias(runs: list[dict[str, Any]]) -> tuple[float, float, int]:
    """(mean, spread, n) of the log ratios: the mean is how much longer or shorter the articles run than
    the writer's as a rule, the spread how much one article varies about that."""
    return summary(log_ratios(runs))


def pct(log_value: float) -> str:
    """A mean log ratio as the change it stands for: -0.53 -> "-41%" (rounded first, so never "-0%")."""
    return f"{round(100 * (math.exp(log_value) - 1)):+d}%"


def length_judgement(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    """'-42% against the default's +19%, worse' for two sets of runs: the one whose articles run further
    from the writer's length as a rule is worse when the difference exceeds the spread of either."""
    a, b = length_bias(mine), length_bias(theirs)
    off_a, off_b = (abs(a[0]), a[1], a[2]), (abs(b[0]), b[1], b[2])
    judgement = "worse" if beats(off_b, off_a, "lower") else "better" if beats(off_a, off_b, "lower") else "no different"
    return f"{pct(a[0])} against the default's {pct(b[0])}, {judgement}"


def length_table(runs: list[dict[str, Any]]) -> list[str]:
    """Article length per candidate and voice over the runs the `length` stage measured, and the verdict
    against the default on the same runs (pooled, then voice by voice); the spread is that of articles."""
    measured: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if r.get("length_articles"):
            measured.setdefault(r["candidate"], []).append(r)
    if not measured:
        return []
    order = [c for c in CANDIDATES if c in measured] + sorted(set(measured) - set(CANDIDATES))
    lines = ["### Article length (the `length` stage, for finalists)", "",
             f"`morris generate` on each held-out article's title (up to {LENGTH_MAX_TOKENS} tokens, or twice "
             "the words of a held-out article longer than that, seed "
             f"{LENGTH_SEED}), against the writer's own article of that title. Length: how much longer (+) or "
             "shorter (-) than the writer's the articles run as a rule (the mean of log(adapter's words / "
             "writer's words), shown as a change) ± the spread of one article about that (standard deviation "
             "of the logs); nearer 0 is better. Words are medians; ended on its own: the share of articles "
             "the model ended before the token limit.", "",
             "| recipe | voice | runs | articles | words | writer's words | length | ended on its own |",
             "|---|---|---|---|---|---|---|---|"]
    for c in order:
        for voice in sorted({r["voice"] for r in measured[c]}):
            mine = [r for r in measured[c] if r["voice"] == voice]
            articles = [a for r in mine for a in r["length_articles"]]
            mean, spread, n = length_bias(mine)
            ended = sum(a["finish_reason"] == "stop" for a in articles) / len(articles)
            lines.append(f"| {c} | {voice} | {len(mine)} | {n} | {statistics.median(a['words'] for a in articles):.0f} "
                         f"| {statistics.median(a['writer_words'] for a in articles):.0f} "
                         f"| {pct(mean)} ± {100 * spread:.0f}% | {ended:.2f} |")
    lines.append("")
    for c in order:
        if c == BASELINE or BASELINE not in measured:
            continue
        mine, theirs = matched(measured[c], measured[BASELINE])
        if not mine:
            continue
        voices = sorted({r["voice"] for r in mine})
        each = [f"{v} {length_judgement([r for r in mine if r['voice'] == v], [r for r in theirs if r['voice'] == v])}"
                for v in voices] if len(voices) > 1 else []
        lines.append(f"- {c}: length {length_judgement(mine, theirs)} beyond the spread, over the "
                     f"{len(mine)} run{'s' * (len(mine) != 1)} the default has too"
                     + (f"; voice by voice: {'; '.join(each)}." if each else "."))
    return [*lines, ""]


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def section(runs: list[dict[str, Any]], every_voice: list[str], default: str = "Today's default") -> list[str]:
    """The screen, the finals, the article lengths and every run, of rows trained under one set of
    defaults (`default` names their default in the verdicts)."""
    # The gloomy voice is the bundled screen's; a record of one's own articles has one voice.
    screen_voice = "morris" if "morris" in every_voice else (every_voice or ["morris"])[0]
    screen = [r for r in runs if r["voice"] == screen_voice and r["seed"] == 0]
    voices: dict[str, set[str]] = {}
    for r in runs:
        voices.setdefault(r["candidate"], set()).add(r["voice"])
    both = [r for r in runs if set(every_voice) <= voices[r["candidate"]]]
    finals = ("Both voices, every fold and seed" if len(every_voice) == 2 else
              "Every fold and seed" if len(every_voice) < 2 else f"All {len(every_voice)} voices, every fold and seed")
    out = [
        *stage_table(screen, f"Screen: the {screen_voice} voice, training seed 0, every fold", default),
        *stage_table(both, finals, default),
        *length_table(runs),
        "### Runs",
        "",
        "| run | writer drop | contrast drop | specificity | attributed (base -> adapter) | updates | best step "
        "| train s | longest copy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        name = f"{r['key']} (trained as {r['trained_as']})" if "trained_as" in r else r["key"]
        out.append(
            f"| {name} | {fmt(r['writer_change'], 'pct')} | {fmt(r['contrast_change'], 'pct')} "
            f"| {fmt(r['specificity'], 'ratio')} | {fmt(r['attribution_base'], 'ratio')} -> "
            f"{fmt(r['attribution_adapter'], 'ratio')} | {r['updates']} | {r['best_step']} "
            f"| {fmt(r['train_seconds'], 'seconds')} | {fmt(r.get('copied_words_max'), 'words')} |"
        )
    return [*out, ""]


def write_table(record: dict[str, Any]) -> str:
    runs, waiting = current(record["runs"]), len(record["runs"]) - len(current(record["runs"]))
    every_voice = list(dict.fromkeys(r["voice"] for r in runs))
    earlier = [(d, [r for r in runs if defaults_of(r) == d]) for d in sorted(EARLIER_DEFAULTS, reverse=True)]
    earlier = [(d, rows) for d, rows in earlier if rows]
    setup = record.get("setup", Setup().identity())
    articles = (f"`morris prepare --raw {' '.join(f['file'] for f in setup['raw'])} --fold F`" if setup["raw"]
                else "`morris prepare --voice V --fold F`")
    contrast = f"`{setup['contrast']['file']}`" if setup["contrast"] else "`bundled/contrast`"
    out = [
        "# Recipe sweep",
        "",
        f"Made by `scripts/recipe_sweep.py` from the rows of `{shown(RECORD)}` (never edited by hand). Each "
        f"run: {articles}, `morris train --seed S` with the recipe's flags (torch "
        f"backend, {'model ' + Path(setup['model']).name if setup['model'] else 'embedded default model'}), "
        f"`morris eval --prompts {EVAL_PROMPTS} "
        f"--max-tokens {EVAL_MAX_TOKENS} "
        "--seed 0` on the fold's default-prepared data (the same held-out articles and prompts for every "
        f"candidate) against {'the bundled contrast corpus' if not setup['contrast'] else contrast} (scoring "
        f"version {YARDSTICK}). Cells are mean ± "
        "standard deviation over runs; a candidate beats the default only where the difference of means exceeds the larger spread."
        + (" With both voices, the verdict is also given voice by voice, where the spread is that of folds and "
           "seeds alone (pooled, it also holds how differently the two voices move under any recipe)."
           if len(every_voice) > 1 else ""),
        "",
        "- writer drop: plain-text perplexity change on the fold's held-out articles (first 512 tokens).",
        f"- contrast drop: the same on other writing about the same topics ({contrast}).",
        "- specificity: writer drop / contrast drop (above 1: the adapter learned the writer more than the "
        "topics); `-` where the contrast perplexity did not drop, so there is no ratio (the two drops show "
        "which way each moved); a candidate's mean is then over its other runs, says so, and is not judged.",
        "- attributed: share of the adapter's replies to held-out prompts that the eval classifier (the writer "
        "against the contrast corpus and the base model's own replies to other prompts; "
        "docs/voice-yardstick.md) gives to the writer.",
        "- attributed vs base: the mean of that share over the mean of the base model's share for the same "
        "prompts and seeds.",
        "- train s: wall time of training on a shared 2-core machine; a rough guide.",
        "- longest copy: the longest word span of the adapter's replies found in its training articles.",
        "",
        *([f"{waiting} older rows were scored with an earlier yardstick and wait for `rescore`.", ""]
          if waiting else []),
    ]
    if not earlier:
        out += section(runs, every_voice)
    else:
        out += ["## Today's defaults", "",
                "Runs trained under today's defaults, and the runs of a candidate of earlier defaults that "
                "trained exactly as today's default does (each shown as the default's, with the run it was "
                "trained as).", "", *section(today(runs), every_voice)]
        for d, rows in earlier:
            out += [f"## Earlier defaults: {EARLIER_DEFAULTS[d].differ}", "",
                    "Runs trained before a default changed: each candidate's flags sat on these defaults, so it "
                    "is judged against the default of its day, and the verdicts' default is that one, not "
                    "today's.", "", *section(rows, every_voice, "The default then")]
    text = "\n".join(out).rstrip("\n") + "\n"
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text)
    return text


def measure_row(row: dict[str, Any] | None, candidate: str, voice: str, fold: int, seed: int,
                args: argparse.Namespace, defaults: int | None = None) -> None:
    """Add the article lengths to a scored run's row (its adapter must still be on disk)."""
    key, root = run_key(candidate, voice, fold, seed, defaults), REPO / args.out
    adapter = adapter_dir(root, candidate, voice, fold, seed, defaults)
    if row is None or row.get("yardstick") != YARDSTICK or not (adapter / "morris_adapter.json").is_file():
        print(f"{key}: skipped; the length stage measures scored runs whose adapter is in {adapter.parent}")
    elif "length_articles" not in row:
        data = prepared(voice, fold, root, CANDIDATES[BASELINE])
        save_row({**row, "length_articles": measure_length(adapter, data, args.backend)})


def checked_setup(args: argparse.Namespace, p: argparse.ArgumentParser) -> Setup:
    """The setup of the command line, each input read as the product reads it, so that a bad file is a
    one-line error before anything trains."""
    from morris_mlx.dataset.raw import read_raw
    from morris_mlx.errors import MorrisError
    from morris_mlx.evaluation.run import load_contrast

    if args.model and not (Path(args.model) / "config.json").is_file():
        p.error(f"--model {args.model} is not a model folder (no config.json); pass a converted or downloaded model")
    try:
        if args.raw:
            read_raw(args.raw)
        for texts in (args.contrast, args.others):
            if texts:
                load_contrast(Path(texts))
    except MorrisError as exc:
        p.error(str(exc))
    if args.others:
        from morris_mlx.paths import CONTRAST_DIR

        measured = Path(args.contrast).resolve() if args.contrast else CONTRAST_DIR.resolve()
        if Path(args.others).resolve() == measured:
            p.error(f"--others {args.others} is the set specificity is measured against; rejecting it would "
                    "measure the training, not the voice: pass other writers")
    return Setup(tuple(str(Path(f).resolve()) for f in args.raw or []),
                 args.contrast and str(Path(args.contrast).resolve()), args.model and str(Path(args.model).resolve()),
                 args.others and str(Path(args.others).resolve()))


def check_setup_of_runs(root: Path) -> None:
    """Refuse a runs folder whose data and adapters came from another setup (kept in its setup.json), so
    finished runs of other articles are never taken for this sweep's."""
    kept = root / "setup.json"
    if kept.is_file() and json.loads(kept.read_text()) != SETUP.identity():
        print(f"{root} holds runs of another setup (see {kept}); pass another --out", file=sys.stderr)
        raise SystemExit(2)
    if not kept.is_file() and SETUP != Setup():  # the bundled runs folder predates setup.json
        root.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(SETUP.identity(), indent=1) + "\n")


def use(setup: Setup, record: Path) -> None:
    """Point the sweep at `setup` and at `record` (its table beside it, as Markdown)."""
    global SETUP, RECORD, TABLE
    SETUP, RECORD, TABLE = setup, record, record.with_suffix(".md")


def find_run(candidate: str, voice: str, fold: int, seed: int, stage: str) -> tuple[dict[str, Any] | None, str, int]:
    """The run's row and what it was trained as (candidate, defaults): today's run; for the default,
    failing that, the earlier candidate that trained as today's default does; for `rescore` and `length`,
    failing those, the candidate's latest run under earlier defaults."""
    rows = {r["key"]: r for r in load_record()["runs"]}
    if (row := rows.get(run_key(candidate, voice, fold, seed))) is not None:
        return row, candidate, DEFAULTS
    earlier = sorted(EARLIER_DEFAULTS, reverse=True)
    for defaults in earlier:
        twin = EARLIER_DEFAULTS[defaults].as_today
        if candidate == BASELINE and twin and (row := rows.get(run_key(twin, voice, fold, seed, defaults))):
            return row, twin, defaults
    for defaults in earlier if stage in ("rescore", "length") else []:
        if (row := rows.get(run_key(candidate, voice, fold, seed, defaults))) is not None:
            return row, candidate, defaults
    return None, candidate, DEFAULTS


def sweep_one(candidate: str, voice: str, fold: int, seed: int, args: argparse.Namespace) -> None:
    """One run of the stage: trained and scored, rescored, or its lengths measured. Saved as soon as it is
    done, so a killed sweep loses at most one run."""
    row, trained_as, defaults = find_run(candidate, voice, fold, seed, args.stage)
    adapter = adapter_dir(REPO / args.out, trained_as, voice, fold, seed, defaults)
    if args.stage == "length":
        measure_row(row, trained_as, voice, fold, seed, args, defaults)
    elif to_do(row, args.stage):
        if defaults != DEFAULTS and trained_as == candidate and not (adapter / "morris_adapter.json").is_file():
            # Training it again would train it under today's defaults, not the ones its row records.
            print(f"{run_key(candidate, voice, fold, seed, defaults)}: skipped; it was trained under earlier "
                  f"defaults and its adapter is not in {adapter.parent}")
            return
        save_row(run_one(trained_as, voice, fold, seed, args, rescore=row is not None, defaults=defaults))
    elif row is not None:
        report = report_of(adapter)
        if (fuller := refreshed(row, report.with_suffix(".json"))) is not None:
            save_row(fuller)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["screen", "final", "rescore", "length", "table"])
    p.add_argument("--voices", help="comma list of bundled voices (default: morris); with --raw, the writer's name")
    p.add_argument("--folds", default="0,1,2")
    p.add_argument("--seeds", default="0")
    p.add_argument("--only", default=BASELINE, help="comma list of candidates: " + ", ".join(CANDIDATES))
    p.add_argument("--backend", default="torch")
    p.add_argument("--out", help="where data, adapters and reports go (default: runs/recipe-sweep; for --raw, "
                   "--contrast, --others or --model, runs/recipe-sweep-NAME-HASH)")
    p.add_argument("--raw", nargs="+", metavar="FILE", help="the writer's own articles (JSONL from `morris scrape`) "
                   "instead of the bundled voices; needs --record")
    p.add_argument("--contrast", metavar="PATH", help="other writers on the same topics, as `morris eval --contrast` "
                   "takes them (default: the bundled contrast corpus)")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the embedded default model)")
    p.add_argument("--others", metavar="PATH", help="other writers on the same topics whose openings orpo-others "
                   "rejects, as `morris pairs --rejected-from` takes them (default: the other bundled voice; "
                   "needed with --raw; never the --contrast set)")
    p.add_argument("--record", metavar="FILE", help=f"the rows, a JSON file; the table goes beside it as .md "
                   f"(default: {shown(RECORD)}, the bundled voices' record)")
    args = p.parse_args()
    if args.raw and not args.record:
        p.error("--raw needs --record FILE.json: rows of your own articles stay out of the bundled record in docs/")
    if args.raw and args.voices and "," in args.voices:
        p.error("with --raw there is one writer; pass --voices NAME (a name for the rows) or leave it out")
    if args.record and Path(args.record).suffix != ".json":
        p.error(f"--record {args.record}: name a .json file (the table is written beside it as .md)")
    setup = checked_setup(args, p)
    args.voices = args.voices or (Path(args.raw[0]).stem if args.raw else "morris")
    # A setup of its own gets a folder of its own: runs of other articles, contrast or model are never reused.
    tag = "" if setup == Setup() else f"-{args.voices}-{hashlib.sha256(repr(setup.identity()).encode()).hexdigest()[:8]}"
    args.out = str(Path(args.out).resolve()) if args.out else f"runs/recipe-sweep{tag}"
    use(setup, Path(args.record).resolve() if args.record else RECORD)
    try:
        record = load_record()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        p.error(f"{RECORD} is not JSON ({exc}); pass another --record")
    if not (isinstance(record, dict) and isinstance(record.get("runs"), list)):
        p.error(f"{RECORD} is not a sweep record (no list of runs); pass another --record")
    if args.stage != "table":
        check_setup(record)
        check_setup_of_runs(REPO / args.out)
        unknown = [c for c in args.only.split(",") if c not in CANDIDATES]
        if unknown:
            p.error(f"unknown candidates {unknown}; choose from {', '.join(CANDIDATES)}")
        for candidate in args.only.split(","):
            for voice in args.voices.split(","):
                for fold in (int(f) for f in args.folds.split(",")):
                    for seed in (int(s) for s in args.seeds.split(",")):
                        try:
                            sweep_one(candidate, voice, fold, seed, args)
                        except subprocess.CalledProcessError as exc:  # its own error is printed above
                            print(f"{run_key(candidate, voice, fold, seed)}: `morris {exc.cmd[3]}` exited with "
                                  f"{exc.returncode}; nothing recorded for this run", file=sys.stderr)
                            return 2
    print(write_table(load_record()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
