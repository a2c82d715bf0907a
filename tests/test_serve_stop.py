"""`morris serve` stops on Ctrl-C or SIGTERM every time: 30 starts and stops, half of them while a
response streams, with both cores kept busy by other processes, and some started the way a shell starts
a background job (SIGINT ignored), which Python would otherwise keep ignoring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

STARTS = 30
MESSAGES = [{"role": "user", "content": "Write about 5G"}]


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    from export_fixtures import make_mlx_adapter

    return tiny_model, make_mlx_adapter(tiny_model, tmp_path_factory.mktemp("stop") / "voice", b_std=0.5)


@pytest.fixture(scope="module")
def busy_cores():
    """Two processes spinning for the whole test: the machine's cores are never idle."""
    # Niced: the cores stay saturated, yet the servers under test are not starved into minutes per start.
    spin = "import os; os.nice(19)\nwhile True: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    yield
    for proc in spinners:
        proc.kill()
        proc.wait()


def post(url: str, body: dict) -> urllib.request.Request:
    return urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})


def start_server(model, adapter, ignore_sigint: bool) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    env.pop("MORRIS_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "morris_mlx", "serve", "--model", str(model), "--port", "0"]
        + ["--adapter", f"voice={adapter}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # What `cmd &` in a non-interactive shell does to the job it starts.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )
    url = ""
    while not url.startswith("http://"):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"morris serve exited before printing its URL: {proc.stderr.read()[-2000:]}")
        url = line.strip()
    return proc, url


def stop(proc: subprocess.Popen, signum: int) -> tuple[int | None, str]:
    """Send `signum`; on a hang, SIGABRT makes faulthandler print every thread's stack into stderr."""
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        return None, err
    return proc.returncode, err


def test_thirty_starts_and_stops_never_hang(served, busy_cores):
    model, adapter = served
    failures = []
    for i in range(STARTS):
        signum = (signal.SIGINT, signal.SIGTERM)[i % 2]
        streaming = i % 4 in (0, 1)
        proc, url = start_server(model, adapter, ignore_sigint=i % 3 == 0)
        response = None
        try:
            if streaming:
                body = {"model": "voice", "messages": MESSAGES, "max_tokens": 4000, "stream": True}
                response = urllib.request.urlopen(post(url + "/v1/chat/completions", body), timeout=60)
                while not response.readline().startswith(b"data:"):  # skip keep-alive comments
                    pass  # until tokens are flowing
            else:
                body = {"model": "base", "messages": MESSAGES, "max_tokens": 4}
                with urllib.request.urlopen(post(url + "/v1/chat/completions", body), timeout=60) as r:
                    assert r.status == 200
            code, err = stop(proc, signum)
        finally:
            if response is not None:
                response.close()
            proc.kill()
        if code != 0 or "Traceback" in err or "stopping" not in err:
            failures.append(f"start {i} ({signal.Signals(signum).name}, streaming={streaming}): rc={code}\n{err[-3000:]}")
    assert not failures, "\n\n".join(failures)
