"""Building preference pairs from prepared data: the writer's article chosen, a model's rejected.

No labelling: each prepared example's prompt goes to the base model (or an adapter), and its reply becomes
the rejected side of a pair whose chosen side is the writer's own article. Rejected replies are short
continuations (`max_tokens`, 256 by default), not whole articles: they only need to show the model's own
voice, and generating them is most of the stage's cost on a CPU. With `rejected_system` the rejected replies
are written under another system prompt (a plain newswire voice, say) while the pair keeps the writer's
prompt: the preference is then the writer against other writing on the same topic, not against the model's
own try at the voice.

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
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for split, pairs in written.items():
            write_jsonl(tmp / f"{split}.jsonl", pairs)
        write_json(
            tmp / PAIRS_RECORD,
            {
                "data": str(data_dir.resolve()),
                "data_sha256": {s: sha256_file(data_dir / f"{s}.jsonl") for s in PAIR_SPLITS},
                "model": str(Path(generator.model_dir).resolve()),
                "adapter": str(generator.adapter_path) if generator.adapter_path else None,
                "backend": generator.backend,
                "settings": asdict(settings),
                "pairs": counts,
            },
        )
    return counts
