"""Training and validation loss against step, drawn with text characters (no plotting dependency).

`plot` is a pure function from series to lines of text, so it is tested without a terminal; the widget
colours the markers and redraws at whatever size it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

Y_LABEL_WIDTH = 8


@dataclass
class Series:
    name: str
    points: list[tuple[int, float]]
    marker: str
    style: str = ""


def _bounds(series: list[Series]) -> tuple[float, float]:
    values = [y for s in series for _, y in s.points]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        pad = abs(high) * 0.05 or 0.5
        return low - pad, high + pad
    return low, high


def plot(series: list[Series], width: int, height: int, x_max: int | None = None) -> list[list[tuple[str, str]]]:
    """Rows of (text, style) cells: a y axis with labels, the plot area, an x axis with step labels.

    Points sharing a cell are averaged per column (hundreds of steps fold into a line); later series
    draw over earlier ones, so pass validation last to keep its few points visible.
    """
    plot_w = max(4, width - Y_LABEL_WIDTH - 1)
    plot_h = max(2, height - 2)
    drawn = [s for s in series if s.points]
    if not drawn:
        message = "waiting for the first loss…"
        rows = [[(" " * width, "")] for _ in range(max(1, height - 1))]
        rows.append([(message[:width].ljust(width), "dim")])
        return rows
    low, high = _bounds(drawn)
    last_x = max(x for s in drawn for x, _ in s.points)
    span_x = max(1, x_max or 0, last_x)
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]
    for s in drawn:
        columns: dict[int, list[float]] = {}
        for x, y in s.points:
            col = min(plot_w - 1, round(x / span_x * (plot_w - 1)))
            columns.setdefault(col, []).append(y)
        for col, ys in columns.items():
            y = sum(ys) / len(ys)
            row = round((high - y) / (high - low) * (plot_h - 1))
            grid[min(plot_h - 1, max(0, row))][col] = (s.marker, s.style)
    rows = []
    for i, cells in enumerate(grid):
        if i == 0:
            label = f"{high:.3g}"
        elif i == plot_h - 1:
            label = f"{low:.3g}"
        elif i == plot_h // 2:
            label = f"{(high + low) / 2:.3g}"
        else:
            label = ""
        rows.append([(f"{label:>{Y_LABEL_WIDTH}}┤", "dim"), *cells])
    rows.append([(" " * Y_LABEL_WIDTH + "└" + "─" * plot_w, "dim")])
    left, right = "0", f"step {span_x}"
    gap = max(1, plot_w - len(left) - len(right) + 1)
    rows.append([(" " * Y_LABEL_WIDTH + left + " " * gap + right, "dim")])
    return rows


class LossChart(Widget):
    """Loss (•) and validation loss (◆) of the watched run."""

    DEFAULT_CSS = """
    LossChart { height: 14; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "loss • · validation loss ◆"
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.total: int | None = None

    def set_data(
        self, train: list[tuple[int, float]], val: list[tuple[int, float]], total: int | None
    ) -> None:
        self.train, self.val, self.total = list(train), list(val), total
        self.refresh()

    def render(self) -> Text:
        series = [
            Series("loss", self.train, "•", "bold cyan"),
            Series("val loss", self.val, "◆", "bold magenta"),
        ]
        width, height = self.content_size.width, self.content_size.height
        text = Text(no_wrap=True, overflow="crop")
        for i, row in enumerate(plot(series, width, height, self.total)):
            if i:
                text.append("\n")
            for cell, style in row:
                text.append(cell, style=style or None)
        return text
