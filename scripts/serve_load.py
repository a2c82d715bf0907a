"""Load generator for `morris serve` (or any OpenAI-compatible server): N chat requests, C at a time.

    python scripts/serve_load.py --url http://127.0.0.1:8080 -n 48 -c 8 --model base --model morris

Prints one JSON object: requests, errors, seconds, requests_per_s, completion_tokens_per_s and latency
percentiles. Standard library only, so it runs from any Python against a server anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TOPICS = ["5G", "open RAN", "network slicing", "fibre", "satellites", "6G", "edge computing", "layoffs"]


def chat_request(
    url: str,
    model: str,
    topic: str,
    max_tokens: int,
    api_key: str | None = None,
    temperature: float | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """One non-streaming chat completion; returns {ok, status, seconds, completion_tokens, model, content}."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": f"Write a telecom industry news article about: {topic}"}],
        "max_tokens": max_tokens,
    }
    if temperature is not None:
        payload["temperature"] = temperature
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/chat/completions", data=json.dumps(payload).encode(), headers=headers
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
            status = response.status
    except urllib.error.HTTPError as exc:
        return {
            "ok": False,
            "status": exc.code,
            "seconds": time.perf_counter() - started,
            "error": exc.reason,
        }
    except (OSError, ValueError) as exc:
        return {"ok": False, "status": None, "seconds": time.perf_counter() - started, "error": str(exc)}
    return {
        "ok": status == 200,
        "status": status,
        "seconds": time.perf_counter() - started,
        "completion_tokens": reply.get("usage", {}).get("completion_tokens", 0),
        "model": reply.get("model"),
        # Empty is not an error: a sampled end-of-turn token can come first.
        "content": reply["choices"][0]["message"]["content"] or "",
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 4)


def run_load(
    url: str,
    requests: int,
    concurrency: int,
    models: list[str],
    max_tokens: int = 32,
    api_key: str | None = None,
    temperature: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send `requests` chats, `concurrency` at a time, cycling through `models`; (summary, results)."""
    jobs = [(models[i % len(models)], TOPICS[i % len(TOPICS)]) for i in range(requests)]

    def one(job: tuple[str, str]) -> dict[str, Any]:
        return chat_request(url, job[0], job[1], max_tokens, api_key, temperature)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, jobs))
    seconds = time.perf_counter() - started
    served = [r for r in results if r["ok"]]
    tokens = sum(r["completion_tokens"] for r in served)
    summary = {
        "requests": requests,
        "concurrency": concurrency,
        "models": models,
        "max_tokens": max_tokens,
        "errors": len(results) - len(served),
        "empty_replies": sum(not r["content"] for r in served),
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 2),
        "completion_tokens": tokens,
        "completion_tokens_per_s": round(tokens / seconds, 1),
        "latency_p50_s": _percentile([r["seconds"] for r in served], 0.50),
        "latency_p95_s": _percentile([r["seconds"] for r in served], 0.95),
    }
    return summary, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("-n", "--requests", type=int, default=24)
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("--model", action="append", help="model name; repeat to alternate (default: base)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, help="default: the server's")
    p.add_argument("--api-key", default=os.environ.get("MORRIS_API_KEY"), help="default: $MORRIS_API_KEY")
    args = p.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        p.error("--requests and --concurrency must be at least 1")
    summary, _ = run_load(
        args.url,
        args.requests,
        args.concurrency,
        args.model or ["base"],
        args.max_tokens,
        args.api_key,
        args.temperature,
    )
    json.dump(summary, sys.stdout)
    print()
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
