"""Search past generations and reopen one in the write screen."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from morris_mlx.tui.history import History, HistoryEntry, matching


def entry_prompt(entry: HistoryEntry) -> Text:
    a = entry.article
    when = a.created[:16].replace("T", " ")
    preview = " ".join(a.text.split())[:70]
    text = Text()
    text.append(when, style="dim")
    text.append("  ")
    text.append(a.topic, style="bold")
    text.append(f"  [{a.adapter or 'base'}]", style="dim")
    text.append(f"\n  {preview}")
    return text


class HistoryScreen(ModalScreen[HistoryEntry | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "focus_results", "Results", show=False),
    ]

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.entries: list[HistoryEntry] = []
        self.results: list[HistoryEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="history-dialog", classes="dialog"):
            yield Label("History: past articles, newest first", classes="dialog-title")
            yield Input(placeholder="Search: every word must match topic, text, adapter or date", id="history-search")
            yield OptionList(id="history-results")
            yield Label("", id="history-count", classes="hint")

    def on_mount(self) -> None:
        self.entries = self.history.entries()  # read once; each keystroke filters in memory
        self.show_results("")
        self.query_one("#history-search", Input).focus()

    def show_results(self, query: str) -> None:
        self.results = matching(self.entries, query)
        options = self.query_one("#history-results", OptionList)
        options.clear_options()
        options.add_options([Option(entry_prompt(e), id=e.id) for e in self.results])
        if self.results:
            options.highlighted = 0
        total = len(self.results)
        count = f"{total} article{'s' if total != 1 else ''}" + (f" matching {query!r}" if query else "")
        self.query_one("#history-count", Label).update(
            Text(f"{count} · Enter opens · ↓ to the list · Escape closes")
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_results(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        index = self.query_one("#history-results", OptionList).highlighted
        if self.results:
            self.dismiss(self.results[index or 0])
        else:
            self.notify("nothing matches; change the search", severity="warning")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.results[event.option_index])

    def action_focus_results(self) -> None:
        self.query_one("#history-results", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
