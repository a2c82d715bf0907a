"""The write screen: a topic in, an article streamed out as Markdown, with the sampling knobs beside it.

Parameters are checked before the model is touched; the model loads lazily in the same worker that
generates; Escape stops and keeps the partial article; every article lands in the history.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown, TextArea
from textual.widgets.markdown import MarkdownStream
from textual.worker import Worker, get_current_worker

from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError
from morris_mlx.prompts import article_messages
from morris_mlx.tui.article import Article, default_save_path, save_markdown, to_markdown
from morris_mlx.tui.history import HistoryEntry
from morris_mlx.tui.messages import GenerationDone, GenerationFailed
from morris_mlx.tui.params import ParamError, ParamText, parse_params
from morris_mlx.tui.screens.history import HistoryScreen
from morris_mlx.tui.screens.save import SaveScreen
from morris_mlx.tui.session import describe_error
from morris_mlx.tui.streaming import stream_article
from morris_mlx.tui.widgets.model_status import ModelStatus

if TYPE_CHECKING:
    from morris_mlx.tui.app import MorrisApp

PARAM_FIELDS = (
    ("temp", "Temperature", "number"),
    ("top_p", "Top-p", "number"),
    ("max_tokens", "Max tokens", "integer"),
    ("seed", "Seed (blank: random)", "integer"),
)

FINISH_TEXT = {
    "stop": "finished",
    "length": "reached max tokens",
    "time": "reached the time limit",
    "stopped": "stopped by you",
}


class WriteScreen(Screen):
    app: MorrisApp

    BINDINGS = [
        Binding("ctrl+g", "generate", "Write", priority=True),
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "copy", "Copy"),
        Binding("ctrl+r", "history", "History", priority=True),
        Binding("ctrl+l", "app.load_model", "Load model"),
    ]

    def __init__(self) -> None:
        super().__init__(id="write")
        self.article: Article | None = None
        self.worker: Worker | None = None
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        settings = ParamText.from_settings(self.app.config.generate)
        yield Header()
        with Horizontal(id="write-body"):
            with VerticalScroll(id="write-params", classes="sidebar"):
                for field, label, kind in PARAM_FIELDS:
                    yield Label(label, classes="field-label")
                    yield Input(getattr(settings, field), id=field, type=kind)
                yield Label("System prompt (blank: voice prompt)", classes="field-label")
                yield TextArea(
                    settings.system_prompt,
                    id="system_prompt",
                    soft_wrap=True,
                    placeholder="the writer's voice, from data/prompts/system.txt",
                )
            with Vertical(id="write-main"):
                yield Input(placeholder="Topic, e.g. open RAN (Enter writes the article)", id="topic")
                with VerticalScroll(id="write-output"):
                    yield Markdown("", id="article")
                yield Label("Type a topic and press Enter.", id="gen-status")
        yield ModelStatus()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#topic", Input).focus()

    @property
    def generating(self) -> bool:
        return self.worker is not None and self.worker.is_running

    def set_status(self, text: str) -> None:
        self.query_one("#gen-status", Label).update(Text(text))

    def param_text(self) -> ParamText:
        values = {field: self.query_one(f"#{field}", Input).value for field, _, _ in PARAM_FIELDS}
        return ParamText(system_prompt=self.query_one("#system_prompt", TextArea).text, **values)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.action_generate()

    # -- generation ---------------------------------------------------------------------------------

    async def action_generate(self) -> None:
        if self.generating:
            self.notify("already writing; Escape stops it", severity="warning")
            return
        topic = self.query_one("#topic", Input).value.strip()
        if not topic:
            self.notify("type a topic first", severity="warning")
            self.query_one("#topic", Input).focus()
            return
        try:
            settings = parse_params(self.param_text(), self.app.config.generate)
            messages = article_messages(topic, settings.system_prompt)
        except ParamError as exc:
            self.notify(str(exc), title="Check the parameters", severity="error")
            self.query_one(f"#{exc.field}").focus()
            return
        except MorrisError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.settings = settings
        markdown = self.query_one("#article", Markdown)
        await markdown.update("")
        self.query_one("#write-output", VerticalScroll).scroll_home(animate=False)
        self._stream = Markdown.get_stream(markdown)
        self.set_status("waiting for the model…" if not self.app.session.generator else "writing…")
        self.set_class(True, "-generating")
        self.worker = self.generate(topic, messages, settings)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def generate(self, topic: str, messages: list[dict[str, str]], settings: GenerateConfig) -> None:
        worker = get_current_worker()
        try:
            result = stream_article(
                self.app.session,
                worker,
                messages,
                settings,
                lambda text, tokens, tps: self.app.call_from_thread(self.show_chunk, text, tokens, tps),
            )
        except Exception as exc:  # noqa: BLE001 - any failure becomes a notification, never a crash
            self.post_message(GenerationFailed(describe_error(exc, "writing the article")))
            return
        article = Article(
            topic=topic,
            text=result.text,
            model=result.model,
            adapter=result.adapter,
            backend=result.backend,
            settings=dataclasses.asdict(settings),
            finish_reason=result.finish_reason,
            tokens=result.tokens,
            tokens_per_second=result.tokens_per_second,
        )
        self.post_message(GenerationDone(article))

    async def show_chunk(self, text: str, tokens: int, tps: float) -> None:
        if self._stream is not None and text:
            output = self.query_one("#write-output", VerticalScroll)
            following = output.scroll_y >= output.max_scroll_y - 1
            await self._stream.write(text)
            if following:  # keep the newest text in view unless the reader scrolled up
                self.call_after_refresh(output.scroll_end, animate=False)
        self.set_status(f"writing… {tokens} tokens · {tps:.1f} tok/s · Escape stops")

    async def _end_stream(self, final_text: str | None) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if final_text is not None:
            # The stream may have merged fragments; render the whole article once so it is exact.
            await self.query_one("#article", Markdown).update(final_text)
        self.set_class(False, "-generating")

    async def on_generation_done(self, message: GenerationDone) -> None:
        article = message.article
        await self._end_stream(article.text)
        reason = FINISH_TEXT.get(article.finish_reason or "stop", article.finish_reason or "")
        if not article.text.strip():
            self.set_status(f"{reason} before any text was written")
            return
        self.article = article
        try:
            self.app.history.add(article)
        except OSError as exc:
            self.notify(f"could not add to the history: {exc}", severity="warning")
        self.set_status(
            f"{reason} · {article.tokens} tokens · {article.tokens_per_second:.1f} tok/s · "
            "Ctrl+S saves · Ctrl+O copies"
        )
        if article.finish_reason == "stopped":
            self.notify("stopped; the partial article is kept (Ctrl+S saves it)")

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        await self._end_stream(None)
        self.set_status("failed: " + message.error)
        self.notify(message.error, title="Generation failed", severity="error", timeout=8)

    def action_stop(self) -> None:
        if self.generating and self.worker is not None:
            self.worker.cancel()
            self.set_status("stopping…")

    # -- keeping the article ------------------------------------------------------------------------

    def _article_or_warn(self) -> Article | None:
        if self.generating:
            self.notify("still writing; wait for it or press Escape to stop", severity="warning")
            return None
        if self.article is None:
            self.notify("nothing written yet; type a topic and press Enter", severity="warning")
        return self.article

    def action_copy(self) -> None:
        article = self._article_or_warn()
        if article is not None:
            self.app.copy_to_clipboard(to_markdown(article, self.app.writer))
            self.notify("copied the article (with its attribution line)")

    def action_save(self) -> None:
        article = self._article_or_warn()
        if article is None:
            return

        def save(path: Path | None) -> None:
            if path is None:
                return
            try:
                written = save_markdown(article, self.app.writer, path)
            except (OSError, MorrisError) as exc:
                self.notify(describe_error(exc, f"saving to {path}"), severity="error")
                return
            self.notify(f"saved to {written}")

        self.app.push_screen(SaveScreen(default_save_path(article)), save)

    def action_history(self) -> None:
        if self.generating:
            self.notify("still writing; wait for it or press Escape to stop", severity="warning")
            return
        self.app.push_screen(HistoryScreen(self.app.history), self._open_entry)

    async def _open_entry(self, entry: HistoryEntry | None) -> None:
        if entry is None:
            return
        article = entry.article
        self.article = article
        self.query_one("#topic", Input).value = article.topic
        self._fill_params(article.settings)
        await self.query_one("#article", Markdown).update(article.text)
        self.set_status(
            f"from the history: {article.created[:16].replace('T', ' ')} · {article.model}"
            f" + {article.adapter or 'no adapter'} · Ctrl+S saves · Ctrl+O copies"
        )

    def _fill_params(self, settings: dict[str, Any]) -> None:
        try:
            text = ParamText.from_settings(GenerateConfig(**settings))
        except (TypeError, ValueError):
            return  # an entry from another version: keep the fields as they are
        for field, _, _ in PARAM_FIELDS:
            self.query_one(f"#{field}", Input).value = getattr(text, field)
        self.query_one("#system_prompt", TextArea).text = text.system_prompt
