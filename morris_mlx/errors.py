"""The one exception type that the CLI turns into a one-line message and exit code 2, and the one place
that recognises backend failures (out of memory) and words them for the CLI and the TUI alike."""

from __future__ import annotations

import re


class MorrisError(Exception):
    """Bad input or an unusable environment: the message says what was wrong and how to fix it."""


OOM_HINT = (
    "try a smaller --batch-size, --grad-checkpoint, a shorter --max-seq-length, fewer --max-tokens "
    "or a quantized model (morris convert -q)"
)
# The TUI has no flags; the same advice in its words.
OOM_HINT_TUI = "try a smaller or quantized model, a smaller batch, fewer max tokens, or close other programs"

# Real out-of-memory errors are rarely MemoryError: torch raises torch.cuda.OutOfMemoryError (a
# RuntimeError) or RuntimeError("... out of memory ..."), MPS "MPS backend out of memory", and MLX a
# RuntimeError from its allocator ("[metal::malloc] Attempting to allocate ...", "Out of memory").
_OOM_PATTERNS = re.compile(
    r"out of memory|\bOOM\b|metal::malloc|attempting to allocate|failed to allocate|cannot allocate memory"
    r"|CUBLAS_STATUS_ALLOC_FAILED|insufficient memory",
    re.IGNORECASE,
)
_OOM_TYPES = ("OutOfMemoryError",)  # torch.cuda.OutOfMemoryError, torch.OutOfMemoryError


def is_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError and the backends' own out-of-memory errors, which are RuntimeErrors."""
    if isinstance(exc, MemoryError) or type(exc).__name__ in _OOM_TYPES:
        return True
    if isinstance(exc, (RuntimeError, OSError)):
        return bool(_OOM_PATTERNS.search(str(exc)))
    return False


def explain(exc: BaseException, doing: str | None = None, tui: bool = False) -> str | None:
    """A one-line hint for failures we recognise (out of memory), or None for anything else.

    `doing` ("training", "loading the model") goes into the message when given; `tui` words the advice
    for the terminal UI instead of the command line.
    """
    if is_out_of_memory(exc):
        where = f" while {doing}" if doing else ""
        return f"out of memory{where}; {OOM_HINT_TUI if tui else OOM_HINT}"
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (libraries append paragraphs of advice), or its type."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def one_line(text: str, limit: int = 1000) -> str:
    """`text` folded onto one line (libraries' messages often span several) and capped at `limit`."""
    folded = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return folded if len(folded) <= limit else folded[: limit - 3].rstrip() + "..."
