"""`morris prepare` end to end: read -> clean -> drop general (optional) -> de-duplicate -> instruct and
cut to the token limit -> split -> write. Everything is computed in memory first, so bad input stops
the run before a single file is written."""

from __future__ import annotations

import logging
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from morris_mlx.atomic import atomic_dir, file_digests, write_json, write_jsonl
from morris_mlx.config import CONFIG_FILENAME, Config, write_config
from morris_mlx.dataset.article import Article
from morris_mlx.dataset.chat import Example, TooLong, build_examples
from morris_mlx.dataset.clean import clean_article
from morris_mlx.dataset.corpus import read_corpus
from morris_mlx.dataset.dedupe import dedupe
from morris_mlx.dataset.instructions import Instructions, load_instructions
from morris_mlx.dataset.jsonl import SPLITS
from morris_mlx.dataset.raw import read_raw
from morris_mlx.dataset.split import split_articles
from morris_mlx.dataset.stats import build_stats
from morris_mlx.dataset.tokens import TokenCounter, load_token_counter
from morris_mlx.errors import MorrisError
from morris_mlx.paths import BUNDLED_DIR, voice_dir
from morris_mlx.prompts import check_voice, load_system_prompt

log = logging.getLogger("morris")

STATS_FILENAME = "stats.json"
# Cleaning and cutting are linear but slow per character; nothing a columnist writes comes near this.
MAX_ARTICLE_CHARS = 500_000
OUTPUT_FILES = tuple(f"{s}.jsonl" for s in SPLITS) + (STATS_FILENAME, CONFIG_FILENAME)


@dataclass(frozen=True)
class Prepared:
    examples: dict[str, list[Example]]
    stats: dict[str, Any]


def _shown(path: Path) -> str:
    """A bundled corpus as `bundled/...` (the same wherever the package is installed); others as given."""
    try:
        return "bundled/" + str(path.resolve().relative_to(BUNDLED_DIR.resolve()))
    except ValueError:
        return str(path)


def _drop(article: Article, reason: str, duplicate_of: Article | None = None) -> dict[str, str]:
    item = {"id": article.id, "origin": article.origin, "reason": reason}
    if duplicate_of is not None:
        item["duplicate_of"] = duplicate_of.id
    return item


def prepare(
    cfg: Config,
    model_dir: str | Path | None = None,
    *,
    corpus_dir: str | Path | None = None,
    counter: TokenCounter | None = None,
) -> Prepared:
    """Training examples per split and their stats, from `cfg.data` (raw files, or the corpus).

    Tokens are measured with `counter`, else the tokenizer in `model_dir`, else that of the model
    `cfg.model` resolves to (--model, the configured base if local, the embedded default).
    """
    data = cfg.data
    voice = check_voice(data.voice)
    if data.raw:
        articles = read_raw(data.raw)
        sources = list(data.raw)
    else:
        corpus = Path(corpus_dir) if corpus_dir else voice_dir(voice)
        articles = read_corpus(corpus)
        sources = [_shown(corpus)]
    system = load_system_prompt(voice=voice)
    instructions = load_instructions()
    if counter is None:
        if model_dir is None:
            # Resolved only now, so that bad input files are reported before a missing model.
            from morris_mlx.models.resolve import resolve_model

            model_dir = resolve_model(cfg.model)
        counter = load_token_counter(model_dir, cfg.model.trust_remote_code)

    dropped: list[dict[str, str]] = []
    removed: Counter = Counter()
    cleaned: list[Article] = []
    for article in articles:
        if len(article.text) > MAX_ARTICLE_CHARS:
            log.warning(
                "%s: dropped; %s characters is no article (a book, or a page parsed wrongly)",
                article.origin,
                f"{len(article.text):,}",
            )
            dropped.append(_drop(article, "too_large"))
            continue
        result, reason = clean_article(article, data.min_words)
        if result is None:
            dropped.append(_drop(article, reason or "unknown"))
        elif result.kind == "general" and not data.include_general:
            dropped.append(_drop(result, "general_excluded"))
        else:
            removed.update(result.removed)
            cleaned.append(result)

    kept, duplicates = dedupe(cleaned)
    dropped += [_drop(article, reason, original) for article, reason, original in duplicates]

    built: dict[str, list[Example]] = {}
    for article in kept:
        instruction = instructions.choose(article, data.seed)
        try:
            built[article.id] = build_examples(
                article, instruction, system, instructions, counter, data.max_seq_length
            )
        except TooLong as exc:
            log.warning(
                "%s: dropped; the sentence %r... alone exceeds %d tokens",
                article.origin,
                str(exc),
                data.max_seq_length,
            )
            dropped.append(_drop(article, "sentence_too_long"))
    for item in dropped:
        log.debug("dropped %s (%s): %s", item["id"], item["origin"], item["reason"])

    splits = split_articles(
        [a for a in kept if a.id in built], data.seed, data.valid_fraction, data.test_fraction, data.fold
    )
    examples = {s: [e for a in splits[s] for e in built[a.id]] for s in SPLITS}
    if data.train_parts:
        examples["train"] += _parts_beside(
            splits["train"], data.train_parts, data.parts_per_article, data.seed, system, instructions, counter
        )
    settings = {
        "sources": sources,
        "voice": data.voice if not data.raw else None,
        "seed": data.seed,
        "fold": data.fold,
        "max_seq_length": data.max_seq_length,
        "train_parts": data.train_parts,
        "parts_per_article": data.parts_per_article,
        "open_parts": data.open_parts,
        "min_words": data.min_words,
        "include_general": data.include_general,
        "valid_fraction": data.valid_fraction,
        "test_fraction": data.test_fraction,
        "tokenizer": counter.source,
    }
    stats = build_stats(
        splits=splits,
        examples=examples,
        read=len(articles),
        dropped=dropped,
        removed_paragraphs=removed,
        settings=settings,
    )
    return Prepared(examples, stats)


def _parts_beside(
    articles: list[Article],
    limit: int,
    most: int,
    seed: int,
    system: str,
    instructions: Instructions,
    counter: TokenCounter,
) -> list[Example]:
    """More examples from the same text: each training article longer than `limit` tokens cut into parts
    of at most `limit`, each asked for as "part k of n", so the whole article stays the example of what a
    whole-article prompt gets (its length and its ending) while the parts add examples of the voice.
    `most` (0: all) keeps that many parts of each article, picked at random with the seed and the
    article's id, so which parts are kept does not change when other articles come or go."""
    extras: list[Example] = []
    for article in articles:
        instruction = instructions.choose(article, seed)
        try:
            parts = build_examples(article, instruction, system, instructions, counter, limit)
        except TooLong as exc:
            log.warning("%s: no parts beside the whole; the sentence %r... alone exceeds %d tokens",
                        article.origin, str(exc), limit)
            continue
        except MorrisError:
            raise MorrisError(
                f"--train-parts {limit} leaves no room for an article after the prompt; "
                "raise it (512 is a good start) or set 0 to train on whole articles only"
            ) from None
        if len(parts) > 1:
            if most and len(parts) > most:
                kept = random.Random(f"{seed}/{article.id}").sample(range(len(parts)), most)
                parts = [parts[i] for i in sorted(kept)]
            extras += [replace(part, extra=True) for part in parts]
    return extras


def record(example: Example, open_parts: bool) -> dict[str, Any]:
    """The JSONL record of an example; with `open_parts`, a part that does not end its article is marked
    to continue, so training leaves its reply open (mlx-lm itself ignores the key)."""
    if open_parts and example.part < example.parts:
        return {"messages": example.messages, "continues": True}
    return {"messages": example.messages}


def _write_all(directory: Path, prepared: Prepared, cfg: Config) -> None:
    for split in SPLITS:
        write_jsonl(
            directory / f"{split}.jsonl",
            [record(e, cfg.data.open_parts) for e in prepared.examples[split]],
        )
    # Sizes and hashes of the splits as written, so a later reader can tell a damaged file (load_split).
    files = file_digests(directory, [f"{split}.jsonl" for split in SPLITS])
    write_json(directory / STATS_FILENAME, {**prepared.stats, "files": files})
    write_config(
        cfg, directory, extra={"command": "prepare", "tokenizer": prepared.stats["settings"]["tokenizer"]}
    )


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link every other file of `old` into `new` (same inodes: nothing copied, nothing lost when
    `old` is removed after the swap). Where a link cannot be made (another file system, a mount point
    inside) the folder is refused rather than copied, as removing `old` would then reach into it."""
    shutil.copymode(old, new)
    for item in old.iterdir():
        if item.name in OUTPUT_FILES:
            continue
        try:
            if item.is_dir() and not item.is_symlink():
                for folder, _, _ in os.walk(item):
                    if os.path.ismount(folder):
                        raise OSError(f"{folder} is a mount point")
                shutil.copytree(item, new / item.name, symlinks=True, copy_function=os.link)
            elif item.is_symlink():
                os.symlink(os.readlink(item), new / item.name)
            else:
                os.link(item, new / item.name)
        except (OSError, shutil.Error) as exc:
            raise MorrisError(
                f"--out {old} holds {item.name}, which cannot be kept across the rewrite ({exc}); "
                "give the prepared data a folder of its own"
            ) from None


def write_prepared(prepared: Prepared, out: str | Path, cfg: Config) -> Path:
    """Write the splits, stats.json and morris_config.json into `out`.

    The folder is replaced as a whole, so readers see the old set or the new one, never a mix (a test
    article of one split in the train file of another). Other files already in it are carried over as
    hard links, so nothing of theirs is copied or lost.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MorrisError(f"--out {out} is a file; pass a folder for train/valid/test.jsonl")
    with atomic_dir(out, overwrite=True) as tmp:
        if out.is_dir():
            _carry_over(out, tmp)
        _write_all(tmp, prepared, cfg)
    return out
