"""The model's own chat template, the same way on every backend."""

from __future__ import annotations

from typing import Any


def apply_chat_template(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool
) -> list[int]:
    """The model's own chat template; templates that refuse a system turn get it folded into the user's."""
    from jinja2 import TemplateError

    try:
        return list(
            tokenizer.apply_chat_template(
                messages, add_generation_prompt=add_generation_prompt, return_dict=False
            )
        )
    except TemplateError:
        if not messages or messages[0]["role"] != "system" or len(messages) < 2:
            raise
        merged = [
            {"role": messages[1]["role"], "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}
        ]
        return list(
            tokenizer.apply_chat_template(
                merged + messages[2:], add_generation_prompt=add_generation_prompt, return_dict=False
            )
        )
