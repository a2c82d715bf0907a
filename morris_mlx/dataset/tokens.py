"""Token lengths measured with the model's own tokenizer and chat template, as mlx-lm will see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError


class TokenCounter:
    def __init__(self, tokenizer: Any, source: str) -> None:
        self.tokenizer = tokenizer
        self.source = source

    def chat(self, messages: list[dict[str, str]]) -> int:
        """Tokens in the whole example, special tokens and template included (what training sees)."""
        return len(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))

    def texts(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def load_token_counter(model_dir: str | Path, trust_remote_code: bool = False) -> TokenCounter:
    """The tokenizer of the model in `model_dir`; an error naming the folder if there is none."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise MorrisError(
            f"model folder {model_dir} does not exist; pass --model with a Hugging Face or MLX "
            "model folder (its tokenizer measures the examples)"
        )
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MorrisError("measuring tokens needs transformers: pip install transformers") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds; all mean "no usable tokenizer"
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise MorrisError(
            f"cannot load a tokenizer from {model_dir} ({detail}); pass --model with a model "
            "folder that has tokenizer files"
        ) from None
    if not getattr(tokenizer, "chat_template", None):
        raise MorrisError(
            f"the tokenizer in {model_dir} has no chat template, so mlx-lm cannot train on chat "
            "data with it; use an instruct/chat model or add a chat_template"
        )
    # Articles are measured whole before cutting; the "longer than the model's maximum" warning is noise.
    tokenizer.model_max_length = 1 << 60
    return TokenCounter(tokenizer, str(model_dir))
