"""The write screen: a topic in, an article streamed out as Markdown, with the sampling knobs beside it.

Parameters are checked before the model is touched; the model loads lazily in the same worker that
generates; Escape stops and keeps the partial article; every article lands in the history. Each finished
article is reviewed (`morris_mlx.review`): what a person must check is highlighted in the text and listed
beside it, to be ticked off item by item, and Ctrl+S saves the checklist, ticked or not, with the article.
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
from textual.widgets import Footer, Header, Input, Label, Markdown, SelectionList, Static, TextArea
from textual.widgets.markdown import MarkdownStream
from textual.worker import Worker, get_current_worker

from morris_mlx.adapter_format.provenance import trained_system_prompt
from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError
from morris_mlx.prompts import article_messages
from morris_mlx.review.checklist import summary
from morris_mlx.review.checklist import to_markdown as checklist_markdown
from morris_mlx.review.flag import Flag
from morris_mlx.tui.article import Article, default_save_path, save_markdown, to_markdown
from morris_mlx.tui.history import HistoryEntry
from morris_mlx.tui.messages import GenerationDone, GenerationFailed, ReviewDone, ReviewFailed
from morris_mlx.tui.params import ParamError, ParamText, parse_params
from morris_mlx.tui.screens.history import HistoryScreen
from morris_mlx.tui.screens.save import SaveScreen
from morris_mlx.tui.session import describe_error
from morris_mlx.tui.streaming import stream_article
from morris_mlx.tui.widgets.model_status import ModelStatus
from morris_mlx.tui.widgets.review_panel import ReviewPanel, highlighted

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
        Binding("ctrl+t", "checklist", "Checklist"),
    ]

    def __init__(self) -> None:
        super().__init__(id="write")
        self.article: Article | None = None
        self.worker: Worker | None = None
        self._stream: MarkdownStream | None = None
        # The review of the article on screen: the text it was run on (the article, stripped) and its flags.
        self.review_text: str | None = None
        self.review_flags: list[Flag] | None = None
        self.review_worker: Worker | None = None
        self._status = ""

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
                    placeholder="the writer's voice (its bundled system prompt)",
                )
            with Vertical(id="write-main"):
                yield Input(placeholder="Topic, e.g. open RAN (Enter writes the article)", id="topic")
                with Horizontal(id="write-panes"):
                    with VerticalScroll(id="write-output"):
                        yield Markdown("", id="article")
                        yield Static("", id="article-review")
                    yield ReviewPanel(id="review-panel")
                yield Label("Type a topic and press Enter.", id="gen-status")
        yield ModelStatus()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#topic", Input).focus()

    @property
    def generating(self) -> bool:
        return self.worker is not None and self.worker.is_running

    def set_status(self, text: str) -> None:
        self._status = text
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
            system = settings.system_prompt or trained_system_prompt(self.app.session.adapter_path)
            messages = article_messages(topic, system)
        except ParamError as exc:
            self.notify(str(exc), title="Check the parameters", severity="error")
            self.query_one(f"#{exc.field}").focus()
            return
        except MorrisError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.settings = settings
        self.clear_review()
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
        self.start_review(article)

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
                written = save_markdown(article, self.app.writer, path, self.checklist(article))
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
        self.clear_review()
        await self.query_one("#article", Markdown).update(article.text)
        self.set_status(
            f"from the history: {article.created[:16].replace('T', ' ')} · {article.model}"
            f" + {article.adapter or 'no adapter'} · Ctrl+S saves · Ctrl+O copies"
        )
        self.start_review(article)

    def _fill_params(self, settings: dict[str, Any]) -> None:
        try:
            text = ParamText.from_settings(GenerateConfig(**settings))
        except (TypeError, ValueError):
            return  # an entry from another version: keep the fields as they are
        for field, _, _ in PARAM_FIELDS:
            self.query_one(f"#{field}", Input).value = getattr(text, field)
        self.query_one("#system_prompt", TextArea).text = text.system_prompt

    # -- review ---------------------------------------------------------------------------------------

    def _review_adapter(self, article: Article) -> Path | None:
        """The adapter whose training data the article is compared with: the loaded one that wrote it."""
        for path in (self.app.session.loaded_adapter, self.app.session.adapter_path):
            if path is not None and article.adapter == path.name:
                return path
        return None

    def start_review(self, article: Article) -> None:
        text = article.text.strip()
        if text:
            self.review_worker = self.run_review(text, self._review_adapter(article))

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def run_review(self, text: str, adapter: Path | None) -> None:
        try:
            reviewer = self.app.reviewer(adapter)
            flags = reviewer.review(text)
        except Exception as exc:  # noqa: BLE001 - a notification, never a crash
            self.post_message(ReviewFailed(describe_error(exc, "reviewing the article")))
            return
        self.post_message(ReviewDone(text, flags))

    def on_review_done(self, message: ReviewDone) -> None:
        if self.article is None or message.text != self.article.text.strip() or self.generating:
            return  # a review of an article no longer on screen
        self.review_text, self.review_flags = message.text, list(message.flags)
        base = self._status.split(" · review:")[0]
        if not message.flags:
            # Nothing to tick: the article stays rendered as Markdown, and the status line says so.
            self.set_status(f"{base} · review: {summary(self.review_flags)[:-1].lower()}")
            return
        self.set_status(f"{base} · review: {len(message.flags)} to check (Ctrl+T)")
        panel = self.query_one("#review-panel", ReviewPanel)
        hint = " Space ticks an item (Ctrl+T goes to the list)."
        panel.show(self.review_flags, message.text, summary(self.review_flags) + hint)
        self.query_one("#article", Markdown).display = False
        view = self.query_one("#article-review", Static)
        view.display = True
        self._paint_review()

    def on_review_failed(self, message: ReviewFailed) -> None:
        self.notify(message.error, title="Review failed", severity="error", timeout=8)

    def clear_review(self) -> None:
        if self.review_worker is not None:
            self.review_worker.cancel()
        self.review_text = self.review_flags = None
        self.query_one("#review-panel", ReviewPanel).clear()
        self.query_one("#article-review", Static).display = False
        self.query_one("#article", Markdown).display = True

    def _paint_review(self) -> None:
        if self.review_text is None or self.review_flags is None:
            return
        panel = self.query_one("#review-panel", ReviewPanel)
        view = self.query_one("#article-review", Static)
        view.update(highlighted(self.review_text, self.review_flags, panel.ticked, panel.current))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        self._paint_review()

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        self._paint_review()
        flags = self.review_flags or []
        if self.review_text is not None and 0 <= event.selection_index < len(flags):
            self._scroll_to(flags[event.selection_index].start)

    def _scroll_to(self, offset: int) -> None:
        """Bring the line holding `offset` into view (rows counted as the text wraps at this width)."""
        output = self.query_one("#write-output", VerticalScroll)
        width = max(10, self.query_one("#article-review", Static).content_region.width)
        row = 0
        for line in (self.review_text or "")[:offset].split("\n")[:-1]:
            row += max(1, -(-len(line) // width))
        row += len((self.review_text or "")[:offset].rsplit("\n", 1)[-1]) // width
        output.scroll_to(y=max(0, row - 3), animate=False)

    def action_checklist(self) -> None:
        panel = self.query_one("#review-panel", ReviewPanel)
        if not panel.flags:
            self.notify("nothing to tick: write an article first, or it has nothing flagged")
            return
        checklist = self.query_one("#review-list", SelectionList)
        checklist.focus()
        if checklist.highlighted is None:
            checklist.highlighted = 0  # so that Space ticks the first item straight away

    def checklist(self, article: Article) -> str:
        """The review checklist for `article`, with the ticks given so far (reviewed now if not yet)."""
        text = article.text.strip()
        if self.review_text == text and self.review_flags is not None:
            flags, ticked = self.review_flags, self.query_one("#review-panel", ReviewPanel).ticked
        else:
            flags, ticked = self.app.reviewer(self._review_adapter(article)).review(text), None
        return checklist_markdown(flags, text, ticked)
