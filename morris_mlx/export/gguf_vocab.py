"""Tokenizer and chat-template metadata for a GGUF, following llama.cpp's convert_hf_to_gguf.py.

mlx-lm's own GGUF export labels every vocabulary SentencePiece ("llama") and writes no merges or chat
template, so llama.cpp cannot run a byte-level BPE model from it. Here a byte-level BPE tokenizer.json
becomes a "gpt2" vocabulary with merges and a pre-tokenizer name, and a tokenizer.model becomes a
SentencePiece one; special-token ids, add-BOS/EOS flags and the chat template come along either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError

HINT = "export a fused model (`morris export fused`) and convert it with llama.cpp's convert_hf_to_gguf.py"


@dataclass
class GgufVocab:
    model: str  # tokenizer.ggml.model: "gpt2" or "llama"
    pre: str  # tokenizer.ggml.pre
    tokens: list[str] | list[bytes]
    toktypes: list[int]
    scores: list[float] | None = None


def _is_byte_level(pre: dict[str, Any]) -> bool:
    return pre.get("type") == "ByteLevel" and bool(pre.get("use_regex", True))


def bpe_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for the pre-tokenizer, read from its structure.

    llama.cpp hashes the tokenization of a test string instead; this reads the same fact directly, for
    the two shapes our models use: plain GPT-2 byte-level ("gpt-2") and SmolLM's single-digit split
    before it ("smollm"), whose regexes llama.cpp implements exactly.
    """
    pre = tokenizer_json.get("pre_tokenizer") or {}
    if _is_byte_level(pre):
        return "gpt-2"
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if (
        steps
        and len(steps) == 2
        and steps[0].get("type") == "Digits"
        and steps[0].get("individual_digits")
        and _is_byte_level(steps[1])
    ):
        return "smollm"
    raise MorrisError(
        f"the tokenizer's pre-tokenizer {json.dumps(pre)[:120]} has no known llama.cpp name; {HINT}"
    )


def _looks_special(token: str) -> bool:
    return (token.startswith("<|") and token.endswith("|>")) or token in ("<s>", "</s>", "<unk>", "<pad>")


def bpe_vocab(hf_dir: Path, vocab_size: int) -> GgufVocab:
    """A byte-level BPE tokenizer.json as llama.cpp's "gpt2" vocabulary (get_vocab_base's rules)."""
    data = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = data.get("model") or {}
    pre = bpe_pre_tokenizer(data)
    reverse = {int(i): tok for tok, i in (model.get("vocab") or {}).items()}
    added = {int(t["id"]): t for t in data.get("added_tokens") or []}
    for i, token in added.items():
        reverse[i] = token["content"]
    size = max(vocab_size, max(reverse) + 1 if reverse else 0)
    tokens: list[str] = []
    types: list[int] = []
    from gguf import TokenType

    for i in range(size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added:
            tokens.append(reverse[i])
            types.append(
                TokenType.CONTROL
                if added[i].get("special") or _looks_special(reverse[i])
                else TokenType.USER_DEFINED
            )
        else:
            tokens.append(reverse[i])
            types.append(TokenType.NORMAL)
    return GgufVocab("gpt2", pre, tokens, types)


def spm_vocab(hf_dir: Path, vocab_size: int) -> GgufVocab:
    """A SentencePiece tokenizer.model as llama.cpp's "llama" vocabulary (_create_vocab_sentencepiece)."""
    try:
        from sentencepiece import SentencePieceProcessor
    except ImportError:
        raise MorrisError(
            "this model's tokenizer is SentencePiece; install it: pip install sentencepiece"
        ) from None
    from gguf import TokenType

    processor = SentencePieceProcessor()
    processor.LoadFromFile(str(hf_dir / "tokenizer.model"))
    tokens: list[bytes] = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [int(TokenType.UNUSED)] * vocab_size
    for i in range(min(processor.vocab_size(), vocab_size)):
        kind = TokenType.NORMAL
        if processor.IsUnknown(i):
            kind = TokenType.UNKNOWN
        elif processor.IsControl(i):
            kind = TokenType.CONTROL
        elif processor.IsUnused(i):
            kind = TokenType.UNUSED
        elif processor.IsByte(i):
            kind = TokenType.BYTE
        tokens[i] = processor.IdToPiece(i).encode("utf-8")
        scores[i] = processor.GetScore(i)
        types[i] = int(kind)
    # Tokens added on top of the SentencePiece model (chat markers) live in tokenizer.json.
    tokenizer_json = hf_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        for token in json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens") or []:
            i = int(token["id"])
            if processor.vocab_size() <= i < vocab_size:
                tokens[i] = token["content"].encode("utf-8")
                scores[i] = -1000.0
                types[i] = int(TokenType.CONTROL if token.get("special") else TokenType.USER_DEFINED)
    return GgufVocab("llama", "default", tokens, types, scores)


def _added_specials(hf_dir: Path, special_ids: dict[str, int]) -> dict[str, bool]:
    """Whether the tokenizer puts BOS/EOS around plain text, measured by encoding with the tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    plain = tokenizer.encode("hello", add_special_tokens=False).ids
    full = tokenizer.encode("hello", add_special_tokens=True).ids
    flags = {"bos": False, "eos": False}
    if len(full) > len(plain):
        if "bos" in special_ids and full[0] == special_ids["bos"]:
            flags["bos"] = True
        if "eos" in special_ids and full[-1] == special_ids["eos"]:
            flags["eos"] = True
    return flags


def read_vocab(hf_dir: Path, vocab_size: int) -> GgufVocab:
    """The vocabulary in llama.cpp's terms; MorrisError for tokenizers it would misread."""
    if (hf_dir / "tokenizer.model").is_file():
        return spm_vocab(hf_dir, vocab_size)
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise MorrisError(
            f"{hf_dir} has neither tokenizer.json nor tokenizer.model; the GGUF needs a tokenizer"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    decoder = data.get("decoder") or {}
    if model.get("type") == "BPE" and not model.get("byte_fallback") and decoder.get("type") == "ByteLevel":
        return bpe_vocab(hf_dir, vocab_size)
    raise MorrisError(
        f"the tokenizer in {hf_dir} ({model.get('type')}, decoder {decoder.get('type')}) is not byte-level "
        f"BPE and has no tokenizer.model; {HINT}"
    )


def add_vocab(writer: Any, hf_dir: Path, vocab_size: int) -> GgufVocab:
    """Write tokenizer.ggml.* and tokenizer.chat_template into `writer`."""
    import gguf

    vocab = read_vocab(hf_dir, vocab_size)
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.toktypes)
    special = gguf.SpecialVocab(hf_dir, load_merges=vocab.model == "gpt2", n_vocab=len(vocab.tokens))
    if (hf_dir / "tokenizer.json").is_file():
        special.add_special_token.update(_added_specials(hf_dir, special.special_token_ids))
    if special.chat_template is None:
        raise MorrisError(f"{hf_dir} has no chat template; the GGUF would not know how to format a chat")
    special.add_to_gguf(writer, quiet=True)
    config_path = hf_dir / "tokenizer_config.json"
    if vocab.model == "llama" and config_path.is_file():
        add_prefix = json.loads(config_path.read_text(encoding="utf-8")).get("add_prefix_space")
        if add_prefix is not None:
            writer.add_add_space_prefix(add_prefix)
    return vocab
