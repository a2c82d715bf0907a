"""`morris serve` on the tiny random model: OpenAI shape, streaming, adapters really applied, model
selection, the security checks (key, bind, body cap, no client paths), clean Ctrl-C, and a load test."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from morris_mlx.errors import MorrisError

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
MESSAGES = [
    {"role": "system", "content": "You are a gloomy British telecom columnist."},
    {"role": "user", "content": "Write a telecom industry news article about: 5G"},
]
KEY = "sk-morris-test-0123456789abcdef"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(url: str, body: dict | bytes | None = None, key: str | None = None, method: str | None = None):
    """(status, parsed JSON or raw text) for one request; HTTP errors are returned, not raised."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def chat(server, model: str, max_tokens: int = 12, **extra):
    body = {"model": model, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0.0, **extra}
    return call(server.url + "/v1/chat/completions", body, key=server.options.api_key)


def greedy_tokens(server, model: str, max_tokens: int = 12) -> list[int]:
    status, body = chat(server, model, max_tokens, logprobs=True)
    assert status == 200, body
    return [entry["id"] for entry in body["choices"][0]["logprobs"]["content"]]


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory):
    """An MLX adapter with a large random lora_b (so it visibly moves the model) and its PEFT export."""
    from export_fixtures import make_mlx_adapter

    from morris_mlx.export.actions import export_peft

    root = tmp_path_factory.mktemp("serve_adapters")
    mlx_dir = make_mlx_adapter(tiny_model, root / "voice", b_std=0.5, seed=3)
    peft_dir = export_peft(mlx_dir, root / "voice-peft", model=str(tiny_model))
    return mlx_dir, peft_dir


def start(model_dir: Path, specs: list[str], **options):
    from morris_mlx.serve.server import MorrisServer, ServeOptions

    return MorrisServer(model_dir, specs, ServeOptions(port=0, **options)).start()


@pytest.fixture(scope="module")
def server(tiny_model, adapters):
    mlx_dir, peft_dir = adapters
    srv = start(tiny_model, [f"voice={mlx_dir}", f"voice-peft={peft_dir}"])
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def keyed(tiny_model, adapters):
    srv = start(tiny_model, [f"voice={adapters[0]}"], api_key=KEY)
    yield srv
    srv.close()


# Shape ------------------------------------------------------------------------------------------------------


def test_models_lists_exactly_the_base_and_the_served_adapters(server):
    status, body = call(server.url + "/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["tiny-mistral", "voice", "voice-peft"]
    assert body["data"][1]["parent"] == "tiny-mistral"
    status, one = call(server.url + "/v1/models/voice")
    assert status == 200 and one["id"] == "voice"
    status, missing = call(server.url + "/v1/models/gpt-4")
    assert status == 404 and missing["error"]["code"] == "model_not_found"


def test_chat_completion_has_the_openai_shape(server):
    status, body = chat(server, "voice", max_tokens=8)
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "voice"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("length", "stop")
    usage = body["usage"]
    assert usage["completion_tokens"] == 8 or choice["finish_reason"] == "stop"
    assert usage["prompt_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    text_body = {"model": "voice", "prompt": "5G is", "max_tokens": 4, "temperature": 0.0}
    status, body = call(server.url + "/v1/completions", text_body)
    assert status == 200 and body["object"] == "text_completion" and body["choices"][0]["text"]


def test_streaming_sends_sse_chunks_then_done_and_matches_the_blocking_reply(server):
    body = {
        "model": "voice",
        "messages": MESSAGES,
        "max_tokens": 10,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = urllib.request.Request(
        server.url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        lines = [line.decode().rstrip("\n") for line in response]
    events = [line for line in lines if line and not line.startswith(":")]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert chunks[-1]["usage"]["completion_tokens"] == 10
    status, blocking = chat(server, "voice", max_tokens=10)
    assert status == 200 and text == blocking["choices"][0]["message"]["content"]


# The adapter is really the adapter -----------------------------------------------------------------------


def test_greedy_output_per_adapter_matches_mlx_generator(server, tiny_model, adapters):
    from morris_mlx.backends.mlx_generate import MLXGenerator
    from morris_mlx.config import GenerateConfig

    n = 12
    # Same defaults as the server (repetition penalty included), greedy.
    settings = GenerateConfig(temp=0.0, max_tokens=n)
    generator = MLXGenerator(tiny_model)
    expected_base = [c.token for c in generator.stream(MESSAGES, settings)]
    generator.set_adapter(adapters[0])
    expected_voice = [c.token for c in generator.stream(MESSAGES, settings)]
    assert expected_voice != expected_base  # the adapter moves the model

    # Alternate so every request switches the adapter on the one loaded base.
    assert greedy_tokens(server, "voice", n) == expected_voice
    assert greedy_tokens(server, "base", n) == expected_base
    assert greedy_tokens(server, "voice-peft", n) == expected_voice  # PEFT, imported at start
    assert greedy_tokens(server, "tiny-mistral", n) == expected_base
    assert greedy_tokens(server, "voice", n) == expected_voice

    # --no-fuse: the adapter kept apart from the weights gives what MLXGenerator gives unfused.
    generator.set_adapter(adapters[0], fuse=False)
    expected_apart = [c.token for c in generator.stream(MESSAGES, settings)]
    apart = start(tiny_model, [f"voice={adapters[0]}"], fuse=False)
    try:
        assert greedy_tokens(apart, "voice", n) == expected_apart
        assert greedy_tokens(apart, "base", n) == expected_base
    finally:
        apart.close()


def test_a_template_without_a_system_role_gets_it_folded_in_as_morris_generate_does(tiny_model, tmp_path):
    from morris_mlx.backends.mlx_generate import MLXGenerator
    from morris_mlx.config import GenerateConfig

    model = tmp_path / "no-system"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    refuse = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    config["chat_template"] = refuse + config["chat_template"]
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    expected = [c.token for c in MLXGenerator(model).stream(MESSAGES, GenerateConfig(temp=0.0, max_tokens=8))]
    srv = start(model, [])
    try:
        assert greedy_tokens(srv, "base", 8) == expected
    finally:
        srv.close()


def test_unknown_model_is_404_with_an_openai_error(server):
    status, body = chat(server, "gpt-4")
    assert status == 404
    error = body["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "voice" in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"adapters": "PATH"}, "adapters"),
        ({"adapters": "/etc"}, "adapters"),
        ({"adapters": "voice-peft", "model": "voice"}, "adapters"),
        ({"draft_model": "PATH"}, "draft_model"),
    ],
)
def test_client_cannot_load_a_path_or_a_draft_model(server, adapters, extra, param):
    extra = {k: str(adapters[0]) if v == "PATH" else v for k, v in extra.items()}
    body = {"model": "base", "messages": MESSAGES, "max_tokens": 4, **extra}
    status, reply = call(server.url + "/v1/chat/completions", body)
    assert status == 400 and reply["error"]["param"] == param


def test_adapters_field_naming_a_served_adapter_selects_it(server):
    plain = greedy_tokens(server, "voice", 6)
    status, body = chat(server, "base", 6, adapters="voice", logprobs=True)
    assert status == 200 and body["model"] == "voice"
    assert [e["id"] for e in body["choices"][0]["logprobs"]["content"]] == plain


def test_image_urls_are_refused_before_anything_is_fetched(server):
    messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/x.png"}}]}
    ]
    status, body = call(server.url + "/v1/chat/completions", {"model": "base", "messages": messages})
    assert status == 400 and body["error"]["param"] == "messages"


def test_oversized_body_is_413(server):
    body = {"model": "base", "messages": [{"role": "user", "content": "x" * (1 << 20)}]}
    status, reply = call(server.url + "/v1/chat/completions", body)
    assert status == 413 and reply["error"]["code"] == "request_too_large"


# API key ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong", KEY + "x", ""])
def test_requests_without_the_right_key_are_401(keyed, key):
    status, body = call(keyed.url + "/v1/models", key=key)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    payload = {"model": "voice", "messages": MESSAGES, "max_tokens": 4}
    status, body = call(keyed.url + "/v1/chat/completions", payload, key=key)
    assert status == 401


def test_requests_with_the_right_key_are_served(keyed):
    status, body = call(keyed.url + "/v1/models", key=KEY)
    assert status == 200 and [m["id"] for m in body["data"]] == ["tiny-mistral", "voice"]
    status, body = chat(keyed, "voice", max_tokens=4)
    assert status == 200 and body["choices"][0]["message"]["content"]
    status, body = call(keyed.url + "/health")  # probes need no key
    assert status == 200 and body["status"] == "ok"


def test_the_key_never_reaches_the_logs(keyed, capfd):
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("morris")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)  # mlx-lm logs whole request bodies at DEBUG
    try:
        chat(keyed, "voice", max_tokens=4)
        call(keyed.url + "/v1/models", key=KEY)
        call(keyed.url + "/v1/models", key=KEY[:-1])  # a near miss is not echoed either
        call(keyed.url + "/v1/chat/completions", b"{not json", key=KEY)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    text = "\n".join(records) + "".join(capfd.readouterr())
    assert any("Incoming Request Body" in r for r in records)  # the debug logging did run
    assert KEY[:-1] not in text


# Startup checks ---------------------------------------------------------------------------------------------


def test_security_helpers():
    from morris_mlx.serve.security import bearer_matches, check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.20")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "k")
    with pytest.raises(MorrisError, match="API key"):
        check_bind("0.0.0.0", None)
    assert bearer_matches(f"Bearer {KEY}", KEY) and bearer_matches(f"bearer  {KEY} ", KEY)
    assert not bearer_matches(KEY, KEY) and not bearer_matches(f"Basic {KEY}", KEY)
    assert not bearer_matches(None, KEY)


def run_cli(*argv: str) -> int:
    from morris_mlx import cli

    return cli.main(["serve", *argv])


def test_non_loopback_without_a_key_is_refused_at_start(tiny_model, monkeypatch, capsys):
    monkeypatch.delenv("MORRIS_API_KEY", raising=False)
    assert run_cli("--model", str(tiny_model), "--host", "0.0.0.0", "--port", "0") == 2
    err = capsys.readouterr().err
    assert "without an API key" in err and "MORRIS_API_KEY" in err and "Traceback" not in err


def test_bad_adapters_fail_at_start_with_exit_2(tiny_model, adapters, tmp_path, capsys):
    assert run_cli("--model", str(tiny_model), "--port", "0", "--adapter", f"x={tmp_path / 'nope'}") == 2
    assert "does not exist" in capsys.readouterr().err
    misfit = tmp_path / "misfit"
    shutil.copytree(adapters[0], misfit)
    config = json.loads((misfit / "adapter_config.json").read_text())
    (misfit / "adapter_config.json").write_text(json.dumps({**config, "num_layers": 8}))
    assert run_cli("--model", str(tiny_model), "--port", "0", "--adapter", f"x={misfit}") == 2
    err = capsys.readouterr().err
    assert "adapter 'x'" in err and "8 layers" in err
    assert run_cli("--model", str(tiny_model), "--adapter", f"base={adapters[0]}") == 2
    assert "clashes" in capsys.readouterr().err


def test_adapters_can_be_named_from_the_registry(tiny_model, adapters, tmp_path):
    # conftest points MORRIS_ADAPTERS at tmp_path / "adapters": the registry's first root.
    shutil.copytree(adapters[0], tmp_path / "adapters" / "morris-r4")
    srv = start(tiny_model, ["morris-r4", f"again={adapters[1]}"])
    try:
        assert srv.model_names == ["tiny-mistral", "morris-r4", "again"]
        assert chat(srv, "morris-r4", 4)[0] == 200
    finally:
        srv.close()


def test_help_has_an_example_and_imports_neither_mlx_nor_torch():
    code = (
        "import sys\n"
        "from morris_mlx.cli import main\n"
        "try: main(['serve', '--help'])\n"
        "except SystemExit as e: print('rc', e.code)\n"
        "print([m for m in ('mlx', 'torch') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "examples:" in result.stdout and "rc 0" in result.stdout
    assert result.stdout.strip().endswith("[]")


def test_a_port_in_use_fails_at_start_with_exit_2(tiny_model, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_cli("--model", str(tiny_model), "--port", str(port)) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_server_cleanly(tiny_model, adapters, stop):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MORRIS_API_KEY", None)
    command = [sys.executable, "-m", "morris_mlx", "serve", "--model", str(tiny_model), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--adapter", f"voice={adapters[0]}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(60, proc.kill)  # a hung start must fail the test, not hang it
    watchdog.start()
    try:
        # The URL is printed on its own line once the socket listens; log lines may come first.
        url = ""
        while not url.startswith("http://"):
            line = proc.stdout.readline()
            assert line, "morris serve exited before printing its URL"
            url = line.strip()
        assert url.startswith("http://127.0.0.1:")
        status, body = call(url + "/v1/models")
        assert status == 200 and len(body["data"]) == 2
        for model in ("voice", "base"):  # generation leaves per-thread MLX state to tear down
            payload = {"model": model, "messages": MESSAGES, "max_tokens": 4}
            assert call(url + "/v1/chat/completions", payload)[0] == 200
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_requests_for_the_loaded_model_go_first_until_another_waits_too_long():
    from collections import deque
    from queue import Queue
    from types import SimpleNamespace

    from morris_mlx.serve.models import MorrisResponseGenerator

    def queued(*names: str) -> MorrisResponseGenerator:
        # The request-picking part alone: no model, no generation thread.
        gen = MorrisResponseGenerator.__new__(MorrisResponseGenerator)
        gen.requests, gen._pending, gen._max_wait = Queue(), deque(), 60.0
        gen._is_distributed, gen._rank = False, 0
        gen.model_provider = SimpleNamespace(model_key=("tiny", "voice", None), base_id="tiny")
        for i, name in enumerate(names):
            gen.requests.put((i, None, SimpleNamespace(model=SimpleNamespace(model=name))))
        return gen

    gen = queued("tiny", "other", "voice", "tiny", "voice")
    assert [gen._next_request()[0] for _ in range(5)] == [2, 4, 0, 1, 3]  # voice is loaded
    assert gen._next_request() is None
    gen = queued("tiny", "voice")
    gen._max_wait = 0.0  # the oldest has waited long enough: it goes first
    assert [gen._next_request()[0] for _ in range(2)] == [0, 1]


# Load -------------------------------------------------------------------------------------------------------


def test_concurrent_mixed_requests_are_all_served(server):
    serve_load = load_script("serve_load")
    started = time.perf_counter()
    summary, results = serve_load.run_load(
        server.url,
        requests=24,
        concurrency=8,
        models=["base", "voice", "voice-peft"],
        max_tokens=16,
        temperature=0.0,  # greedy, so no sampled end-of-turn can make a reply empty
    )
    print("\nserve load:", json.dumps(summary))
    assert summary["errors"] == 0, [r for r in results if not r["ok"]]
    assert all(r["status"] == 200 and r["content"] for r in results)
    assert [r["model"] for r in results[:3]] == ["tiny-mistral", "voice", "voice-peft"]
    assert summary["completion_tokens"] == 24 * 16
    assert summary["requests_per_s"] > 0 and time.perf_counter() - started < 60


# Content review -----------------------------------------------------------------------------------------------


def test_review_is_returned_only_when_asked_and_a_bad_value_is_400(server):
    status, plain = chat(server, "voice", max_tokens=8)
    assert status == 200 and "morris_review" not in plain
    status, reviewed = chat(server, "voice", max_tokens=8, morris_review=True)
    assert status == 200
    review = reviewed["morris_review"]
    assert set(review) >= {"needs_review", "counts", "flags", "notes"}
    assert review["needs_review"] == bool(review["flags"])
    status, bad = chat(server, "voice", max_tokens=8, morris_review="yes")
    assert status == 400 and bad["error"]["param"] == "morris_review"


def test_review_flags_the_generated_text_in_the_reply_and_the_last_stream_chunk(tiny_model, adapters, tmp_path):
    import re

    from morris_mlx.backends.mlx_generate import MLXGenerator
    from morris_mlx.config import GenerateConfig
    from morris_mlx.review import make_reviewer
    from morris_mlx.review.checklist import to_json

    # What the server will write (greedy, on the base), so that a do-not-publish list can name a word of
    # it: the flags then come from the reply's own text.
    generator = MLXGenerator(tiny_model)
    text = "".join(c.text for c in generator.stream(MESSAGES, GenerateConfig(temp=0.0, max_tokens=16)))
    word = max(re.findall(r"[^\W\d_]{3,}", text), key=len)
    terms = tmp_path / "terms.toml"
    terms.write_text(f'words = ["{word}"]\n')
    srv = start(tiny_model, [f"voice={adapters[0]}"], review_terms=terms)
    try:
        status, body = chat(srv, "base", max_tokens=16, morris_review=True)
        assert status == 200
        content = body["choices"][0]["message"]["content"]
        assert content == text
        review = body["morris_review"]
        expected = to_json(make_reviewer(None, terms_path=terms).review(content), content)
        assert {k: review[k] for k in expected} == expected
        listed = [f for f in review["flags"] if f["kind"] == "term"]
        assert listed and all(content[f["start"] : f["end"]].lower() == word.lower() for f in listed)

        payload = {"model": "base", "messages": MESSAGES, "max_tokens": 16, "temperature": 0.0,
                   "stream": True, "morris_review": True}
        request = urllib.request.Request(srv.url + "/v1/chat/completions", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            events = [line.decode().strip() for line in response if line.startswith(b"data: {")]
        chunks = [json.loads(e.removeprefix("data: ")) for e in events]
        assert "morris_review" not in chunks[0] or len(chunks) == 1
        assert chunks[-1]["morris_review"]["flags"] == review["flags"]  # over the whole streamed text
    finally:
        srv.close()
