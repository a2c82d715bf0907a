"""The Textual app: four screens (write, models, train, data) as modes, one shared model session, and a
command palette (Ctrl+P) that reaches every screen and action.

`create_app` is the one way to build it, shared by `morris tui` and the tests (which pass a fake
backend factory), the Posting/Elia way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from morris_mlx.config import Config, GenerateConfig, load_config
from morris_mlx.review import Reviewer, make_reviewer
from morris_mlx.tui.article import writer_name
from morris_mlx.tui.history import History
from morris_mlx.tui.messages import AdapterChosen, ModelChosen
from morris_mlx.tui.screens.data import DataScreen
from morris_mlx.tui.screens.models import ModelsScreen
from morris_mlx.tui.screens.train import TrainScreen
from morris_mlx.tui.screens.write import WriteScreen
from morris_mlx.tui.session import BackendFactory, Cancelled, ModelSession, describe_error

QUIT_CONFIRM_S = 5.0
SCREEN_KEYS = {"write": "f1", "models": "f2", "train": "f3", "data": "f4"}
SCREEN_HELP = {
    "write": "Write an article on a topic, streamed as it is generated",
    "models": "Pick the base model and adapter; see provenance and metrics; compare two adapters",
    "train": "Start a run (supervised or preference), or attach to a running one, and watch its loss",
    "data": "Corpus and split statistics, and sample training examples",
}


class MorrisApp(App):
    TITLE = "morris"
    CSS_PATH = "morris.tcss"
    MODES = {"write": WriteScreen, "models": ModelsScreen, "train": TrainScreen, "data": DataScreen}
    DEFAULT_MODE = "write"
    BINDINGS = [
        Binding("f1", "switch_mode('write')", "Write"),
        Binding("f2", "switch_mode('models')", "Models"),
        Binding("f3", "switch_mode('train')", "Train"),
        Binding("f4", "switch_mode('data')", "Data"),
    ]

    model_state: reactive[tuple[str, str]] = reactive(("unloaded", "not loaded (loads on first use)"))

    def __init__(
        self,
        session: ModelSession,
        config: Config,
        history: History | None = None,
        writer: str | None = None,
        review_terms: Path | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.review_terms = review_terms  # the do-not-publish list (None: MORRIS_HOME's, if any)
        self._reviewers: dict[Path | None, Reviewer] = {}
        self._reviewers_lock = threading.Lock()
        self.config = config
        self.settings: GenerateConfig = config.generate  # last settings the write screen accepted
        self.history = history or History()
        self.writer = writer or writer_name(config.scrape.profile)
        self.training_active = False  # set by the train screen while a run it started is going
        self._quit_asked = 0.0
        session.report = self.report_model_state

    def on_mount(self) -> None:
        self._update_subtitle()

    async def action_quit(self) -> None:
        """Quitting mid-training would wait for the run's next clean stop: say so, and ask again."""
        now = time.monotonic()
        if self.training_active and now - self._quit_asked > QUIT_CONFIRM_S:
            self._quit_asked = now
            self.notify(
                "training is running: Escape on the Train screen (F3) stops it cleanly. Press Ctrl+Q again "
                "to quit anyway (the run stops at its next update first).",
                severity="warning",
                timeout=QUIT_CONFIRM_S,
            )
            return
        self.exit()

    def _update_subtitle(self) -> None:
        chosen, loaded = self.session.model_dir, self.session.loaded_model
        model = chosen.name if chosen else loaded.name if loaded else "default model"
        adapter = self.session.adapter_path.name if self.session.adapter_path else "no adapter"
        self.sub_title = f"{model} + {adapter} · in the style of {self.writer}"

    def report_model_state(self, phase: str, detail: str) -> None:
        """Safe from any thread: the session calls it from workers while loading."""
        if threading.get_ident() == self._thread_id:
            self._set_model_state(phase, detail)
        else:
            try:
                self.call_from_thread(self._set_model_state, phase, detail)
            except RuntimeError:
                pass  # the app is shutting down; nobody is left to show it to

    def _set_model_state(self, phase: str, detail: str) -> None:
        self.model_state = (phase, detail)
        if phase == "ready":
            self._update_subtitle()

    # -- choices from the models screen -------------------------------------------------------------

    def _show_choice(self) -> None:
        self._update_subtitle()
        if isinstance(self.screen, ModelsScreen):
            self.screen.action_refresh()  # move its "●" to the new choice

    def on_model_chosen(self, message: ModelChosen) -> None:
        self.session.choose_model(message.model_dir)
        self._show_choice()
        name = message.model_dir.name if message.model_dir else "the default model"
        self.notify(f"base model: {name} (loads on the next generation; Ctrl+L loads it now)")

    def on_adapter_chosen(self, message: AdapterChosen) -> None:
        self.session.choose_adapter(message.adapter_path)
        self._show_choice()
        name = message.adapter_path.name if message.adapter_path else "none (the base model alone)"
        self.notify(f"adapter: {name}")

    # -- review ---------------------------------------------------------------------------------------

    def reviewer(self, adapter: Path | None) -> Reviewer:
        """The reviewer for articles an adapter wrote (its training data indexed once); any thread."""
        with self._reviewers_lock:
            if adapter not in self._reviewers:
                self._reviewers[adapter] = make_reviewer(adapter, terms_path=self.review_terms)
            return self._reviewers[adapter]

    # -- loading on request -------------------------------------------------------------------------

    def action_load_model(self) -> None:
        self.load_model()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_model(self) -> None:
        worker = get_current_worker()
        try:
            self.session.load_now(lambda: worker.is_cancelled)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - a notification, never a crash
            self.call_from_thread(
                self.notify, describe_error(exc, "loading the model"), title="Model", severity="error", timeout=8
            )

    # -- command palette ----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for mode, key in SCREEN_KEYS.items():
            yield SystemCommand(f"Go to {mode.title()} ({key.upper()})", SCREEN_HELP[mode], self._switcher(mode))
        yield SystemCommand("Load model now", "Load the chosen base model and adapter in the background",
                            self.action_load_model)
        actions = {
            WriteScreen: [
                ("Write article", "Generate an article on the topic (Ctrl+G / Enter)", "generate"),
                ("Stop writing", "Stop and keep the partial article (Escape)", "stop"),
                ("Save article", "Save as Markdown with the attribution line and review checklist (Ctrl+S)", "save"),
                ("Review checklist", "Go to the list of what to check before publishing (Ctrl+T)", "checklist"),
                ("Copy article", "Copy the article to the clipboard (Ctrl+O)", "copy"),
                ("Search history", "Find and reopen a past article (Ctrl+R)", "history"),
            ],
            ModelsScreen: [
                ("Compare adapters", "Write the compare topic with A and with B (Ctrl+G)", "compare"),
                ("Refresh adapters", "Read the adapter registry again (Ctrl+R)", "refresh"),
            ],
            TrainScreen: [
                ("Start training", "Train an adapter with the form's settings (Ctrl+G)", "start"),
                ("Attach to a run", "Follow the metrics of a run in the adapter folder (Ctrl+F)", "follow"),
                ("Stop training", "Stop cleanly at the next update, or detach (Escape)", "stop"),
                ("Build preference pairs", "Pairs from the chat data folder, for ORPO or DPO", "build_pairs"),
            ],
            DataScreen: [("Reload data", "Read stats.json and the examples again (Ctrl+R)", "reload")],
        }
        for title, help_text, action in actions.get(type(screen), []):
            yield SystemCommand(title, help_text, self._screen_action(screen, action))
        yield from super().get_system_commands(screen)

    def _switcher(self, mode: str):
        return lambda: self.switch_mode(mode)

    def _screen_action(self, screen: Screen, action: str):
        async def run() -> None:
            await screen.run_action(action)

        return run


def create_app(
    backend_factory: BackendFactory | None = None,
    model_dir: Path | None = None,
    adapter_path: Path | None = None,
    config: Config | None = None,
    history: History | None = None,
    writer: str | None = None,
    review_terms: Path | None = None,
) -> MorrisApp:
    """Build the app. Nothing heavy happens here: the backend is made, and the model loaded, on first use."""
    config = config or load_config()
    if backend_factory is None:
        from morris_mlx.backends import get_backend

        def backend_factory(name: str):
            return get_backend(name, announce=False, trust_remote_code=config.model.trust_remote_code)

    session = ModelSession(backend_factory, config, model_dir=model_dir, adapter_path=adapter_path)
    return MorrisApp(session, config, history=history, writer=writer, review_terms=review_terms)
