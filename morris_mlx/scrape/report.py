"""What the user sees: a live progress bar while crawling and a summary table at the end."""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType

from rich import get_console
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from morris_mlx.scrape.crawl import Summary


def _short(text: str, width: int = 26) -> str:
    """'article https://host/a/long/path' -> 'article …/long/path': the path is what tells pages apart."""
    text = re.sub(r"https?://[^/\s]+", "", text)
    return text if len(text) <= width else text[: width // 3] + "…" + text[-(width - width // 3 - 1):]


class RichProgress:
    """Articles kept out of --max-articles, with found/skipped/failed counts and the current page."""

    def __init__(self, max_articles: int, console: Console | None = None, enabled: bool = True) -> None:
        self.max_articles = max_articles
        self.progress = Progress(
            SpinnerColumn(),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[activity]}"),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task("scrape", total=max_articles, counts="", activity="")

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()

    def update(self, summary: Summary, activity: str) -> None:
        counts = (f"found {summary.found} skip {sum(summary.skipped.values())} "
                  f"fail {sum(summary.failed.values())}")
        total = summary.kept if activity == "done" else self.max_articles
        self.progress.update(self.task, completed=summary.kept, total=max(total, 1), counts=counts,
                             activity=_short(activity))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def summary_table(summary: Summary, out: Path) -> Table:
    """Reasons and paths are shown as plain text: a '[' in a URL must not be read as rich markup."""
    table = Table(title="scrape summary", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, text: str, style: str = "") -> None:
        table.add_row(label, Text(text, style=style))

    row("found", f"{summary.found} article links")
    row("collected", f"{summary.kept} articles: {summary.written} new, {summary.already} already in {out}")
    for reason, count in summary.skipped.most_common() or [("", 0)]:
        row("skipped", f"{count} × {reason}" if reason else "0")
    for reason, count in summary.failed.most_common() or [("", 0)]:
        row("failed", f"{count} × {reason}" if reason else "0", "red" if reason else "")
    row("pages", f"{summary.pages_fetched} fetched ({_size(summary.bytes_fetched)}), "
                 f"{summary.cache_hits} from cache")
    if summary.stopped:
        row("stopped", summary.stopped)
    return table


def print_summary(summary: Summary, out: Path, console: Console | None = None) -> None:
    (console or get_console()).print(summary_table(summary, out))
