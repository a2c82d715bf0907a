"""Console logging through rich, plus a log file under MORRIS_HOME."""

from __future__ import annotations

import logging

from morris_mlx.paths import morris_home


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Console at INFO (DEBUG with --verbose, WARNING with --quiet); the file always at DEBUG."""
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("morris")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    from rich.console import Console

    # Logs go to stderr so that `morris generate "5G" > article.md` holds the article and nothing else.
    console = RichHandler(console=Console(stderr=True), show_path=False, show_time=False, markup=False)
    console.setLevel(level)
    logger.addHandler(console)
    try:
        log_dir = morris_home() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "morris.log", encoding="utf-8")
    except OSError:
        return  # a read-only home must not stop the command; the console still logs
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(file_handler)
