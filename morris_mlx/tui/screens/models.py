"""The models screen: pick the base model and the adapter, read an adapter's provenance and metrics,
and compare two adapters (or an adapter and the bare base model) on the same prompt, side by side.

A comparison runs both sides with the same settings and seed, one after the other on the one loaded
model (the adapter is swapped between them), so it costs no second copy of the base weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown, OptionList, Static
from textual.widgets.markdown import MarkdownStream
from textual.widgets.option_list import Option
from textual.worker import Worker, get_current_worker

from morris_mlx.config import GenerateConfig
from morris_mlx.errors import MorrisError
from morris_mlx.prompts import article_messages
from morris_mlx.tui.article import Article
from morris_mlx.tui.messages import AdapterChosen, CompareDone, CompareFailed, ModelChosen
from morris_mlx.tui.session import describe_error
from morris_mlx.tui.streaming import stream_article
from morris_mlx.tui.widgets.model_status import ModelStatus

if TYPE_CHECKING:
    from morris_mlx.registry import AdapterInfo
    from morris_mlx.tui.app import MorrisApp

BASE_ONLY = "(base model, no adapter)"
DEFAULT_MODEL = "(default: the configured base model, else the embedded default)"


def model_candidates(current: Path | None) -> list[Path]:
    """Model folders on this machine: the current choice and everything under MORRIS_HOME/models."""
    from morris_mlx.paths import models_dir

    found: list[Path] = [current] if current else []
    root = models_dir()
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if (child / "config.json").is_file() and child not in found:
                found.append(child)
    return found


def _lora_summary(config: dict[str, Any]) -> str:
    params = config.get("lora_parameters")
    if isinstance(params, dict):  # mlx-lm's adapter_config.json
        keys = ", ".join(str(k).split(".")[-1] for k in params.get("keys") or []) or "default"
        return f"rank {params.get('rank')}, scale {params.get('scale')}, layers {config.get('num_layers')}, {keys}"
    if "r" in config:  # PEFT's
        modules = config.get("target_modules")
        modules = ", ".join(modules) if isinstance(modules, list) else str(modules)
        return f"rank {config.get('r')}, alpha {config.get('lora_alpha')}, {modules}"
    return "-"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def adapter_details(info: AdapterInfo) -> Table:
    """Provenance and metrics of one adapter, as one compact two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    prov = info.provenance
    data = prov.get("data") if isinstance(prov.get("data"), dict) else {}
    plan = prov.get("plan") if isinstance(prov.get("plan"), dict) else {}
    rows = [
        ("name", info.name),
        ("path", str(info.path)),
        ("format · backend", f"{info.format} · {info.backend or '-'}"),
        ("base model", info.base_model or "-"),
        ("created", info.created or "-"),
        ("LoRA", _lora_summary(info.config)),
        ("data", f"{data.get('path', '-')} (sha256 {str(data.get('sha256', ''))[:12] or '-'})"),
        ("plan", f"{plan.get('iters', '-')} iterations, {_value(plan.get('epochs'))} epochs" if plan else "-"),
    ]
    for key, value in rows:
        grid.add_row(key, Text(value))
    if not info.metrics:
        grid.add_row(Text("metrics", style="bold magenta"), Text("none recorded", style="dim"))
    for key, value in info.metrics.items():
        grid.add_row(Text(str(key).replace("_", " "), style="bold magenta"), _value(value))
    return grid


class ModelsScreen(Screen):
    app: MorrisApp

    BINDINGS = [
        Binding("a", "mark('a')", "Compare A"),
        Binding("b", "mark('b')", "Compare B"),
        Binding("ctrl+g", "compare", "Compare", priority=True),
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__(id="models")
        self.adapters: list[AdapterInfo] = []
        self.models: list[Path] = []
        self.compare_paths: dict[str, Path | None] = {"a": None, "b": None}
        self.worker: Worker | None = None
        self.results: dict[str, Article] = {}
        self._streams: dict[str, MarkdownStream] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="models-body"):
            with Vertical(id="models-left", classes="sidebar"):
                yield Label("Base model (Enter picks)", classes="field-label")
                yield OptionList(id="base-models")
                yield Input(placeholder="…or type a model folder and press Enter", id="model-path")
                yield Label("Adapters (Enter uses · a / b mark for compare)", classes="field-label")
                yield OptionList(id="adapters")
            with Vertical(id="models-right"):
                with VerticalScroll(id="adapter-detail-scroll"):
                    yield Static("", id="adapter-detail")
                yield Input(placeholder="Compare on a topic: type it, Ctrl+G writes it with A and with B",
                            id="compare-topic")
                with Horizontal(id="compare"):
                    for side in ("a", "b"):
                        with Vertical(classes="compare-side"):
                            yield Label("", id=f"compare-{side}-title", classes="compare-title")
                            with VerticalScroll(id=f"compare-{side}-scroll", classes="compare-scroll"):
                                yield Markdown("", id=f"compare-{side}")
        yield ModelStatus()
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()
        # Out of the box, compare the chosen (else the newest) adapter against the bare base model.
        chosen = self.app.session.adapter_path
        self.compare_paths["b"] = chosen or (self.adapters[0].path if self.adapters else None)
        self.action_refresh()
        self.query_one("#adapters", OptionList).focus()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    # -- lists --------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        session = self.app.session
        self.models = model_candidates(session.model_dir)
        base = self.query_one("#base-models", OptionList)
        base.clear_options()
        base.add_option(Option(Text(("● " if session.model_dir is None else "  ") + DEFAULT_MODEL)))
        for path in self.models:
            mark = "● " if session.model_dir == path else "  "
            base.add_option(Option(Text(f"{mark}{path.name}  ({path.parent})")))
        try:
            from morris_mlx.registry import list_adapters

            self.adapters = list_adapters()
        except (MorrisError, OSError) as exc:
            self.adapters = []
            self.notify(describe_error(exc, "listing adapters"), severity="error")
        options = self.query_one("#adapters", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_option(Option(self._adapter_prompt(None)))
        for info in self.adapters:
            options.add_option(Option(self._adapter_prompt(info)))
        if options.option_count:
            options.highlighted = min(highlighted or 0, options.option_count - 1)
        self._show_titles()

    def _adapter_prompt(self, info: AdapterInfo | None) -> Text:
        path = info.path if info else None
        chosen = "● " if self.app.session.adapter_path == path else "  "
        marks = "".join(side.upper() for side in ("a", "b") if self.compare_paths[side] == path)
        text = Text(chosen)
        text.append(info.name if info else BASE_ONLY, style="bold" if info else "italic")
        if info:
            loss = info.metrics.get("best_val_loss")
            text.append(f" · {info.format}", style="dim")
            if isinstance(loss, (int, float)):
                text.append(f" · val {loss:.3f}", style="dim")
        if marks:
            text.append(f" · {marks}", style="bold magenta")
        return text

    def _highlighted_adapter(self) -> tuple[bool, AdapterInfo | None]:
        """(is an adapter row highlighted, the adapter or None for the base-only row)."""
        index = self.query_one("#adapters", OptionList).highlighted
        if index is None:
            return False, None
        return True, (self.adapters[index - 1] if index > 0 else None)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id != "adapters":
            return
        detail = self.query_one("#adapter-detail", Static)
        info = self.adapters[event.option_index - 1] if event.option_index > 0 else None
        if info is None:
            detail.update(Text("The base model alone, with no adapter: the baseline to compare against."))
        else:
            detail.update(adapter_details(info))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "base-models":
            self._choose_model(None if event.option_index == 0 else self.models[event.option_index - 1])
            return
        info = self.adapters[event.option_index - 1] if event.option_index > 0 else None
        self._warn_base_mismatch(info)
        self.post_message(AdapterChosen(info.path if info else None))

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "model-path":
            from morris_mlx.models.resolve import check_model_dir

            try:
                path = check_model_dir(Path(event.value.strip()).expanduser())
            except MorrisError as exc:
                self.notify(str(exc), severity="error")
                return
            self._choose_model(path)
        elif event.input.id == "compare-topic":
            await self.action_compare()

    def _choose_model(self, path: Path | None) -> None:
        self.post_message(ModelChosen(path))

    def _warn_base_mismatch(self, info: AdapterInfo | None) -> None:
        session = self.app.session
        if info is None or not info.base_model or session.model_dir is None:
            return
        if Path(info.base_model).name != session.model_dir.name:
            self.notify(
                f"{info.name} was trained on {Path(info.base_model).name}, not {session.model_dir.name}; "
                "pick its base model above, or expect a load error",
                severity="warning",
            )

    # -- compare ------------------------------------------------------------------------------------

    def action_mark(self, side: str) -> None:
        found, info = self._highlighted_adapter()
        if not found:
            return
        self.compare_paths[side] = info.path if info else None
        self.action_refresh()

    def _label(self, path: Path | None) -> str:
        return path.name if path else "base model"

    def _show_titles(self) -> None:
        for side in ("a", "b"):
            label = f"{side.upper()}: {self._label(self.compare_paths[side])}"
            result = self.results.get(side)
            if result is not None:
                label += f"  ({result.tokens} tokens, {result.tokens_per_second:.1f} tok/s"
                label += ", stopped)" if result.finish_reason == "stopped" else ")"
            self.query_one(f"#compare-{side}-title", Label).update(Text(label))

    async def action_compare(self) -> None:
        if self.worker is not None and self.worker.is_running:
            self.notify("already comparing; Escape stops it", severity="warning")
            return
        topic = self.query_one("#compare-topic", Input).value.strip()
        if not topic:
            self.notify("type a topic to compare on", severity="warning")
            self.query_one("#compare-topic", Input).focus()
            return
        settings = self.app.settings
        if settings.seed is None:
            # The same seed on both sides, so the difference is the adapter, not the dice.
            settings = dataclasses.replace(settings, seed=0)
        try:
            messages = article_messages(topic, settings.system_prompt)
        except MorrisError as exc:
            self.notify(str(exc), severity="error")
            return
        self.results = {}
        for side in ("a", "b"):
            await self._end_stream(side)  # one left by a comparison stopped before this side began
            markdown = self.query_one(f"#compare-{side}", Markdown)
            await markdown.update("")
            self._streams[side] = Markdown.get_stream(markdown)
        self._show_titles()
        self.worker = self.compare(topic, messages, settings, dict(self.compare_paths))

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def compare(
        self,
        topic: str,
        messages: list[dict[str, str]],
        settings: GenerateConfig,
        paths: dict[str, Path | None],
    ) -> None:
        worker = get_current_worker()
        for side in ("a", "b"):
            if worker.is_cancelled:
                return

            def sink(text: str, tokens: int, tps: float, side: str = side) -> None:
                self.app.call_from_thread(self._write_partial, side, text)

            try:
                result = stream_article(self.app.session, worker, messages, settings, sink, paths[side])
            except Exception as exc:  # noqa: BLE001 - shown as a notification; the other side still runs
                self.post_message(CompareFailed(side, describe_error(exc, f"writing with {self._label(paths[side])}")))
                continue
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
            self.post_message(CompareDone(side, article))

    async def _write_partial(self, side: str, text: str) -> None:
        stream = self._streams.get(side)
        if stream is not None and text:
            await stream.write(text)

    async def _end_stream(self, side: str) -> None:
        stream = self._streams.pop(side, None)
        if stream is not None:
            await stream.stop()

    async def on_compare_done(self, message: CompareDone) -> None:
        await self._end_stream(message.side)
        self.results[message.side] = message.article
        await self.query_one(f"#compare-{message.side}", Markdown).update(message.article.text)
        self._show_titles()

    async def on_compare_failed(self, message: CompareFailed) -> None:
        await self._end_stream(message.side)
        self.notify(message.error, title=f"Compare {message.side.upper()} failed", severity="error", timeout=8)

    def action_stop(self) -> None:
        if self.worker is not None and self.worker.is_running:
            self.worker.cancel()
            self.notify("stopping the comparison")
