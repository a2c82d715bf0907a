"""`morris eval`: held-out perplexity, stylometry, attribution, style markers and degeneration checks.

Heavy work lives in run.py; `summarise` is re-exported for the TUI, which shows the same rows.
"""

from morris_mlx.evaluation.report import SummaryRow, read_report, summarise

__all__ = ["SummaryRow", "read_report", "summarise"]
