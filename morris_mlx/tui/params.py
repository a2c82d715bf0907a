"""Generation parameters as typed in the write screen's fields, checked before anything expensive starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from morris_mlx.config import Config, GenerateConfig, validate
from morris_mlx.errors import MorrisError

LABELS = {
    "temp": "Temperature",
    "top_p": "Top-p",
    "max_tokens": "Max tokens",
    "seed": "Seed",
    "system_prompt": "System prompt",
}


class ParamError(MorrisError):
    """A bad field; `field` names it so the screen can focus it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class ParamText:
    """The raw text of each field."""

    temp: str
    top_p: str
    max_tokens: str
    seed: str
    system_prompt: str

    @classmethod
    def from_settings(cls, settings: GenerateConfig) -> ParamText:
        return cls(
            temp=f"{settings.temp:g}",
            top_p=f"{settings.top_p:g}",
            max_tokens=str(settings.max_tokens),
            seed="" if settings.seed is None else str(settings.seed),
            system_prompt=settings.system_prompt or "",
        )


def _number(field: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ParamError(field, f"{LABELS[field]}: {text.strip()!r} is not a number") from None


def _integer(field: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ParamError(field, f"{LABELS[field]}: {text.strip()!r} is not a whole number") from None


def parse_params(text: ParamText, base: GenerateConfig) -> GenerateConfig:
    """`base` with the fields' values; ParamError naming the first bad field."""
    settings = dataclasses.replace(
        base,
        temp=_number("temp", text.temp),
        top_p=_number("top_p", text.top_p),
        max_tokens=_integer("max_tokens", text.max_tokens),
        seed=_integer("seed", text.seed) if text.seed.strip() else None,
        system_prompt=text.system_prompt.strip() or None,
    )
    if settings.seed is not None and not 0 <= settings.seed < 2**32:
        raise ParamError("seed", f"Seed must be between 0 and {2**32 - 1}, got {settings.seed}")
    try:
        validate(Config(generate=settings))
    except MorrisError as exc:
        # config.validate names the key ('generate.temp'); say it with the field's label instead.
        message = str(exc)
        for field, label in LABELS.items():
            if f"'generate.{field}'" in message:
                raise ParamError(field, message.replace(f"config key 'generate.{field}'", label)) from None
        raise
    return settings
