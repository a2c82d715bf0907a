"""Shared fixtures: user state isolated in a temp dir, a tiny random model built in code, tiny data."""

from __future__ import annotations

import json
import os
from pathlib import Path

# One thread per test process (and the `morris` subprocesses it starts): the models here are tiny, and
# on a loaded 2-core machine two OpenMP threads spinning against the other load made a torch test that
# takes 5 s alone take 72-100 s. Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from morris_mlx.models.random_model import build_random_model

SYSTEM = "You are a gloomy British telecom columnist."
TOPICS = [
    "5G",
    "network slicing",
    "open RAN",
    "fibre",
    "spectrum",
    "satellites",
    "AI",
    "towers",
    "edge computing",
    "6G",
    "layoffs",
    "capex",
]


def chat_example(i: int) -> dict:
    topic = TOPICS[i % len(TOPICS)]
    body = (
        f"# The grim truth about {topic}\n\nLike a ship sinking in slow motion, the telco bet on {topic} "
        f"(and who could blame it?). What could possibly go wrong? Article {i} says: plenty."
    )
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Write a telecom industry news article about: {topic}"},
            {"role": "assistant", "content": body},
        ]
    }


def write_chat_data(directory: Path, n_train: int = 16, n_valid: int = 4, n_test: int = 4) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    start = 0
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        rows = [chat_example(start + i) for i in range(n)]
        start += n
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def pytest_configure(config):
    # transformers binds its log handler to whatever sys.stderr is when it first logs; if that happens
    # inside a test using capsys, every later test's transformers warning goes to a closed stream and
    # prints a "Logging error" traceback. Binding it now ties it to pytest's session-long capture.
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the torch extra is not installed
        return
    hf_logging.get_logger("transformers")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test touches the real MORRIS_HOME, adapters folder or hub cache, and nothing downloads."""
    home = tmp_path / "morris_home"
    monkeypatch.setenv("MORRIS_HOME", str(home))
    monkeypatch.setenv("MORRIS_ADAPTERS", str(tmp_path / "adapters"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, hidden-64 random Mistral with a locally trained BPE tokenizer (ChatML template)."""
    return build_random_model(tmp_path_factory.mktemp("models") / "tiny-mistral", shape="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_random_model(tmp_path_factory.mktemp("models") / "tiny-llama", shape="tiny-llama", seed=1)


@pytest.fixture()
def tiny_data(tmp_path) -> Path:
    """train/valid/test.jsonl in mlx-lm's chat format."""
    return write_chat_data(tmp_path / "data")
