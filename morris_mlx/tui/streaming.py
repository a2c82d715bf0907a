"""One streamed generation inside a thread worker, stoppable between chunks.

Shared by the write screen and the compare view. A stop (the worker cancelled) ends the loop at the next
chunk and closes the backend's stream, so the backend frees what it holds; the text so far is returned
as the partial article.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.worker import Worker

from morris_mlx.config import GenerateConfig
from morris_mlx.tui.session import Cancelled, ModelSession

ChunkSink = Callable[[str, int, float], None]  # (text, tokens so far, tokens/s); called on the worker thread


@dataclass
class StreamResult:
    text: str
    finish_reason: str  # stop | length | time | stopped
    tokens: int
    tokens_per_second: float
    model: str
    adapter: str | None
    backend: str


def stream_article(
    session: ModelSession,
    worker: Worker,
    messages: list[dict[str, str]],
    settings: GenerateConfig,
    on_chunk: ChunkSink,
    adapter: Path | None | str = "chosen",
) -> StreamResult:
    pieces: list[str] = []
    finish: str | None = None
    tokens, tps = 0, 0.0
    model, adapter_name, backend = "", None, ""
    try:
        with session.use(lambda: worker.is_cancelled, adapter) as generator:
            model = session.loaded_model.name if session.loaded_model else ""
            adapter_name = session.loaded_adapter.name if session.loaded_adapter else None
            backend = session.backend_label
            if worker.is_cancelled:  # stopped while the model was loading: keep the model, skip the text
                raise Cancelled
            stream = generator.stream(messages, settings)
            try:
                for chunk in stream:
                    if worker.is_cancelled:
                        finish = "stopped"
                        break
                    if chunk.text:
                        pieces.append(chunk.text)
                    tokens = chunk.generation_tokens or tokens + 1
                    tps = chunk.generation_tps or tps
                    on_chunk(chunk.text, tokens, tps)
                    if chunk.finish_reason:
                        finish = chunk.finish_reason
            finally:
                close = getattr(stream, "close", None)
                if callable(close):
                    close()
    except Cancelled:
        finish = "stopped"
    return StreamResult("".join(pieces), finish or "stop", tokens, tps, model, adapter_name, backend)
