"""A fake backend for the TUI tests, and helpers to drive the app with Pilot.

The fake generator yields queued chunks with small sleeps (so streaming, stopping and the UI's thread
hops are real); the fake trainer emits TrainEvents through the callback like the real backends and
writes them to metrics.jsonl.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

from morris_mlx.backends.base import Chunk
from morris_mlx.errors import MorrisError
from morris_mlx.training import MetricsLog, TrainEvent, TrainResult

ARTICLE = [
    "# Open RAN's ",
    "slow ",
    "funeral\n\n",
    "Like a ship sinking ",
    "in slow motion, ",
    "the industry bet on open RAN. ",
    "What could possibly go wrong?",
]


class FakeGenerator:
    backend = "fake"

    def __init__(self, owner: FakeBackend, model_dir: Path, adapter_path: Path | None) -> None:
        self.owner = owner
        self.model_dir = model_dir
        self.adapter_path = adapter_path
        self.closed = 0

    def stream(self, messages, settings):
        self.owner.calls.append({"messages": messages, "settings": settings, "adapter": self.adapter_path})
        pieces = list(self.owner.pieces)
        if self.owner.tag:  # say in the title which adapter wrote it
            tag = self.adapter_path.name if self.adapter_path else "base"
            pieces[0] = pieces[0].replace("# ", f"# [{tag}] ", 1)
        try:
            i = 0
            while True:
                if i < len(pieces):
                    text = pieces[i]
                elif self.owner.endless:
                    text = "and on "
                else:
                    return
                i += 1
                time.sleep(self.owner.delay)
                last = i == len(pieces) and not self.owner.endless
                yield Chunk(text=text, generation_tokens=i, generation_tps=42.0, finish_reason="length" if last else None)
        finally:
            self.closed += 1

    def set_adapter(self, adapter_path, fuse=True):
        if adapter_path is not None and "bad" in adapter_path.name:
            raise ValueError(f"{adapter_path} has weights of the wrong shape")
        self.adapter_path = adapter_path

    def logits(self, token_ids):
        raise NotImplementedError("the TUI never asks for logits")

    def encode_chat(self, messages, add_generation_prompt):
        raise NotImplementedError("the TUI never encodes chats")


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        pieces: list[str] | None = None,
        delay: float = 0.002,
        endless: bool = False,
        tag: bool = False,
        load_errors: list[BaseException] | None = None,
        train_steps: int = 16,
        train_delay: float = 0.0,
        train_error: BaseException | None = None,
    ) -> None:
        self.pieces = pieces or list(ARTICLE)
        self.delay = delay
        self.endless = endless
        self.tag = tag
        self.load_errors = list(load_errors or [])
        self.load_gate: threading.Event | None = None
        self.loads: list[tuple[Path, Path | None]] = []
        self.calls: list[dict] = []
        self.generators: list[FakeGenerator] = []
        self.train_steps = train_steps
        self.train_delay = train_delay
        self.train_error = train_error
        self.trained: list[dict] = []

    def load(self, model_dir, adapter_path=None, fuse=True):
        self.loads.append((model_dir, adapter_path))
        if self.load_gate is not None:
            self.load_gate.wait(10)
        if self.load_errors:
            raise self.load_errors.pop(0)
        if adapter_path is not None and "bad" in Path(adapter_path).name:
            raise MorrisError(f"adapter {adapter_path} does not fit this model; pick another")
        generator = FakeGenerator(self, Path(model_dir), adapter_path)
        self.generators.append(generator)
        return generator

    def train(self, cfg, model_dir, data_dir, adapter_path, resume=False, callback=None, quiet=False):
        record = {"cfg": cfg, "model_dir": model_dir, "data_dir": data_dir, "adapter": adapter_path,
                  "resume": resume, "stopped_at": None}
        self.trained.append(record)
        if self.train_error is not None:
            raise self.train_error
        total = cfg.train.iters or self.train_steps
        log = MetricsLog(adapter_path)
        stop = False

        def emit(event: TrainEvent) -> None:
            nonlocal stop
            log.write(event)
            if callback is not None and callback(event):
                stop = True

        emit(TrainEvent("plan", 0, {"iters": total, "updates": total // 2, "resumed": resume}))
        step = 0
        best = None
        for step in range(1, total + 1):
            time.sleep(self.train_delay)
            emit(TrainEvent("train", step, {"loss": 3.0 / step, "tokens_per_second": 1234.0,
                                             "peak_memory_gb": 1.5, "eta_s": float(total - step),
                                             "learning_rate": 1e-4}))
            if step % 4 == 0:
                val = 3.5 / step
                best = val if best is None else min(best, val)
                emit(TrainEvent("val", step, {"val_loss": val, "best": val == best}))
                ckpt = Path(adapter_path) / "checkpoints" / f"step_{step:07d}"
                ckpt.mkdir(parents=True, exist_ok=True)
                emit(TrainEvent("checkpoint", step, {"path": str(ckpt)}))
            if stop:
                record["stopped_at"] = step
                break
        (Path(adapter_path) / "adapters.safetensors").write_bytes(b"fake")
        result = {"best_val_loss": best, "final_train_loss": 3.0 / step, "steps": step,
                  "stopped_early": record["stopped_at"] is not None}
        emit(TrainEvent("done", step, result))
        return TrainResult(Path(adapter_path), step, best, 3.0 / step, record["stopped_at"] is not None)


def make_model_dir(root: Path, name: str = "fake-model") -> Path:
    """A folder that passes check_model_dir; the fake backend never reads the weights."""
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    return path


def make_adapter(root: Path, name: str, val_loss: float = 1.25, base_model: str = "fake-model") -> Path:
    """An MLX-format adapter folder with provenance, as the registry lists it."""
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapters.safetensors").write_bytes(b"fake")
    (path / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": -1,
         "lora_parameters": {"rank": 16, "scale": 2.0, "dropout": 0.1,
                             "keys": ["self_attn.q_proj", "self_attn.v_proj"]}}))
    (path / "morris_adapter.json").write_text(json.dumps(
        {"name": name, "format": "mlx", "backend": "mlx", "created": f"2026-01-0{len(name) % 9 + 1}T10:00:00",
         "base_model": {"path": f"/models/{base_model}", "name": base_model, "fingerprint": "abc"},
         "data": {"path": "/data/processed", "sha256": "0123456789abcdef"},
         "plan": {"iters": 64, "epochs": 2.0},
         "metrics": {"best_val_loss": val_loss, "final_train_loss": val_loss - 0.2, "steps": 64}}))
    return path


async def wait_until(pilot, predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `predicate()` holds; fail (not hang) if it never does. It returns as soon as
    the condition holds, so the timeout only needs to be generous for a busy machine."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if ch == " " else ch for ch in text])


def record_notifications(app) -> list[tuple[str, str]]:
    """Every notification the app shows, as (message, severity)."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message, *args, **kwargs):
        seen.append((str(message), kwargs.get("severity", "information")))
        return original(message, *args, **kwargs)

    app.notify = notify
    return seen


def svg_text(svg: str) -> str:
    """The visible text of an SVG screenshot, one string (spans of a line run together)."""
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(parts)).replace("\xa0", " ")
