"""The HTTP side: mlx-lm's APIHandler with the checks a shared server needs in front of it.

Order per request: API key, then body size, then the model the request names. Only a request that passes
all three reaches mlx-lm's own parsing and generation, unchanged.
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mlx_lm.server import APIHandler, _image_parts

from morris_mlx.serve.models import MorrisModelProvider, RequestProblem
from morris_mlx.serve.review import REQUEST_FIELD
from morris_mlx.serve.security import bearer_matches

if TYPE_CHECKING:
    from morris_mlx.serve.server import MorrisHTTPServer

log = logging.getLogger("morris")

POST_PATHS = ("/v1/chat/completions", "/chat/completions", "/v1/completions")
# An error reply is sent only after reading the body the client is still sending: closing a socket with
# unread input makes the kernel answer with a reset, and the client sees that instead of our status.
DRAIN_FACTOR = 8


class MorrisAPIHandler(APIHandler):
    server: MorrisHTTPServer
    # Seconds a socket read or write may block: a client that stalls mid-request frees its thread.
    timeout = 120
    _served_model: str | None = None  # set by _check_body before mlx-lm sees the request
    # Set by _check_body per request (one handler serves every request of a keep-alive connection).
    _review_wanted = False
    _review_text = ""

    # Errors -----------------------------------------------------------------------------------------------

    def send_error_json(self, status: int, message: str, code: str, param: str | None = None) -> None:
        """An OpenAI-shaped error: {"error": {"message", "type", "param", "code"}}."""
        body = json.dumps(
            {
                "error": {
                    "message": message,
                    "type": "authentication_error" if status == 401 else "invalid_request_error",
                    "param": param,
                    "code": code,
                }
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="morris"')
        self._set_cors_headers()
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _declared_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return length if length >= 0 else None

    def _drain(self) -> None:
        length = self._declared_length() or 0
        if length > self.server.max_body_bytes * DRAIN_FACTOR:
            return  # too much to read for nothing; the client may see a reset instead of our reply
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)

    # Checks -----------------------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        key = self.server.api_key
        if key is None or bearer_matches(self.headers.get("Authorization"), key):
            return True
        self._drain()
        self.send_error_json(
            401, "Missing or wrong API key; send the header `Authorization: Bearer KEY`", "invalid_api_key"
        )
        return False

    def _read_body(self) -> bytes | None:
        """The request body within the size cap, or None after replying with the error."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.send_error_json(
                411, "Chunked bodies are not accepted; send Content-Length", "length_required"
            )
            return None
        if "Content-Length" not in self.headers:
            self.send_error_json(411, "The Content-Length header is required", "length_required")
            return None
        length = self._declared_length()
        if length is None:
            self.send_error_json(400, "The Content-Length header is not a whole number", "invalid_length")
            return None
        if length > self.server.max_body_bytes:
            self._drain()
            self.send_error_json(
                413,
                f"The request body is {length} bytes; this server takes at most {self.server.max_body_bytes}",
                "request_too_large",
            )
            return None
        return self.rfile.read(length)

    def _check_body(self, raw: bytes) -> RequestProblem | None:
        """Model, adapter and content checks; malformed JSON is left for mlx-lm to report."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return RequestProblem(400, "The request body is not UTF-8 JSON", "invalid_json")
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        wanted = body.get(REQUEST_FIELD, False)
        if not isinstance(wanted, bool):
            return RequestProblem(
                400, f'"{REQUEST_FIELD}" must be true or false', "invalid_review", REQUEST_FIELD
            )
        self._review_wanted, self._review_text = wanted, ""
        provider: MorrisModelProvider = self.response_generator.model_provider
        try:
            self._served_model = provider.resolve_request(
                body.get("model", "default_model"), body.get("adapters"), body.get("draft_model")
            )
        except RequestProblem as problem:
            return problem
        messages = body.get("messages")
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            # mlx-lm would fetch http(s) image URLs from the server itself; these models read text only.
            if any(True for _ in _image_parts(messages)):
                return RequestProblem(
                    400, "Image content is not supported by this model", "unsupported", "messages"
                )
        return None

    # HTTP verbs -------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/health":
            return super().do_GET()  # for load balancers and probes: says nothing about the models
        if not self._authorized():
            return
        if path == "/v1/models" or path.startswith("/v1/models/"):
            return self.handle_models_request()
        self.send_error_json(404, f"No route for GET {path}", "not_found")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path not in POST_PATHS:
            self._drain()
            self.send_error_json(404, f"No route for POST {self.path}", "not_found")
            return
        raw = self._read_body()
        if raw is None:
            return
        problem = self._check_body(raw)
        if problem is not None:
            self.send_error_json(problem.status, str(problem), problem.code, problem.param)
            return
        # mlx-lm reads the body itself: hand it the bytes already read, then put the socket back.
        socket_file, self.rfile = self.rfile, io.BytesIO(raw)
        try:
            super().do_POST()
        finally:
            self.rfile = socket_file

    # mlx-lm hooks -----------------------------------------------------------------------------------------

    def validate_model_parameters(self) -> None:
        super().validate_model_parameters()
        if "repetition_penalty" not in self.body:
            # mlx-lm's default is none; ours is the configured one, as `morris generate` uses.
            self.repetition_penalty = self.server.repetition_penalty

    def handle_completion(self, request: Any, stop_words: list[str]) -> None:
        # The served name was checked in _check_body; mlx-lm batches requests whose ModelDescription is
        # equal, so "base", "default_model" and the base id all become one name here.
        self.requested_model = self._served_model
        self.adapter = None
        self.requested_draft_model = None
        super().handle_completion(request, stop_words)

    def generate_response(self, text: str, finish_reason: Any, *args: Any, **kwargs: Any) -> dict:
        """mlx-lm's reply (or stream chunk), plus the review of the whole text on the last one if asked."""
        response = super().generate_response(text, finish_reason, *args, **kwargs)
        if self._review_wanted:
            self._review_text += text or ""  # streamed deltas add up to the completion
            if finish_reason is not None:
                response[REQUEST_FIELD] = self.server.reviews.review(self._served_model, self._review_text)
        return response

    def handle_models_request(self) -> None:
        provider: MorrisModelProvider = self.response_generator.model_provider
        models = [
            {"id": provider.base_id, "object": "model", "created": self.created, "owned_by": "morris"}
        ] + [
            {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": "morris",
                "root": provider.base_id,
                "parent": provider.base_id,
            }
            for name in provider.adapters
        ]
        wanted = unquote(self.path.partition("?")[0].removeprefix("/v1/models").strip("/"))
        if wanted:
            found = [m for m in models if m["id"] == wanted]
            if not found:
                self.send_error_json(
                    404, f"The model {wanted!r} does not exist on this server", "model_not_found"
                )
                return
            payload: dict[str, Any] = found[0]
        else:
            payload = {"object": "list", "data": models}
        body = json.dumps(payload).encode()
        self._set_completion_headers(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _set_cors_headers(self) -> None:
        # Only a listed origin gets CORS headers, never "*"; Authorization must be named to be allowed.
        origin = self.headers.get("Origin")
        if origin and origin in self.server.allowed_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only; headers (and so the API key) are never logged.
        log.debug("%s %s", self.address_string(), format % args)
