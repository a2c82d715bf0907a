"""`morris eval` end to end: score base and base + adapter on held-out perplexity and on the style of
text they generate from the same prompts with the same seeds, and assemble the report.

The base model is loaded once; the adapter is switched in with `set_adapter`, so the two phases share the
weights and each does its perplexity and generation work in one go.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from morris_mlx.backends.base import Backend, Generator
from morris_mlx.config import GenerateConfig
from morris_mlx.dataset.jsonl import load_split
from morris_mlx.errors import MorrisError
from morris_mlx.evaluation import attribution, base_cache, degeneration, markers, perplexity, stylometry
from morris_mlx.evaluation.report import measure
from morris_mlx.evaluation.text import chunk_words, strip_headings, truncate_words, words
from morris_mlx.paths import PROMPTS_DIR

log = logging.getLogger("morris")

Messages = list[dict[str, str]]
Progress = Callable[[str, int, int], None]
OFFTOPIC_FILE = PROMPTS_DIR / "eval_topics.txt"
MAX_OFFTOPIC = 3
MAX_WRITER_CHUNKS = 400
MAX_CONTRAST_PPL = 50
MIN_CHUNK_WORDS = 50
# Below this cross-validated balanced accuracy the classifier is too close to a coin toss for its
# attributions to mean anything; the report then shows them without a verdict.
MIN_CV_ACCURACY = 0.75
# Batched decoding: on 2 CPU cores six 96-token replies took 101 s in one batch against 161 s one by one.
GENERATE_BATCH = 6
VOICE_SEED_OFFSET = 10_000  # the classifier's base-model replies draw apart from the scored ones
# How many base-model replies teach the classifier the base model's voice: six (one per scored prompt)
# against 132 contrast passages left it giving the base model's replies to the writer half the time or
# more (docs/voice-yardstick.md).
VOICE_REPLIES = 24


@dataclass
class EvalOptions:
    adapter_path: Path
    model_dir: Path
    data_dir: Path
    backend: str = "auto"
    trust_remote_code: bool = False
    seed: int = 0
    max_tokens: int = 300
    prompts: int = 12
    contrast: Path | None = None
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    max_length: int = 2048  # longest sequence scored for perplexity, in tokens
    offtopic_file: Path = OFFTOPIC_FILE
    markers_file: Path | None = None
    cache: bool = True  # reuse the base model's results of an earlier eval with the same inputs (base_cache)


@dataclass
class Prompt:
    label: str
    kind: str  # "held-out" or "off-topic"
    messages: Messages


def load_offtopic(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MorrisError(f"off-topic prompt file {path} is missing; reinstall morris_mlx") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def build_prompts(
    heldout: Sequence[Messages], offtopic: Sequence[str], total: int, repeat: bool = True
) -> list[Prompt]:
    """Up to `total` prompts: a quarter (at most 3) off-topic, the rest held-out instructions.

    Held-out prompts are the test (then validation) split's own system and user turns, so the adapter is
    asked exactly as it was trained; off-topic ones reuse the first held-out system prompt. When the
    held-out splits are smaller than their share and `repeat` (sampling, not greedy decoding), every
    held-out prompt is asked the same number of times, each ask with its own seed: the attribution
    classifier is only trusted on the writer's topics, so the held-out replies are the ones it scores
    (see _attribution).
    """
    n_off = min(len(offtopic), MAX_OFFTOPIC, total // 4 if total >= 4 else 0)
    n_held = total - n_off if heldout else 0
    if n_held > len(heldout):
        n_held = len(heldout) * (n_held // len(heldout) if repeat else 1)
    n_off = min(len(offtopic), total - n_held, MAX_OFFTOPIC if heldout else total)
    asked = [heldout[i % len(heldout)][:-1] for i in range(n_held)]
    prompts = [Prompt(m[-1]["content"], "held-out", [dict(x) for x in m]) for m in asked]
    system = [dict(heldout[0][0])] if heldout and heldout[0][0]["role"] == "system" else []
    prompts += [Prompt(line, "off-topic", system + [{"role": "user", "content": line}]) for line in offtopic[:n_off]]
    return prompts


def load_contrast(path: Path) -> list[str]:
    """Texts of a contrast corpus: a folder of Markdown articles (the bundled corpus format), JSONL with
    "messages" (assistant turn), "body" or "text" per line, or a plain text file with documents separated
    by lines of three dashes."""
    if path.is_dir():
        from morris_mlx.dataset.corpus import read_corpus

        return [f"# {a.title}\n\n{a.text}" for a in read_corpus(path)]
    if not path.is_file():
        raise MorrisError(f"contrast corpus {path} does not exist; pass a JSONL or text file to --contrast")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MorrisError(f"contrast corpus {path} is not UTF-8 text") from None
    texts: list[str] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MorrisError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            text = None
            if isinstance(row, dict):
                if isinstance(row.get("messages"), list) and row["messages"]:
                    text = row["messages"][-1].get("content")
                else:
                    text = row.get("body") or row.get("text")
            if not isinstance(text, str):
                raise MorrisError(f"{path} line {number}: expected an object with 'messages', 'body' or 'text'")
            texts.append(text)
    else:
        texts = [block.strip() for block in raw.split("\n---\n")]
    texts = [t for t in texts if words(t)]
    if not texts:
        raise MorrisError(f"contrast corpus {path} holds no text")
    return texts


@dataclass
class Generation:
    text: str
    tokens: int
    finish_reason: str | None
    seconds: float


def generate_all(
    generator: Generator, prompts: Sequence[Prompt], settings: GenerateConfig, seed: int,
    progress: Progress, stage: str, batch_size: int = GENERATE_BATCH,
) -> list[Generation]:
    """One sample per prompt, decoded in batches; prompt i always uses seed + i, so base and adapter draw
    alike. A row's seconds are its batch's time shared out."""
    progress(stage, 0, len(prompts))
    results: dict[int, Any] = {}
    started = time.perf_counter()
    per_row = [replace(settings, seed=seed + i) for i in range(len(prompts))]
    for index, result in generator.generate_batch([p.messages for p in prompts], per_row, batch_size):
        results[index] = result
        progress(stage, len(results), len(prompts))
    seconds = (time.perf_counter() - started) / max(1, len(prompts))
    return [
        Generation(
            text=results[i].text.strip(),
            tokens=results[i].generation_tokens,
            finish_reason=results[i].finish_reason,
            seconds=seconds,
        )
        for i in range(len(prompts))
    ]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


@dataclass
class PerplexityPhase:
    writer: perplexity.PerplexityResult  # the held-out articles as chat turns, as the model was trained
    writer_text: perplexity.PerplexityResult  # the same articles as plain text
    contrast: perplexity.PerplexityResult | None  # other writing on the same topics, as plain text


@dataclass
class BasePhase:
    """What the base model contributes to a report: the same for every adapter on the same inputs."""

    replies: list[Generation]
    seconds: float
    voice_replies: list[Generation]
    perplexity: PerplexityPhase

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, entry: dict[str, Any] | None) -> BasePhase | None:
        if entry is None:
            return None
        try:
            ppl = {k: perplexity.PerplexityResult(**v) if v is not None else None
                   for k, v in entry["perplexity"].items()}
            return cls(
                replies=[Generation(**g) for g in entry["replies"]],
                seconds=float(entry["seconds"]),
                voice_replies=[Generation(**g) for g in entry["voice_replies"]],
                perplexity=PerplexityPhase(**ppl),
            )
        except (KeyError, TypeError, AttributeError, ValueError):
            log.warning("a cached base-model result has another shape; computing it again")
            return None


def _perplexities(
    generator: Generator, test: Sequence[Messages], contrast: Sequence[str], max_length: int,
    progress: Progress, stage: str,
) -> PerplexityPhase:
    progress(f"{stage}: perplexity", 0, 1)
    result = PerplexityPhase(
        writer=perplexity.perplexity(generator, test, max_length),
        writer_text=perplexity.text_perplexity(generator, [m[-1]["content"] for m in test]),
        contrast=perplexity.text_perplexity(generator, contrast) if contrast else None,
    )
    progress(f"{stage}: perplexity", 1, 1)
    return result


def _base_phase(
    generator: Generator, options: EvalOptions, prompts: Sequence[Prompt], voice: Sequence[Prompt],
    settings: GenerateConfig, test: Sequence[Messages], contrast: Sequence[str], progress: Progress,
) -> tuple[BasePhase, bool]:
    """The base model's replies and perplexities, from an earlier eval with the same inputs when there is
    one (and `options.cache`); whether they came from there. Computed results are kept either way, so
    `--no-cache` also replaces an entry the user distrusts."""
    key = base_cache.cache_key(generator, options.model_dir, {
        "prompts": [p.messages for p in prompts], "voice_prompts": [p.messages for p in voice],
        "settings": asdict(settings), "seed": options.seed, "test": list(test), "contrast": list(contrast),
        "max_length": options.max_length,
    })
    cached = BasePhase.from_json(base_cache.load(key)) if options.cache else None
    if cached is not None:
        log.info("base model: replies and perplexities of an earlier eval with the same model, data and settings")
        return cached, True
    t0 = time.perf_counter()
    replies = generate_all(generator, prompts, settings, options.seed, progress, "base: generating")
    seconds = time.perf_counter() - t0
    voice_replies = generate_all(generator, voice, settings, options.seed + VOICE_SEED_OFFSET, progress,
                                 "base: replies to training prompts, for the classifier")
    ppl = _perplexities(generator, test, contrast, options.max_length, progress, "base")
    base = BasePhase(replies, seconds, voice_replies, ppl)
    base_cache.save(key, base.to_json())
    return base, False


def _log_progress(stage: str, done: int, total: int) -> None:
    if done < total:
        log.info("%s (%d/%d)", stage, done + 1, total)


def run_eval(options: EvalOptions, backend: Backend | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Evaluate the adapter; returns the report dict (see report.py for how it is rendered)."""
    progress = progress or _log_progress
    started = time.perf_counter()
    train = [ex["messages"] for ex in load_split(options.data_dir, "train")]
    test = [ex["messages"] for ex in load_split(options.data_dir, "test")]
    valid = [ex["messages"] for ex in load_split(options.data_dir, "valid")] \
        if (options.data_dir / "valid.jsonl").is_file() else []
    if len(train) < 2:
        raise MorrisError(f"{options.data_dir}/train.jsonl has {len(train)} example; eval needs at least 2")
    corpus = [m[-1]["content"] for m in train]
    heldout_texts = [m[-1]["content"] for m in test]
    greedy = options.generate.temp <= 0  # a repeated prompt would give the same reply again
    prompts = build_prompts(test + valid, load_offtopic(options.offtopic_file), options.prompts, not greedy)
    contrast_texts = load_contrast(options.contrast) if options.contrast else []
    lists = markers.load_markers(options.markers_file)
    settings = replace(options.generate, max_tokens=options.max_tokens, system_prompt=None, time_limit=None)
    contrast_ppl_texts = contrast_texts[:MAX_CONTRAST_PPL]

    if backend is None:
        from morris_mlx.backends import get_backend

        backend = get_backend(options.backend, trust_remote_code=options.trust_remote_code)
    progress("loading the base model", 0, 1)
    generator = backend.load(options.model_dir, adapter_path=None)
    base, cached = _base_phase(generator, options, prompts, voice_prompts(train, max(VOICE_REPLIES, len(prompts))),
                               settings, test, contrast_ppl_texts, progress)
    base_gen, base_seconds, voice_gen, base_ppl = base.replies, base.seconds, base.voice_replies, base.perplexity

    progress("switching in the adapter", 0, 1)
    generator.set_adapter(options.adapter_path)
    adapter_ppl = _perplexities(generator, test, contrast_ppl_texts, options.max_length, progress, "adapter")
    t0 = time.perf_counter()
    adapter_gen = generate_all(generator, prompts, settings, options.seed, progress, "adapter: generating")
    adapter_seconds = time.perf_counter() - t0

    progress("scoring style", 0, 1)
    base_texts = [g.text for g in base_gen]
    adapter_texts = [g.text for g in adapter_gen]
    voice_texts = [g.text for g in voice_gen]
    scores = score_style(
        corpus, heldout_texts, base_texts, adapter_texts, contrast_texts, lists, options.seed, voice_texts,
        on_topic=[p.kind == "held-out" for p in prompts],
    )
    progress("scoring style", 1, 1)

    report = assemble(
        options, backend_name=getattr(generator, "backend", getattr(backend, "name", "?")),
        prompts=prompts, base_gen=base_gen, adapter_gen=adapter_gen, base_ppl=base_ppl, adapter_ppl=adapter_ppl,
        scores=scores, n_train=len(train), n_test=len(test), contrast_n=len(contrast_texts),
    )
    report["meta"]["seconds"] = time.perf_counter() - started
    report["meta"]["base_cached"] = cached
    report["timing"] = {
        "base_generation_s": base_seconds,
        "adapter_generation_s": adapter_seconds,
        "base_tokens": sum(g.tokens for g in base_gen),
        "adapter_tokens": sum(g.tokens for g in adapter_gen),
    }
    return report


def voice_prompts(train: Sequence[Messages], n: int) -> list[Prompt]:
    """`n` training prompts spread over the train split (cycling when it has fewer; each reply draws its
    own seed), for base-model replies that teach the classifier the base model's own voice; never the
    prompts whose replies it scores."""
    picked = [train[i * len(train) // n] if n <= len(train) else train[i % len(train)] for i in range(n)]
    return [Prompt(m[-2]["content"], "train", [dict(x) for x in m[:-1]]) for m in picked]


def score_style(
    corpus: Sequence[str], heldout: Sequence[str], base: Sequence[str], adapter: Sequence[str],
    contrast: Sequence[str], lists: markers.MarkerLists, seed: int, base_voice: Sequence[str] = (),
    on_topic: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Every text-level score for the base outputs, the adapter outputs and the writer's held-out articles.

    The held-out articles, and the passages the classifier learns from, are cut to the median length of
    the base model's replies, so length-sensitive measures (Delta, distinct-n, shared spans) compare like
    with like. Only the base model's half sets that length: it is the same for every adapter evaluated on
    the same inputs, so all of them are judged by the same classifier and the base model's share does not
    move with the adapter (docs/voice-yardstick.md). Markdown headings are dropped everywhere: whether a
    model opens with a title is a formatting habit the classifier would otherwise latch onto.
    """
    corpus, heldout, base, adapter, contrast, base_voice = (
        [strip_headings(t) for t in texts] for texts in (corpus, heldout, base, adapter, contrast, base_voice)
    )
    lengths = [len(t.split()) for t in base if t.split()]
    length = max(MIN_CHUNK_WORDS, int(statistics.median(lengths))) if lengths else 200
    reference = [truncate_words(t, length) for t in heldout]
    sets = {"base": list(base), "adapter": list(adapter), "reference": reference}

    delta_model = stylometry.DeltaModel.fit(corpus)
    corpus_profile = stylometry.char_profile(corpus)
    spans = degeneration.SpanIndex(corpus)
    out: dict[str, Any] = {"length_words": length, "delta_words": len(delta_model.vocabulary)}
    for name, texts in sets.items():
        span = [spans.longest(t) for t in texts]
        longest = max(span, key=lambda s: s.length, default=None)
        out[name] = {
            "delta": _mean([delta_model.delta_to_corpus(t) for t in texts]),
            "char_distance": _mean(
                [stylometry.profile_distance(stylometry.char_profile(t), corpus_profile) for t in texts]
            ),
            "distinct_2": _mean([degeneration.distinct_n(t, 2) for t in texts]),
            "distinct_3": _mean([degeneration.distinct_n(t, 3) for t in texts]),
            "repeated_4gram": _mean([degeneration.repeated_ngram_share(t, 4) for t in texts]),
            "shared_span_mean": _mean([s.length for s in span]),
            "shared_span_max": float(longest.length) if longest else float("nan"),
            "shared_span_text": longest.text if longest else "",
            "markers": markers.marker_rates(texts, lists),
            "words": _mean([len(words(t)) for t in texts]),
        }
    out["corpus_markers"] = markers.marker_rates(corpus, lists)
    out["heldout_markers"] = markers.marker_rates(heldout, lists)
    out["attribution"] = _attribution(
        corpus, reference, base, adapter, contrast, base_voice, length, seed,
        [True] * len(base) if on_topic is None else list(on_topic),
    )
    return out


def _attribution(
    corpus: Sequence[str], reference: Sequence[str], base: Sequence[str], adapter: Sequence[str],
    contrast: Sequence[str], base_voice: Sequence[str], length: int, seed: int, on_topic: Sequence[bool],
) -> dict[str, Any]:
    """Writer vs not the writer: other writing on the same topics (contrast) and the base model's own
    replies to training prompts, each source half of the "not" side. Trained on writer vs contrast alone,
    the classifier gave the base model's replies 67-100% to the bundled writer (docs/voice-yardstick.md):
    a model's prose sits closer to a columnist than newswire does, so "attributed more often than the base
    model" could hardly move. The replies it scores (to held-out prompts) are never among those it learns.

    Shares are taken over the replies to held-out prompts (`on_topic`; none: no shares at all): every text
    the classifier learns from is on the writer's topics, and off-topic replies, base and adapter alike,
    fell on either side by their subject (docs/voice-yardstick.md). Off-topic shares are reported apart."""
    writer = [c for text in corpus for c in chunk_words(text, length)]
    if len(writer) > MAX_WRITER_CHUNKS:
        keep = np.sort(np.random.default_rng(seed).choice(len(writer), MAX_WRITER_CHUNKS, replace=False))
        writer = [writer[i] for i in keep]
    contrast_chunks = [c for text in contrast for c in chunk_words(text, length)]
    voice = [t for t in base_voice if len(words(t)) >= 5]  # near-empty replies carry no style
    generic = voice + contrast_chunks
    groups = ["base model"] * len(voice) + ["contrast"] * len(contrast_chunks)
    sources = " and ".join(
        part for part in (
            f"{len(voice)} base-model replies to training prompts" if voice else "",
            f"{len(contrast_chunks)} contrast passages" if contrast_chunks else "",
        ) if part
    )
    try:
        model = attribution.fit_attributor(writer, generic, seed=seed, generic_groups=groups)
    except ValueError as exc:
        return {"available": False, "reason": str(exc)}
    base_all, adapter_all = model.prob_writer(list(base)), model.prob_writer(list(adapter))
    scored = np.asarray(on_topic, dtype=bool)
    if scored.shape != base_all.shape or not scored.any():
        return {"available": False, "reason": "no replies to held-out prompts to score"}
    base_p, adapter_p = base_all[scored], adapter_all[scored]
    reference_p = model.prob_writer(list(reference))
    return {
        "available": True,
        "reliable": model.cv_accuracy >= MIN_CV_ACCURACY,
        "writer_texts": model.n_writer,
        "generic_texts": model.n_generic,
        "generic_sources": sources,
        "l2": model.l2,
        "max_features": model.max_features,
        "folds": model.folds,
        "cv_accuracy": model.cv_accuracy,
        "cv_log_loss": model.cv_log_loss,
        "base_share": _attributed_share(base_p),
        "adapter_share": _attributed_share(adapter_p),
        "reference_share": _attributed_share(reference_p),
        "base_mean_prob": _mean(base_p),
        "adapter_mean_prob": _mean(adapter_p),
        "reference_mean_prob": _mean(reference_p),
        "base_prob": base_all.tolist(),
        "adapter_prob": adapter_all.tolist(),
        "scored": int(scored.sum()),
        "offtopic_base_share": _attributed_share(base_all[~scored]),
        "offtopic_adapter_share": _attributed_share(adapter_all[~scored]),
    }


def _attributed_share(probs: np.ndarray) -> float:
    return float((probs >= 0.5).mean()) if len(probs) else float("nan")


def assemble(
    options: EvalOptions, backend_name: str, prompts: Sequence[Prompt], base_gen: Sequence[Generation],
    adapter_gen: Sequence[Generation], base_ppl: PerplexityPhase, adapter_ppl: PerplexityPhase,
    scores: dict[str, Any], n_train: int, n_test: int, contrast_n: int,
) -> dict[str, Any]:
    """The report dict: metadata, the measures table, and the details behind it."""
    base, adapter, ref = scores["base"], scores["adapter"], scores["reference"]
    attr = scores["attribution"]
    held = "writer's held-out"
    ms = [
        measure("ppl_writer", "Perplexity", "Writer's held-out articles", "perplexity on the test split's "
                "article tokens", base_ppl.writer.perplexity, adapter_ppl.writer.perplexity, "lower"),
        measure("ppl_writer_text", "Perplexity", "Writer's held-out articles, plain text", "perplexity on "
                f"the first {perplexity.TEXT_TOKENS} tokens of each, no chat template",
                base_ppl.writer_text.perplexity, adapter_ppl.writer_text.perplexity, "lower"),
    ]
    if base_ppl.contrast is not None and adapter_ppl.contrast is not None:
        ms.append(measure("ppl_contrast", "Perplexity", "Other writers on the same topics (contrast)",
                          f"plain-text perplexity on the contrast corpus, first {perplexity.TEXT_TOKENS} tokens; "
                          "should fall much less than the writer's", base_ppl.contrast.perplexity,
                          adapter_ppl.contrast.perplexity, "info"))
    ms += [
        measure("delta", "Stylometry", "Burrows' Delta to the corpus", f"mean over generated texts, "
                f"{scores['delta_words']} most frequent words", base["delta"], adapter["delta"], "lower",
                ref["delta"], held),
        measure("char_distance", "Stylometry", "Character 3-gram distance", "Kešelj CNG to the corpus profile, "
                "mean over texts", base["char_distance"], adapter["char_distance"], "lower",
                ref["char_distance"], held),
    ]
    judged = "higher" if attr.get("reliable") else "info"
    caveat = "" if attr.get("reliable") or not attr.get("available") else (
        f" (not judged: the classifier's cross-validated accuracy is only {100 * attr['cv_accuracy']:.0f}%)"
    )
    ms += [
        measure("attributed", "Stylometry", "Attributed to the writer", "share of generated texts the "
                "classifier assigns to the writer (replies to held-out prompts)" + caveat, attr.get("base_share"), attr.get("adapter_share"),
                judged, attr.get("reference_share"), held, unit="share"),
        measure("attribution_prob", "Stylometry", "Writer probability", "classifier's mean P(writer) over replies to held-out prompts"
                "generated texts" + caveat, attr.get("base_mean_prob"), attr.get("adapter_mean_prob"), judged,
                attr.get("reference_mean_prob"), held),
    ]
    for info in markers.MARKERS:
        ms.append(measure(info.key, "Style markers", info.label, info.meaning, base["markers"][info.key],
                          adapter["markers"][info.key], "closer", scores["corpus_markers"][info.key],
                          "writer's corpus", unit=info.unit))
    ms += [
        measure("distinct_2", "Degeneration", "Distinct bigrams", "unique word pairs / all word pairs, "
                "mean per text", base["distinct_2"], adapter["distinct_2"], "closer", ref["distinct_2"], held),
        measure("distinct_3", "Degeneration", "Distinct trigrams", "unique word triples / all, mean per text",
                base["distinct_3"], adapter["distinct_3"], "closer", ref["distinct_3"], held),
        measure("repeated_4gram", "Degeneration", "Repeated 4-grams", "share of 4-word sequences repeating "
                "an earlier one in the same text", base["repeated_4gram"], adapter["repeated_4gram"], "closer",
                ref["repeated_4gram"], held),
        measure("shared_span", "Degeneration", "Longest span copied from training", "longest run of words "
                "shared with any training article, mean per text", base["shared_span_mean"],
                adapter["shared_span_mean"], "lower", ref["shared_span_mean"], held, unit="words"),
    ]

    def voice_block() -> dict[str, Any] | None:
        if base_ppl.contrast is None or adapter_ppl.contrast is None:
            return None
        writer = perplexity.relative_change(base_ppl.writer_text.perplexity, adapter_ppl.writer_text.perplexity)
        contrast = perplexity.relative_change(base_ppl.contrast.perplexity, adapter_ppl.contrast.perplexity)
        return {"writer_change": writer, "contrast_change": contrast,
                "specificity": perplexity.specificity(writer, contrast)}

    def ppl_block(name: str) -> dict[str, Any] | None:
        b, a = getattr(base_ppl, name), getattr(adapter_ppl, name)
        if b is None or a is None:
            return None
        return {"base": b.perplexity, "adapter": a.perplexity,
                "change": perplexity.relative_change(b.perplexity, a.perplexity),
                "base_detail": b.to_json(), "adapter_detail": a.to_json()}

    settings = options.generate
    return {
        "version": 1,
        "meta": {
            "adapter_name": options.adapter_path.name,
            "adapter_path": str(options.adapter_path),
            "model_dir": str(options.model_dir),
            "data_dir": str(options.data_dir),
            "backend": backend_name,
            "seed": options.seed,
            "max_tokens": options.max_tokens,
            "temp": settings.temp,
            "top_p": settings.top_p,
            "repetition_penalty": settings.repetition_penalty,
            "prompts": len(prompts),
            "heldout_prompts": sum(p.kind == "held-out" for p in prompts),
            "heldout_distinct": len({p.label for p in prompts if p.kind == "held-out"}),
            "offtopic_prompts": sum(p.kind == "off-topic" for p in prompts),
            "train_articles": n_train,
            "test_articles": n_test,
            "contrast_texts": contrast_n,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": 0.0,
        },
        "measures": ms,
        "perplexity": {k: v for k in ("writer", "writer_text", "contrast") if (v := ppl_block(k)) is not None},
        "voice": voice_block(),
        "attribution": attr,
        "style": {k: scores[k] for k in ("base", "adapter", "reference", "corpus_markers", "heldout_markers",
                                         "length_words")},
        "samples": [
            {"prompt": p.label, "kind": p.kind, "base": b.text, "adapter": a.text,
             "base_finish": b.finish_reason, "adapter_finish": a.finish_reason}
            for p, b, a in zip(prompts, base_gen, adapter_gen, strict=True)
        ],
    }
