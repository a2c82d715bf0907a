"""The data screen: the prepared corpus's statistics and a browsable sample of training examples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown, Static

from morris_mlx.errors import MorrisError
from morris_mlx.tui.data_view import (
    Example,
    Section,
    measure_splits,
    read_examples,
    read_stats,
    resolve_data_dir,
    stats_sections,
)
from morris_mlx.tui.session import describe_error

if TYPE_CHECKING:
    from morris_mlx.tui.app import MorrisApp

SAMPLE_CHARS = 4000


def sections_view(sections: list[Section]) -> Group:
    parts: list[Text | Table] = []
    for section in sections:
        # The title goes above the table, not in it: a table's title wraps to the table's width.
        parts.append(Text(section.title, style="bold"))
        table = Table(expand=False)
        for i, column in enumerate(section.columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in section.rows:
            table.add_row(*[Text(cell) for cell in row])
        parts.append(table)
    return Group(*parts)


def example_markdown(example: Example, index: int, total: int) -> str:
    article = example.article
    if len(article) > SAMPLE_CHARS:
        article = article[:SAMPLE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"**Example {index + 1} of {total}** · asked for: *{example.topic or '-'}*\n\n---\n\n{article}"


class DataScreen(Screen):
    app: MorrisApp

    BINDINGS = [
        Binding("ctrl+n", "sample(1)", "Next example", priority=True),
        Binding("ctrl+b", "sample(-1)", "Previous", priority=True),
        Binding("ctrl+r", "reload", "Reload", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__(id="data")
        self.examples: list[Example] = []
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="data-body"):
            with Vertical(id="data-left", classes="sidebar"):
                yield Label("Prepared data folder (Enter loads)", classes="field-label")
                yield Input(self.app.config.data.out, id="data-dir")
                with VerticalScroll(id="data-stats-scroll"):
                    yield Static("", id="data-stats")
            with Vertical(id="data-main"):
                yield Label("Training examples (Ctrl+N next · Ctrl+B previous)", classes="field-label")
                with VerticalScroll(id="data-sample-scroll"):
                    yield Markdown("", id="data-sample")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#data-stats", Static).update(Text("reading…", style="dim"))
        self.load(self.query_one("#data-dir", Input).value)

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def load(self, text: str) -> None:
        """Reading a large train.jsonl (or measuring it) must not freeze the screen: a thread it is."""
        data_dir = resolve_data_dir(text)
        try:
            stats = read_stats(data_dir)
            if stats is None:
                stats = measure_splits(data_dir)
            sections = stats_sections(stats)
            examples = read_examples(data_dir / "train.jsonl")
        except (MorrisError, OSError) as exc:
            self.app.call_from_thread(self._show_error, describe_error(exc, f"reading {data_dir}"))
            return
        self.app.call_from_thread(self._show, str(data_dir), sections, examples)

    def _show_error(self, error: str) -> None:
        self.examples = []
        self.query_one("#data-stats", Static).update(Text(error, style="red"))
        self.query_one("#data-sample", Markdown).update("")
        self.notify(error, severity="error")

    def _show(self, where: str, sections: list[Section], examples: list[Example]) -> None:
        header = Text(where, style="dim")
        self.query_one("#data-stats", Static).update(Group(header, sections_view(sections)))
        self.examples = examples
        self.index = 0
        self._show_example()

    def _show_example(self) -> None:
        markdown = self.query_one("#data-sample", Markdown)
        if not self.examples:
            markdown.update("*No readable examples in train.jsonl.*")
            return
        markdown.update(example_markdown(self.examples[self.index], self.index, len(self.examples)))
        self.query_one("#data-sample-scroll").scroll_home(animate=False)

    def action_sample(self, step: int) -> None:
        if self.examples:
            self.index = (self.index + step) % len(self.examples)
            self._show_example()
