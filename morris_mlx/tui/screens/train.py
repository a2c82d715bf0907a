"""The train screen: start a run (or attach to one already running) and watch it.

A run started here goes through `backend.train` in a thread worker whose callback forwards every
TrainEvent and asks the backend to stop cleanly when Escape is pressed. A run started elsewhere (`morris
train` in another terminal) is followed by tailing its adapter folder's metrics.jsonl; Escape detaches.
Both feed the same TrainProgress, so the picture is the same either way.

The objective (supervised, or a preference stage: ORPO, DPO) and its beta go into the run's config. A
preference stage trains on pairs; when the data folder holds chat examples instead, Build pairs makes them
in another thread worker (the base model's replies rejected) into `<data>-pairs` and points the form there;
given other writers' articles, it rejects their openings instead, with no model, into `<data>-pairs-others`.
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, Select, Static, Switch
from textual.worker import Worker, get_current_worker

from morris_mlx.config import Config, validate
from morris_mlx.errors import MorrisError
from morris_mlx.pairs import PairSettings, make_pairs, make_pairs_from_others
from morris_mlx.training import TrainEvent, checkpoints, read_metrics
from morris_mlx.tui.data_view import resolve_data_dir
from morris_mlx.tui.messages import PairsEnded, PairsProgress, TrainEnded, TrainRecord
from morris_mlx.tui.preference import (
    BETA_LABELS,
    OBJECTIVE_CHOICES,
    check_data_kind,
    data_kind,
    is_preference,
    pairs_dir_for,
    parse_beta,
)
from morris_mlx.tui.session import Cancelled, describe_error
from morris_mlx.tui.train_progress import TrainProgress, adapter_dir_for, format_eta, metrics_path
from morris_mlx.tui.widgets.loss_chart import LossChart

if TYPE_CHECKING:
    from morris_mlx.tui.app import MorrisApp


def _fmt(value: float | None, pattern: str = "{:.4f}") -> str:
    return "-" if value is None else pattern.format(value)


def progress_table(progress: TrainProgress, state: str) -> Table:
    table = Table.grid(padding=(0, 3))
    for _ in range(4):
        table.add_column()
    total = progress.total_steps or "?"
    best = f" (best {_fmt(progress.best_val_loss)})" if progress.best_val_loss is not None else ""
    table.add_row(
        Text("state", style="bold"), Text(state),
        Text("step", style="bold"), Text(f"{progress.step} / {total}"),
    )
    table.add_row(
        Text("loss", style="bold cyan"), Text(_fmt(progress.loss)),
        Text("val loss", style="bold magenta"), Text(_fmt(progress.val_loss) + best),
    )
    table.add_row(
        Text("tokens/s", style="bold"), Text(_fmt(progress.tokens_per_second, "{:,.0f}")),
        Text("ETA", style="bold"), Text(format_eta(progress.eta_s)),
    )
    table.add_row(
        Text("peak memory", style="bold"), Text(_fmt(progress.peak_memory_gb, "{:.2f} GB")),
        Text("learning rate", style="bold"), Text(_fmt(progress.learning_rate, "{:.2e}")),
    )
    return table


class TrainScreen(Screen):
    app: MorrisApp

    FOLLOW_POLL_S = 0.5

    BINDINGS = [
        Binding("ctrl+g", "start", "Train", priority=True),
        Binding("ctrl+f", "follow", "Attach", priority=True),
        Binding("escape", "stop", "Stop"),
    ]

    def __init__(self) -> None:
        super().__init__(id="train")
        self.progress = TrainProgress()
        self.mode: str | None = None  # "train" | "follow" while a run is watched
        self.state = "idle"
        self.adapter_dir: Path | None = None
        self.worker: Worker | None = None
        self._stop = threading.Event()
        self.building = False  # preference pairs are being built
        self.pair_settings = PairSettings()  # how Build pairs writes the rejected replies
        self._pairs_stop = threading.Event()

    def compose(self) -> ComposeResult:
        cfg = self.app.config
        yield Header()
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-form", classes="sidebar"):
                yield Label("", id="train-model", classes="hint")
                yield Label("Adapter (a name, or a folder)", classes="field-label")
                yield Input(f"morris-{datetime.now():%Y%m%d-%H%M}", id="train-adapter")
                yield Label("Data folder (train/valid.jsonl)", classes="field-label")
                yield Input(cfg.data.out, id="train-data")
                yield Label("Objective", classes="field-label")
                yield Select(
                    OBJECTIVE_CHOICES, value=cfg.train.objective, allow_blank=False, id="train-objective"
                )
                with Vertical(id="train-beta-row", classes="form-group"):
                    yield Label("", id="train-beta-label", classes="field-label")
                    yield Input(f"{cfg.train.beta:g}", id="train-beta", type="number")
                with Vertical(id="train-pairs-row", classes="form-group"):
                    yield Label("", id="train-pairs-hint", classes="hint")
                    yield Label("Reject other writers' text from (blank: the base model's)", classes="field-label")
                    yield Input("", id="train-pairs-others", placeholder="articles: a folder, JSONL or text file")
                    yield Button("Build pairs", id="train-build-pairs")
                    yield ProgressBar(total=None, show_eta=False, id="pairs-progress")
                    yield Label("", id="pairs-status", classes="hint")
                yield Label("Iterations (blank: epochs from the config)", classes="field-label")
                yield Input("" if cfg.train.iters is None else str(cfg.train.iters), id="train-iters",
                            type="integer")
                with Horizontal(classes="switch-row"):
                    yield Switch(False, id="train-resume")
                    yield Label("Resume from the last checkpoint", classes="switch-label")
                yield Label(
                    "Ctrl+G trains · Ctrl+F attaches to a run in that folder · Escape stops (or detaches)",
                    classes="hint",
                )
            with Vertical(id="train-main"):
                yield Static(progress_table(self.progress, self.state), id="train-stats")
                yield ProgressBar(total=None, show_eta=False, id="train-progress")
                yield LossChart(id="loss-chart")
                yield Label("Checkpoints", classes="field-label")
                yield Static(Text("none yet", style="dim"), id="train-checkpoints")
        yield Footer()

    def on_mount(self) -> None:
        self._show_model()
        self._show_preference()

    def on_screen_resume(self) -> None:
        self._show_model()
        self._show_preference()

    def _show_model(self) -> None:
        chosen = self.app.session.model_dir
        name = chosen.name if chosen else "the configured base, else the embedded default"
        self.query_one("#train-model", Label).update(Text(f"Base model: {name} (pick another in Models, F2)"))

    # -- the objective and its data ----------------------------------------------------------------

    @property
    def objective(self) -> str:
        return str(self.query_one("#train-objective", Select).value)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "train-objective":
            self._show_preference()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("train-data", "train-pairs-others"):
            self._show_preference()

    def _show_preference(self) -> None:
        """Beta for a preference objective; Build pairs when its data folder holds chat examples."""
        objective = self.objective
        preference = is_preference(objective)
        self.query_one("#train-beta-row").display = preference
        if preference:
            self.query_one("#train-beta-label", Label).update(BETA_LABELS[objective])
        data_dir = resolve_data_dir(self.query_one("#train-data", Input).value)
        needs_pairs = preference and data_kind(data_dir) == "chat"
        # While building, keep the progress on screen even if the form changed meanwhile.
        self.query_one("#train-pairs-row").display = needs_pairs or self.building
        if needs_pairs:
            others = self._others_path()
            if others is None:
                how = "the base model's replies to its prompts, rejected against the writer's"
            else:
                how = "the writer's articles, each chosen over the opening of the other writers' closest in subject"
            self.query_one("#train-pairs-hint", Label).update(
                f"This folder holds chat examples, not pairs. Build pairs: {how}, into "
                f"{pairs_dir_for(data_dir, others=others is not None)}."
            )
        self.query_one("#pairs-progress").display = self.building

    def _others_path(self) -> Path | None:
        """Other writers' text to reject, as typed; None when blank (the base model's replies then)."""
        text = self.query_one("#train-pairs-others", Input).value.strip()
        return Path(text).expanduser() if text else None

    def _set_pairs_status(self, text: str) -> None:
        self.query_one("#pairs-status", Label).update(text)

    # -- shared view --------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        p = self.progress
        self.query_one("#train-stats", Static).update(progress_table(p, self.state))
        bar = self.query_one("#train-progress", ProgressBar)
        bar.update(total=p.total_steps, progress=p.step if p.total_steps else 0)
        self.query_one("#loss-chart", LossChart).set_data(p.train_points, p.val_points, p.total_steps)
        lines = Text()
        for step, path in p.checkpoints[-6:]:
            lines.append(f"step {step:>6}  ", style="bold")
            lines.append(f"{self._short(path)}\n")
        self.query_one("#train-checkpoints", Static).update(lines or Text("none yet", style="dim"))

    def _short(self, path: str) -> str:
        """A checkpoint path relative to the run's folder (the folder is in the form already)."""
        try:
            return str(Path(path).relative_to(self.adapter_dir)) if self.adapter_dir else path
        except ValueError:
            return path

    def _begin(self, mode: str, adapter_dir: Path, state: str) -> None:
        self.mode, self.adapter_dir, self.state = mode, adapter_dir, state
        self.app.training_active = mode == "train"
        self.progress = TrainProgress()
        self._stop = threading.Event()
        self.refresh_view()

    def on_train_record(self, message: TrainRecord) -> None:
        if message.reset:
            self.progress = TrainProgress()
        self.progress.apply(message.record)
        self.refresh_view()

    def on_train_ended(self, message: TrainEnded) -> None:
        self.mode = None
        self.app.training_active = False
        if message.error:
            self.state = "failed"
            self.notify(message.error, title="Training failed", severity="error", timeout=10)
        else:
            self.state = message.summary
            self.notify(message.summary, title="Training" if message.started_here else "Attached run")
        self.refresh_view()

    def action_stop(self) -> None:
        if self.building:
            self._pairs_stop.set()
            self._set_pairs_status("stopping after the next reply…")
            return
        if self.mode is None:
            return
        self._stop.set()
        if self.mode == "train":
            self.state = "stopping cleanly at the next optimizer update…"
        else:
            self.state = "detaching…"
            if self.worker is not None:
                self.worker.cancel()
        self.refresh_view()

    def _busy(self) -> bool:
        if self.mode is not None:
            self.notify("a run is being watched; Escape stops or detaches first", severity="warning")
            return True
        if self.building:
            self.notify(
                "preference pairs are being built; wait for them, or Escape stops", severity="warning"
            )
            return True
        return False

    # -- start a run here ---------------------------------------------------------------------------

    def _train_request(self) -> tuple[Config, Path, Path, bool]:
        adapter_dir = adapter_dir_for(self.query_one("#train-adapter", Input).value)
        data_dir = resolve_data_dir(self.query_one("#train-data", Input).value)
        if not (data_dir / "train.jsonl").is_file():
            raise MorrisError(f"{data_dir} has no train.jsonl; run `morris prepare` or pick another folder")
        objective = self.objective
        check_data_kind(data_dir, objective)
        iters_text = self.query_one("#train-iters", Input).value.strip()
        cfg = copy.deepcopy(self.app.config)
        # Into the run's config, so the adapter's provenance says which stage made it.
        cfg.train.objective = objective
        if is_preference(objective):
            cfg.train.beta = parse_beta(self.query_one("#train-beta", Input).value, objective)
        if iters_text:
            try:
                cfg.train.iters = int(iters_text)
            except ValueError:
                raise MorrisError(f"iterations: {iters_text!r} is not a whole number") from None
        validate(cfg)
        resume = self.query_one("#train-resume", Switch).value
        if resume and not checkpoints(adapter_dir):
            raise MorrisError(f"{adapter_dir} has no checkpoint to resume from; turn Resume off to start afresh")
        if not resume and adapter_dir.exists() and any(adapter_dir.iterdir()):
            raise MorrisError(
                f"{adapter_dir} already holds a run; turn Resume on to continue it, or pick another name"
            )
        return cfg, adapter_dir, data_dir, resume

    def action_start(self) -> None:
        if self._busy():
            return
        try:
            cfg, adapter_dir, data_dir, resume = self._train_request()
        except MorrisError as exc:
            self.notify(str(exc), title="Cannot start training", severity="error")
            return
        self._begin("train", adapter_dir, "starting (loading the model)…")
        self.worker = self.train(cfg, adapter_dir, data_dir, resume)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train(self, cfg: Config, adapter_dir: Path, data_dir: Path, resume: bool) -> None:
        worker = get_current_worker()
        stop = self._stop

        def callback(event: TrainEvent) -> bool:
            self.post_message(TrainRecord(event.to_json()))
            return stop.is_set() or worker.is_cancelled

        self.app.call_from_thread(self._set_state, "training")
        try:
            session = self.app.session
            model_dir = session.resolve_model_dir()
            backend = session.backend()
            # The CLI's path (the shared harness), with no console progress bar to draw over the screen.
            result = backend.train(cfg, model_dir, data_dir, adapter_dir, resume, callback, quiet=True)
        except Exception as exc:  # noqa: BLE001 - shown as a notification; the app stays usable
            self.post_message(TrainEnded(adapter_dir, True, "failed", describe_error(exc, "training")))
            return
        best = f"best val loss {result.best_val_loss:.4f}; " if result.best_val_loss is not None else ""
        how = "stopped early" if result.stopped_early else "finished"
        self.post_message(
            TrainEnded(
                adapter_dir,
                True,
                f"{how} at step {result.steps}; {best}adapter in {result.adapter_path} (pick it in Models, F2)",
            )
        )

    def _set_state(self, state: str) -> None:
        if self.mode is not None:
            self.state = state
            self.refresh_view()

    # -- attach to a run elsewhere ------------------------------------------------------------------

    def action_follow(self) -> None:
        if self._busy():
            return
        try:
            adapter_dir = adapter_dir_for(self.query_one("#train-adapter", Input).value)
        except MorrisError as exc:
            self.notify(str(exc), severity="error")
            return
        if not adapter_dir.is_dir():
            self.notify(
                f"{adapter_dir} does not exist; type the folder of the run to attach to", severity="error"
            )
            return
        self._begin("follow", adapter_dir, f"following {metrics_path(adapter_dir)}")
        self.worker = self.follow(adapter_dir)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def follow(self, adapter_dir: Path) -> None:
        """Tail metrics.jsonl; a file that shrank was rewritten by a resume, so replay it from the top."""
        worker = get_current_worker()
        seen = 0
        while not (self._stop.is_set() or worker.is_cancelled):
            try:
                records = read_metrics(adapter_dir)
            except OSError as exc:
                self.post_message(TrainEnded(adapter_dir, False, "failed", describe_error(exc, "reading metrics")))
                return
            reset = len(records) < seen
            if reset:
                seen = 0
            for i, record in enumerate(records[seen:]):
                self.post_message(TrainRecord(record, reset=reset and i == 0))
            seen = len(records)
            if records and records[-1].get("kind") == "done":
                self.post_message(TrainEnded(adapter_dir, False, f"run finished at step {records[-1].get('step')}"))
                return
            self._stop.wait(self.FOLLOW_POLL_S)
        self.post_message(TrainEnded(adapter_dir, False, "detached; the run goes on"))

    # -- build preference pairs ---------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "train-build-pairs":
            self.action_build_pairs()

    def action_build_pairs(self) -> None:
        if self._busy():
            return
        data_dir = resolve_data_dir(self.query_one("#train-data", Input).value)
        kind = data_kind(data_dir)
        if kind == "pairs":
            self.notify(f"{data_dir} already holds preference pairs; train on it", severity="warning")
            return
        if kind is None:
            self.notify(
                f"{data_dir} has no train.jsonl of chat examples; "
                "run `morris prepare` or pick another folder",
                title="Cannot build pairs",
                severity="error",
            )
            return
        others = self._others_path()
        if others is not None and not others.exists():
            self.notify(
                f"{others} does not exist; name other writers' articles (a folder, JSONL or text file), "
                "or leave it blank to reject the base model's replies",
                title="Cannot build pairs",
                severity="error",
            )
            return
        out_dir = pairs_dir_for(data_dir, others=others is not None)
        if out_dir.exists():
            self._use_existing_pairs(out_dir)
            return
        self.building = True
        self._pairs_stop = threading.Event()
        self.query_one("#pairs-progress", ProgressBar).update(total=None, progress=0)
        self._show_preference()
        if others is None:
            self._set_pairs_status("loading the model…")
            self.build_pairs(data_dir, out_dir, copy.copy(self.pair_settings))
        else:
            self._set_pairs_status("matching the other writers' articles by subject…")
            self.build_pairs_from_others(data_dir, out_dir, others)

    def _use_existing_pairs(self, out_dir: Path) -> None:
        """Never replace pairs already built (minutes of generation): point the form at them instead."""
        if data_kind(out_dir) != "pairs":
            self.notify(
                f"{out_dir} exists but holds no pairs; move it away to build pairs there",
                title="Cannot build pairs",
                severity="error",
            )
            return
        self.query_one("#train-data", Input).value = str(out_dir)
        self.notify(
            f"{out_dir} already exists; training will use it (delete it to build afresh)", title="Pairs"
        )

    @work(thread=True, exclusive=True, group="pairs", exit_on_error=False)
    def build_pairs(self, data_dir: Path, out_dir: Path, settings: PairSettings) -> None:
        worker = get_current_worker()
        stop = self._pairs_stop

        def cancelled() -> bool:
            return stop.is_set() or worker.is_cancelled

        def progress(done: int, total: int) -> None:
            if cancelled():
                raise Cancelled  # make_pairs writes nothing until every reply is in
            self.post_message(PairsProgress(done, total))

        try:
            # The shared model without its adapter: the base model's own voice is what gets rejected, and
            # holding the session's lock keeps the write screen from generating meanwhile.
            with self.app.session.use(cancelled, adapter=None) as generator:
                self.post_message(PairsProgress(0, 0))
                counts = make_pairs(data_dir, out_dir, generator, settings, progress=progress)
        except Cancelled:
            self.post_message(PairsEnded(None, "stopped; no pairs written"))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a notification; the app stays usable
            self.post_message(PairsEnded(None, "failed", describe_error(exc, "building pairs")))
            return
        self.post_message(PairsEnded(out_dir, f"{counts['train']} train and {counts['valid']} valid pairs"))

    @work(thread=True, exclusive=True, group="pairs", exit_on_error=False)
    def build_pairs_from_others(self, data_dir: Path, out_dir: Path, others: Path) -> None:
        # No model and seconds of work: nothing to stop midway, and the write screen may generate meanwhile.
        try:
            counts = make_pairs_from_others(data_dir, out_dir, others)
        except Exception as exc:  # noqa: BLE001 - shown as a notification; the app stays usable
            self.post_message(PairsEnded(None, "failed", describe_error(exc, "building pairs")))
            return
        self.post_message(PairsEnded(out_dir, f"{counts['train']} train and {counts['valid']} valid pairs"))

    def on_pairs_progress(self, message: PairsProgress) -> None:
        if not message.total:
            self._set_pairs_status("writing rejected replies…")
            return
        self.query_one("#pairs-progress", ProgressBar).update(total=message.total, progress=message.done)
        self._set_pairs_status(f"rejected replies: {message.done} / {message.total}")

    def on_pairs_ended(self, message: PairsEnded) -> None:
        self.building = False
        self._set_pairs_status(message.summary)
        if message.error:
            self.notify(message.error, title="Building pairs failed", severity="error", timeout=10)
        elif message.out_dir is None:
            self.notify(message.summary, title="Pairs", severity="warning")
        else:
            self.query_one("#train-data", Input).value = str(message.out_dir)
            self.notify(f"{message.summary} in {message.out_dir}; training will use them", title="Pairs")
        self._show_preference()
