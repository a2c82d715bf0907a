"""The voice's system prompt and the generation instruction, read from data files, not code."""

from __future__ import annotations

from pathlib import Path

from morris_mlx.errors import MorrisError
from morris_mlx.paths import DEFAULT_VOICE, bundled_voices, voice_dir

GENERATE_INSTRUCTION = "Write a telecom industry news article about: {topic}"


def load_system_prompt(path: str | Path | None = None, voice: str = DEFAULT_VOICE) -> str:
    """The system prompt in `path`, else the one of a bundled voice."""
    path = Path(path) if path else voice_dir(voice) / "system.txt"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise MorrisError(f"system prompt file {path} is missing; reinstall morris_mlx or pass a prompt") from None
    except UnicodeDecodeError:
        raise MorrisError(f"system prompt file {path} is not UTF-8 text; re-save it as UTF-8") from None


def check_voice(voice: str) -> str:
    """`voice` if it names a bundled voice, else a one-line error listing them."""
    voices = bundled_voices()
    if voice not in voices:
        raise MorrisError(f"unknown voice {voice!r}; choose one of: {', '.join(voices)}")
    return voice


def check_text(text: str, what: str) -> str:
    """`text` if it is valid Unicode. Python decodes command-line bytes that are not UTF-8 into lone
    surrogates, which tokenizers reject with a TypeError far from the cause; name the cause instead."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MorrisError(
            f"the {what} is not valid UTF-8 text; set your terminal to UTF-8 (e.g. LANG=C.UTF-8) or retype it"
        ) from None
    return text


def article_messages(topic: str, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The chat turns that ask for an article on `topic`, as the training data phrases it."""
    topic = check_text(topic, "topic").strip()
    if not topic:
        raise MorrisError('the topic is empty; pass a topic such as "5G"')
    system = check_text(system_prompt, "system prompt") if system_prompt else load_system_prompt()
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": GENERATE_INSTRUCTION.format(topic=topic)},
    ]
