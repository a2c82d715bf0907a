"""Building preference pairs from prepared data: the writer's article chosen, a model's rejected.

No labelling: each prepared example's prompt goes to the base model (or an adapter), and its reply becomes
the rejected side of a pair whose chosen side is the writer's own article. Rejected replies are short
continuations (`max_tokens`, 256 by default), not whole articles: they only need to show the model's own
voice, and generating them is most of the stage's cost on a CPU. With `rejected_system` the rejected replies
are written under another system prompt (a plain newswire voice, say) while the pair keeps the writer's
prompt: the preference is then the writer against other writing on the same topic, not against the model's
own try at the voice. With `make_pairs_from_others` the rejected side is no model's at all: the opening of
another writer's article on the closest topic, so the preference is the writer over other writers on the
same subject, and building the pairs needs no model.

The output folder is written whole or not at all (built beside it, renamed at the end), with the settings
that made it in pairs.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from morris_mlx.atomic import atomic_dir, sha256_file, write_json, write_jsonl
from morris_mlx.backends.base import Generator
from morris_mlx.config import GenerateConfig
from morris_mlx.dataset.jsonl import load_split
from morris_mlx.dataset.pairs import PAIR_SPLITS, pair_from_example
from morris_mlx.errors import MorrisError
from morris_mlx.files import PAIRS_RECORD
from morris_mlx.paths import overlaps

log = logging.getLogger("morris")


@dataclass
class PairSettings:
    max_tokens: int = 256
    temp: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int = 0
    batch_size: int = 4
    rejected_system: str | None = None  # None: the example's own system prompt


def check_out_dir(data_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """The pairs' folder is replaced as a whole: it must not be, hold or sit inside the prepared data."""
    if overlaps(data_dir, out_dir):
        raise MorrisError(
            f"--out {out_dir} overlaps the prepared data {data_dir}; choose a folder outside it for the pairs"
        )
    if Path(out_dir).exists() and not overwrite:
        raise MorrisError(f"{out_dir} already exists; pass --force to replace it, or choose another --out")


def rejected_prompt(prompt: list[dict[str, str]], system: str | None) -> list[dict[str, str]]:
    """The turns a rejected reply answers: `prompt` with its system prompt replaced by `system` (added in
    front when it has none), or `prompt` itself when `system` is None."""
    if system is None:
        return prompt
    turns = prompt[1:] if prompt and prompt[0]["role"] == "system" else prompt
    return [{"role": "system", "content": system}, *turns]


REJECTED_WORDS = 200  # an opening about as long as a 256-token generated rejected reply


def opening(text: str, words: int = REJECTED_WORDS) -> str:
    """The first paragraphs of `text` up to `words` words; a paragraph that would run past them is cut at
    its last sentence end that fits (at the word limit when none does)."""
    kept: list[str] = []
    count = 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        n = len(paragraph.split())
        if count + n <= words:
            kept.append(paragraph)
            count += n
            continue
        head = " ".join(paragraph.split()[: words - count])
        ends = [head.rfind(mark) for mark in (". ", "? ", "! ")] + [len(head) - 1 if head[-1:] in ".?!" else -1]
        cut = max(ends)
        if cut > 0 or not kept:
            kept.append(head[: cut + 1] if cut > 0 else head)
        break
    return "\n\n".join(kept)


def closest_others(replies: list[str], others: list[str]) -> list[int]:
    """For each reply, the index of the other text closest to it in words (TF-IDF over both, English stop
    words left out, cosine similarity): the same subject, whoever wrote it."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectors = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(replies + others)
    except ValueError:  # scikit-learn's "empty vocabulary"
        raise MorrisError(
            "the articles share no words but English stop words to match subjects by; pass other writers' prose"
        ) from None
    similarity = vectors.transform(replies) @ vectors.transform(others).T
    return [int(i) for i in similarity.toarray().argmax(axis=1)]


def make_pairs_from_others(
    data_dir: Path, out_dir: Path, others_path: Path, overwrite: bool = False, words: int = REJECTED_WORDS
) -> dict[str, int]:
    """Write train/valid.jsonl of pairs into `out_dir` from the prepared `data_dir`: each example's reply
    chosen over the opening, `words` long at most, of the text in `others_path` (what `morris eval
    --contrast` reads) closest to it. Returns pairs per split."""
    from morris_mlx.evaluation.run import load_contrast

    data_dir, out_dir, others_path = Path(data_dir), Path(out_dir), Path(others_path)
    check_out_dir(data_dir, out_dir, overwrite)
    if words < 1:
        raise MorrisError(f"an opening of {words} words rejects nothing; give it at least one word")
    if not others_path.exists():  # load_contrast's own message would name `morris eval`'s flag
        raise MorrisError(
            f"{others_path} does not exist; name other writers' articles: a folder of Markdown articles, "
            "a JSONL file or a text file"
        )
    others = [opening(text, words) for text in load_contrast(others_path)]
    others = [text for text in others if text.strip()]
    if not others:
        raise MorrisError(f"{others_path} holds no text to reject; pass other writers' articles")
    written, counts = {}, {}
    for split in PAIR_SPLITS:
        rows = load_split(data_dir, split)
        nearest = closest_others([row["messages"][-1]["content"] for row in rows], others)
        written[split] = [pair_from_example(row, others[i]) for row, i in zip(rows, nearest, strict=True)]
        counts[split] = len(rows)
    how = {"rejected_from": str(others_path.resolve()),
           "rejected": f"the opening ({words} words at most) of the closest text by TF-IDF cosine"}
    write_pairs(data_dir, out_dir, written, how, overwrite)
    return counts


def make_pairs(
    data_dir: Path,
    out_dir: Path,
    generator: Generator,
    settings: PairSettings,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write train/valid.jsonl of pairs into `out_dir` from the prepared `data_dir`; returns pairs per split.
    `progress(done, total)` is called as rejected replies arrive."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    check_out_dir(data_dir, out_dir, overwrite)
    examples = {split: load_split(data_dir, split) for split in PAIR_SPLITS}
    total = sum(len(rows) for rows in examples.values())
    done, counts, written = 0, {}, {}
    for split, rows in examples.items():
        conversations = [rejected_prompt(row["messages"][:-1], settings.rejected_system) for row in rows]
        per_row = [
            GenerateConfig(
                max_tokens=settings.max_tokens,
                temp=settings.temp,
                top_p=settings.top_p,
                repetition_penalty=settings.repetition_penalty,
                seed=settings.seed + done + i,  # each prompt its own draw, the same on every run
            )
            for i in range(len(rows))
        ]
        replies: dict[int, str] = {}
        for index, result in generator.generate_batch(conversations, per_row, settings.batch_size):
            replies[index] = result.text.strip()
            done += 1
            if progress is not None:
                progress(done, total)
        pairs = [pair_from_example(row, replies[i]) for i, row in enumerate(rows) if replies[i]]
        if len(pairs) < len(rows):
            log.warning("%s: %d prompts got an empty reply and make no pair", split, len(rows) - len(pairs))
        if not pairs:
            raise MorrisError(
                f"no {split} pairs: every reply was empty; raise --max-tokens or check the model"
            )
        written[split], counts[split] = pairs, len(pairs)
    how = {"model": str(Path(generator.model_dir).resolve()),
           "adapter": str(generator.adapter_path) if generator.adapter_path else None,
           "backend": generator.backend, "settings": asdict(settings)}
    write_pairs(data_dir, out_dir, written, how, overwrite)
    return counts


def write_pairs(
    data_dir: Path, out_dir: Path, written: dict[str, list[dict]], how: dict[str, object], overwrite: bool
) -> None:
    """The pairs' folder, whole or not at all: a JSONL file per split and pairs.json, which records the
    data they came from, `how` the rejected side was made, and the pairs per split."""
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for split, pairs in written.items():
            write_jsonl(tmp / f"{split}.jsonl", pairs)
        write_json(
            tmp / PAIRS_RECORD,
            {
                "data": str(data_dir.resolve()),
                "data_sha256": {s: sha256_file(data_dir / f"{s}.jsonl") for s in PAIR_SPLITS},
                **how,
                "pairs": {split: len(pairs) for split, pairs in written.items()},
            },
        )
