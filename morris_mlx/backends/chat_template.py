"""The model's own chat template, the same way on every backend."""

from __future__ import annotations

from typing import Any

from morris_mlx.errors import MorrisError


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


def training_tokens(tokenizer: Any, record: dict[str, Any], mask_prompt: bool) -> tuple[list[int], int]:
    """(tokens, offset) of a chat record as mlx-lm's ChatDataset.process makes them, except that a record
    marked `"continues": true` (a part of a cut article, not its last) leaves the reply open: no
    end-of-turn tokens, so the model does not learn to stop where the cut fell."""
    messages, tools = record["messages"], record.get("tools")
    continues = bool(record.get("continues"))
    try:
        tokens = tokenizer.apply_chat_template(
            messages, tools=tools, continue_final_message=continues, return_dict=False
        )
    except ValueError:
        if not continues:
            raise
        # transformers cannot find where the reply ends when the template rewrites it
        raise MorrisError(
            "this model's chat template rewrites the reply, so a part marked to continue cannot be left "
            "open; prepare the data again without --open-parts"
        ) from None
    offset = 0
    if mask_prompt:
        offset = len(
            tokenizer.apply_chat_template(
                messages[:-1],
                tools=tools,
                add_generation_prompt=messages[-1].get("role") == "assistant",
                return_dict=False,
            )
        )
    return [int(t) for t in tokens], offset
