"""The voice's system prompt and the generation instruction, read from data files, not code."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.errors import MorrisError
from morris_mlx.paths import DATA_DIR

PROMPTS_DIR = DATA_DIR / "prompts"
GENERATE_INSTRUCTION = "Write a telecom industry news article about: {topic}"


def load_system_prompt(path: str | Path | None = None) -> str:
    path = Path(path) if path else PROMPTS_DIR / "system.txt"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise MorrisError(f"system prompt file {path} is missing; restore data/prompts/system.txt") from None


def article_messages(topic: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The chat turns that ask for an article on `topic`, as the training data phrases it."""
    topic = topic.strip()
    if not topic:
        raise MorrisError("the topic is empty; pass a topic such as \"5G\"")
    system = system_prompt if system_prompt else load_system_prompt()
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": GENERATE_INSTRUCTION.format(topic=topic)},
    ]
