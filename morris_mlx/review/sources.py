"""The texts a review compares an article with: the bundled corpora (every voice, and the contrast
corpus) and the data an adapter was trained on (its provenance records the prepared data folder),
indexed once per process and reused."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from morris_mlx.review.copied import ShingleIndex
from morris_mlx.review.vocabulary import lowercase_words

log = logging.getLogger("morris")

TRAINING_SPLITS = ("train.jsonl", "valid.jsonl")  # what the adapter saw (test is held out)


@dataclass(frozen=True)
class Corpus:
    index: ShingleIndex
    vocabulary: frozenset[str]
    described: tuple[str, ...]  # what was indexed, for the report
    notes: tuple[str, ...]  # what could not be read, and so was not checked


def bundled_folders() -> list[Path]:
    from morris_mlx.paths import CONTRAST_DIR, bundled_voices, voice_dir

    folders = [voice_dir(v) for v in bundled_voices()]
    return folders + ([CONTRAST_DIR] if any(CONTRAST_DIR.glob("*.md")) else [])


def bundled_documents() -> list[tuple[str, str]]:
    """(where, text) of every bundled article: title, standfirst and body."""
    from morris_mlx.dataset.corpus import read_corpus
    from morris_mlx.paths import BUNDLED_DIR

    docs = []
    for folder in bundled_folders():
        for a in read_corpus(folder):
            where = Path(a.origin).resolve().relative_to(BUNDLED_DIR.resolve().parent)
            docs.append((str(where), f"{a.title}\n\n{a.standfirst}\n\n{a.text}"))
    return docs


def training_documents(data_dir: Path) -> list[tuple[str, str]]:
    """The assistant turns (the writer's articles) of a prepared data folder's train and valid splits."""
    docs: list[tuple[str, str]] = []
    for split in TRAINING_SPLITS:
        path = Path(data_dir) / split
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                text = _article_text(line)
                if text:
                    docs.append((f"{path} line {n}", text))
    return docs


def _article_text(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(record, dict):
        return ""
    messages = record.get("messages") or record.get("chosen")  # a chat example, or a preference pair's writer side
    if isinstance(messages, list):
        return "\n\n".join(
            m["content"] for m in messages
            if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)
        )
    for key in ("text", "completion"):
        if isinstance(record.get(key), str):
            return record[key]
    return ""


def adapter_training_data(adapter_path: Path) -> tuple[Path | None, str]:
    """The prepared data folder an adapter was trained on, or (None, why not)."""
    from morris_mlx.errors import MorrisError
    from morris_mlx.registry import read_adapter

    try:
        provenance = read_adapter(Path(adapter_path)).provenance
    except MorrisError as exc:
        return None, f"{exc}; copied spans were checked against the bundled corpus only"
    data = provenance.get("data") if isinstance(provenance.get("data"), dict) else {}
    path = data.get("path") if isinstance(data.get("path"), str) else None
    if path is None:
        return None, f"adapter {adapter_path} records no training data; copied spans were checked against the bundled corpus only"
    if not any((Path(path) / s).is_file() for s in TRAINING_SPLITS):
        return None, f"the training data of adapter {adapter_path} ({path}) is not on this machine; copied spans were checked against the bundled corpus only"
    return Path(path), ""


def _stamp(path: Path) -> tuple:
    """What changes when a data folder's files do, so the cache never serves a stale index."""
    stats = []
    for split in TRAINING_SPLITS:
        p = path / split
        if p.is_file():
            st = p.stat()
            stats.append((split, st.st_size, st.st_mtime_ns))
    return tuple(stats)


def load_corpus(data_dirs: tuple[Path, ...] = ()) -> Corpus:
    """The index over the bundled corpus and the given prepared data folders."""
    dirs = tuple(Path(d).resolve() for d in data_dirs)
    return _load_corpus(dirs, tuple(_stamp(d) for d in dirs))


@functools.lru_cache(maxsize=8)
def _load_corpus(dirs: tuple[Path, ...], stamps: tuple) -> Corpus:
    index = ShingleIndex()
    texts: list[str] = []
    notes: list[str] = []
    docs = bundled_documents()
    described = [f"the bundled corpus ({len(docs)} articles)"]
    for source, text in docs:
        index.add(text, source)
        texts.append(text)
    for d in dirs:
        docs = training_documents(d)
        if not docs:
            notes.append(f"no training examples found in {d}")
            continue
        described.append(f"training data {d} ({len(docs)} examples)")
        for source, text in docs:
            index.add(text, source)
            texts.append(text)
    log.debug("review index: %d shingles from %s", len(index), "; ".join(described))
    return Corpus(index, lowercase_words(texts), tuple(described), tuple(notes))
