"""The review of the article on screen: its flagged spans highlighted in the text, and a checklist the
person ticks item by item (Space or a click), as `morris review` lists them."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

from morris_mlx.review.flag import Flag, line_col

# Background per kind; a claim (a whole sentence) is only underlined, so the spans inside it still show.
STYLES = {
    "claim": "underline",
    "name": "black on #8abeb7",
    "date": "black on #b5bd68",
    "number": "black on #81a2be",
    "quote": "black on #f0c674",
    "copied": "black on #de935f",
    "term": "bold white on #cc6666",
}
LABELS = {
    "quote": "quote",
    "number": "number",
    "date": "date",
    "name": "name",
    "claim": "claim",
    "copied": "copied",
    "term": "listed",
}
TICKED_STYLE = "dim strike"
CURRENT_STYLE = "reverse"


def highlighted(text: str, flags: Sequence[Flag], ticked: Sequence[bool] = (), current: int | None = None) -> Text:
    """`text` with each flag's span styled by kind; ticked ones dimmed, the current one reversed."""
    out = Text(text)
    ticks = list(ticked) + [False] * (len(flags) - len(ticked))
    # Claims first, so that the shorter spans inside a claimed sentence are drawn over its underline.
    order = sorted(range(len(flags)), key=lambda i: (flags[i].kind != "claim", flags[i].start))
    for i in order:
        flag = flags[i]
        out.stylize(TICKED_STYLE if ticks[i] else STYLES.get(flag.kind, "reverse"), flag.start, flag.end)
    if current is not None and 0 <= current < len(flags):
        out.stylize(CURRENT_STYLE, flags[current].start, flags[current].end)
    return out


def item_label(flag: Flag, text: str, width: int = 60) -> Text:
    line, col = line_col(text, flag.start)
    snippet = " ".join(flag.text.split())
    if len(snippet) > width:
        snippet = snippet[: width - 1] + "…"
    label = Text()
    label.append(f"{LABELS.get(flag.kind, flag.kind):<7}", style=STYLES.get(flag.kind, ""))
    label.append(f" {line}:{col} ", style="dim")
    label.append(snippet)
    return label


class ReviewPanel(Vertical):
    """A title line and the checklist; hidden until an article has been reviewed."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.flags: list[Flag] = []

    def compose(self) -> ComposeResult:
        yield Label("", id="review-title")
        yield SelectionList[int](id="review-list")
        yield Label("", id="review-detail")

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        # What to check about the item under the cursor (the list shows one line an item); the event
        # goes on to the screen, which moves the highlight in the article.
        index = event.selection_index
        detail = self.flags[index].detail if 0 <= index < len(self.flags) else ""
        self.query_one("#review-detail", Label).update(Text(detail))

    def show(self, flags: Sequence[Flag], text: str, summary: str) -> None:
        self.flags = list(flags)
        checklist = self.query_one("#review-list", SelectionList)
        checklist.clear_options()
        checklist.add_options([Selection(item_label(f, text), i) for i, f in enumerate(self.flags)])
        self.query_one("#review-title", Label).update(Text(summary))
        self.query_one("#review-detail", Label).update("")
        self.display = True

    def clear(self) -> None:
        self.flags = []
        self.query_one("#review-list", SelectionList).clear_options()
        self.display = False

    @property
    def ticked(self) -> list[bool]:
        chosen = set(self.query_one("#review-list", SelectionList).selected)
        return [i in chosen for i in range(len(self.flags))]

    @property
    def current(self) -> int | None:
        checklist = self.query_one("#review-list", SelectionList)
        return checklist.highlighted if checklist.has_focus else None
