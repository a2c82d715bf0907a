"""Assemble and run the server: load the base, check every adapter, bind, then start mlx-lm's engine.

`MorrisServer` is what both `morris serve` (blocking, in the main thread) and the tests (in a thread, on
port 0) use; `close()` stops the HTTP loop and the generation thread and removes the converted adapters.
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from morris_mlx.errors import MorrisError
from morris_mlx.serve.adapters import ServedAdapter, prepare_adapters, resolve_adapters
from morris_mlx.serve.models import (
    BASE_ALIASES,
    MorrisModelProvider,
    MorrisResponseGenerator,
    Sampling,
    base_model_id,
    mlx_server_args,
)
from morris_mlx.serve.review import ReviewService
from morris_mlx.serve.security import check_bind

log = logging.getLogger("morris")

MAX_BODY_BYTES = 1 << 20


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    allowed_origins: tuple[str, ...] = ()
    fuse: bool = True  # fused adapters decode faster; a switch then re-fuses in memory
    # Sequences decoded together; mlx-lm's default of 32 is sized for a GPU.
    decode_concurrency: int = 16
    prompt_concurrency: int = 8
    trust_remote_code: bool = False
    sampling: Sampling = field(default_factory=Sampling)
    review_terms: Path | None = None  # the do-not-publish list a requested review flags


class MorrisHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the settings the handler checks, and quiet about dropped clients."""

    daemon_threads = True

    def __init__(self, address: Any, handler: Any, options: ServeOptions) -> None:
        self.api_key = options.api_key
        self.max_body_bytes = options.max_body_bytes
        self.allowed_origins = frozenset(options.allowed_origins)
        self.repetition_penalty = options.sampling.repetition_penalty
        self.reviews = ReviewService({}, options.review_terms)  # the adapters are added once checked
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address[0], exc)
            return
        log.warning("request from %s failed: %s", client_address[0], exc)
        log.debug("request failure", exc_info=True)


def _bind(options: ServeOptions, handler: Any) -> MorrisHTTPServer:
    try:
        infos = socket.getaddrinfo(
            options.host, options.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, address = infos[0]
    except (OSError, IndexError):
        raise MorrisError(
            f"cannot resolve --host {options.host!r}; pass an address such as 127.0.0.1"
        ) from None
    server_class = type("BoundServer", (MorrisHTTPServer,), {"address_family": family})
    try:
        return server_class(address, handler, options)
    except OSError as exc:
        raise MorrisError(
            f"cannot listen on {options.host}:{options.port} ({exc.strerror or exc}); "
            "pick another --port or stop whatever holds it"
        ) from None


class MorrisServer:
    """One base model and its adapters behind mlx-lm's OpenAI-compatible API."""

    def __init__(self, model_dir: Path, adapter_specs: list[str], options: ServeOptions) -> None:
        from mlx_lm.models.cache import LRUPromptCache
        from mlx_lm.server import get_system_fingerprint

        from morris_mlx.backends.mlx_generate import MLXGenerator
        from morris_mlx.serve.handler import MorrisAPIHandler

        check_bind(options.host, options.api_key)  # before minutes of loading, not after
        self.options = options
        model_dir = Path(model_dir)
        reserved = {base_model_id(model_dir), str(model_dir), *BASE_ALIASES}
        resolved = resolve_adapters(adapter_specs, reserved)
        self._work_dir = tempfile.TemporaryDirectory(prefix="morris-serve-")
        self._httpd: MorrisHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = False
        try:
            # Bind first: a port in use fails in a second, not after loading the model. Connections that
            # arrive while it loads wait in the listen backlog.
            handler = partial(MorrisAPIHandler, system_fingerprint=get_system_fingerprint())
            self._httpd = _bind(options, lambda *a: handler(self.response_generator, *a))
            generator = MLXGenerator(model_dir, trust_remote_code=options.trust_remote_code)
            self.adapters: dict[str, ServedAdapter] = prepare_adapters(
                resolved, generator, Path(self._work_dir.name)
            )
            self._httpd.reviews = ReviewService(
                {name: a.source for name, a in self.adapters.items()}, options.review_terms
            )
            args = mlx_server_args(
                model_dir,
                options.sampling,
                options.allowed_origins,
                options.decode_concurrency,
                options.prompt_concurrency,
                options.trust_remote_code,
            )
            self.provider = MorrisModelProvider(args, generator, self.adapters, fuse=options.fuse)
            self.response_generator = MorrisResponseGenerator(
                self.provider, LRUPromptCache(args.prompt_cache_size)
            )
        except BaseException:
            self._cleanup()
            raise

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.options.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def model_names(self) -> list[str]:
        return self.provider.served_names

    def serve_forever(self) -> None:
        """Serve until close() from another thread, or until Ctrl-C reaches this (main) thread."""
        assert self._httpd is not None
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False

    def start(self) -> MorrisServer:
        """Serve from a background thread (tests, embedding); returns once the socket accepts."""
        self._thread = threading.Thread(target=self.serve_forever, name="morris-serve", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None and self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        generator = getattr(self, "response_generator", None)
        if generator is not None:
            generator.stop_and_join()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._httpd is not None:
            self._httpd.server_close()
            self._httpd = None
        self._work_dir.cleanup()

    def __enter__(self) -> MorrisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
