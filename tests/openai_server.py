"""A real HTTP server on 127.0.0.1 speaking the OpenAI API, for tests (standard library only).

``OpenAIServer(responder)`` serves ``POST /v1/chat/completions``, ``POST /v1/completions`` and
``GET /v1/models`` from a thread. The *responder* decides each reply: a :class:`Reply` (wrapped
into the OpenAI JSON shape of the endpoint that was called, or streamed word by word as
server-sent events when the request says ``stream``; cut at the request's ``stop`` sequences, as
real servers do) or a fault: :class:`Status` (an HTTP
error, optionally with ``Retry-After``), :class:`Hang` (say nothing until the client gives up),
:class:`Drop` (close the connection half-way through the body) or :class:`Raw` (any body, e.g.
malformed JSON). :class:`LocalModelResponder` answers with a real model
(``mulligan.models.local.LocalModel``) instead.

Before the responder runs, the server itself answers like a real one: 401 when ``api_key`` is set
and the request's bearer token differs (``GET /models`` too), 404 when the model is not one of
``model_ids``.
``GET /v1/models`` lists ``reported_ids`` (default: ``model_ids``), each entry with a ``created``
time of the request, as vLLM's, and the fields of ``model_info`` (e.g. vLLM's ``root``,
llama.cpp's ``meta``); ``serve_models = False`` makes it a 404, as on servers without the route.

Every request is recorded (``server.requests``), and ``server.max_in_flight`` says how many were
being handled at once, so tests can check counts and concurrency from the server's side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mulligan.events import Message
from mulligan.models.base import ContextWindowExceeded, GenerateParams, Model


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    seq: int
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def last_user(self) -> str:
        """The last user message (chat) or the prompt (completion)."""
        if "messages" in self.body:
            users = [m["content"] for m in self.body["messages"] if m["role"] == "user"]
            return users[-1] if users else ""
        return str(self.body.get("prompt", ""))


@dataclass(frozen=True)
class Reply:
    """A normal answer. Token counts default to whitespace word counts."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0  # between stream events (stream=True requests)


@dataclass(frozen=True)
class Status:
    """An HTTP error with an OpenAI-shaped error body (or ``body`` verbatim)."""

    code: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Hang:
    """Read the request, then answer nothing for ``seconds`` (or until the server stops)."""

    seconds: float = 10.0


@dataclass(frozen=True)
class Drop:
    """Send the headers and part of a valid body, then close the connection."""


@dataclass(frozen=True)
class Raw:
    """Any body with any status, e.g. malformed JSON with 200 OK."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


Response = Reply | Status | Hang | Drop | Raw
Responder = Callable[[Request], Response]


def echo_responder(request: Request) -> Response:
    """Answers ``echo: <last user message>``."""
    return Reply(f"echo: {request.last_user}")


def _words(text: str) -> int:
    return len(text.split())


def _prompt_words(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(_words(str(m.get("content", ""))) for m in body["messages"])
    return _words(str(body.get("prompt", "")))


def _apply_stop(reply: Reply, stop: object) -> Reply:
    """Cut the text before the first stop sequence, as real servers do (they omit the stop)."""
    stops = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, list) else []
    cuts = [i for s in stops if isinstance(s, str) and s and (i := reply.text.find(s)) >= 0]
    if not cuts:
        return reply
    return Reply(
        reply.text[: min(cuts)],
        "stop",
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.delay_s,
        reply.chunk_delay_s,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # 200 concurrent clients must not overflow the listen backlog (default 5), or the kernel
    # refuses connections and tests see faults they did not script.
    request_queue_size = 1024
    owner: OpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers; every reply has Content-Length
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output clean

    # -- plumbing

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        err = {"message": message, "type": "invalid_request_error", "code": code}
        self._send(status, json.dumps({"error": err}).encode(), headers)

    # -- endpoints

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route {self.path}")
            return
        with owner._lock:
            owner.models_asked += 1
        if not owner.serve_models:
            self._error(404, f"no route {self.path}")
            return
        bearer = self.headers.get("authorization")
        if owner.api_key is not None and bearer != f"Bearer {owner.api_key}":
            self._error(401, "Incorrect API key provided", "invalid_api_key")
            return
        ids = owner.model_ids if owner.reported_ids is None else owner.reported_ids
        data = [
            {"id": m, "object": "model", "created": time.time(), "owned_by": "test"}
            | owner.model_info
            for m in ids
        ]
        self._send(200, json.dumps({"object": "list", "data": data}).encode())

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "request body is not JSON")
            return
        request = owner._record(path, body, {k.lower(): v for k, v in self.headers.items()})
        try:
            self._answer(owner, request)
        finally:
            owner._done()

    def _answer(self, owner: OpenAIServer, request: Request) -> None:
        bearer = request.headers.get("authorization")
        if owner.api_key is not None and bearer != f"Bearer {owner.api_key}":
            self._error(401, "Incorrect API key provided", "invalid_api_key")
            return
        model = request.body.get("model")
        if owner.model_ids and model not in owner.model_ids:
            self._error(404, f"The model `{model}` does not exist.", "model_not_found")
            return
        response = owner.responder(request)
        streaming = bool(request.body.get("stream"))
        if isinstance(response, Reply):
            response = _apply_stop(response, request.body.get("stop"))
            if response.delay_s:
                owner.stopping.wait(response.delay_s)
            if streaming:
                self._stream(request, response, self._events(request, response))
            else:
                self._send(200, json.dumps(self._shape(request, response)).encode())
        elif isinstance(response, Status):
            if response.body is not None:
                self._send(response.code, response.body, response.headers)
            else:
                self._error(response.code, response.message, response.error_code, response.headers)
        elif isinstance(response, Raw):
            self._send(response.status, response.body, content_type=response.content_type)
        elif isinstance(response, Hang):
            owner.stopping.wait(response.seconds)
            self.close_connection = True
        elif isinstance(response, Drop) and streaming:
            reply = Reply("never delivered in full")
            events = self._events(request, reply)[:2]
            self._stream(request, reply, events, finish=False)
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif isinstance(response, Drop):
            body = json.dumps(self._shape(request, Reply("never delivered"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:  # pragma: no cover - the Response union is closed
            raise TypeError(f"unknown response {response!r}")

    def _stream(
        self, request: Request, reply: Reply, events: list[dict[str, Any]], finish: bool = True
    ) -> None:
        """Send ``events`` as server-sent events in chunked encoding, one chunk per event."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        payloads = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
        if finish:
            payloads.append(b"data: [DONE]\n\n")
        for payload in payloads:
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()
            if reply.chunk_delay_s:
                time.sleep(reply.chunk_delay_s)
        if finish:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    @classmethod
    def _events(cls, request: Request, reply: Reply) -> list[dict[str, Any]]:
        """The reply as OpenAI stream chunks: word by word, the finish, then usage if asked."""
        whole = cls._shape(request, reply)
        chat = request.path.endswith("/chat/completions")
        kind = "chat.completion.chunk" if chat else "text_completion"
        head = {"id": whole["id"], "object": kind, "created": whole["created"]}
        head["model"] = whole["model"]
        pieces = [w + " " for w in reply.text.split(" ")]
        if pieces:
            pieces[-1] = pieces[-1][:-1]
        events: list[dict[str, Any]] = []
        if chat:
            events.append({**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for piece in pieces:
            choice: dict[str, Any] = (
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                if chat
                else {"index": 0, "text": piece, "finish_reason": None}
            )
            events.append({**head, "choices": [choice]})
        last: dict[str, Any] = (
            {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
            if chat
            else {"index": 0, "text": "", "finish_reason": reply.finish_reason}
        )
        events.append({**head, "choices": [last]})
        if (request.body.get("stream_options") or {}).get("include_usage"):
            events.append({**head, "choices": [], "usage": whole["usage"]})
        return events

    @staticmethod
    def _shape(request: Request, reply: Reply) -> dict[str, Any]:
        prompt_tokens = (
            reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_words(request.body)
        )
        completion_tokens = (
            reply.completion_tokens if reply.completion_tokens is not None else _words(reply.text)
        )
        if request.path.endswith("/chat/completions"):
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": reply.text, "finish_reason": reply.finish_reason}
            kind = "text_completion"
        return {
            "id": f"test-{request.seq}",
            "object": kind,
            "created": int(time.time()),
            "model": request.body.get("model"),
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class OpenAIServer:
    """The server; use as a context manager (``with OpenAIServer(r) as s: s.base_url``).

    Args:
        responder: decides each reply (called from the server's handler threads).
        model_ids: models it serves (others get 404); empty: any model.
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get 401.
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        model_ids: tuple[str, ...] = ("test-model",),
        api_key: str | None = None,
    ) -> None:
        self.responder = responder
        self.model_ids = model_ids
        self.api_key = api_key
        self.requests: list[Request] = []
        self.serve_models = True
        self.models_asked = 0  # GET /models requests (not in ``requests``, which are calls)
        self.reported_ids: tuple[str, ...] | None = None
        self.model_info: dict[str, Any] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            name="openai-server",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging handlers are released."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Request:
        with self._lock:
            request = Request(len(self.requests), path, body, headers)
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return request

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1


class LocalModelResponder:
    """Answers with a real model (e.g. ``LocalModel`` serving SmolLM2), like a tiny vLLM.

    The model's async ``generate`` runs on an event loop in a thread of its own; handler threads
    submit to it and wait. A context-window overflow becomes vLLM's 400 reply.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="model-loop", daemon=True
        )
        self._thread.start()

    def __call__(self, request: Request) -> Response:
        body = request.body
        if "messages" in body:
            messages = [Message(role=m["role"], content=m["content"]) for m in body["messages"]]
        else:
            messages = [Message(role="user", content=str(body.get("prompt", "")))]
        stop = body.get("stop") or ()
        params = GenerateParams(
            temperature=float(body.get("temperature", 0.0)),
            top_p=float(body.get("top_p", 1.0)),
            max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 64),
            seed=int(body.get("seed", 0)),
            stop=(stop,) if isinstance(stop, str) else tuple(stop),
        )
        future = asyncio.run_coroutine_threadsafe(self.model.generate(messages, params), self._loop)
        try:
            completion = future.result(timeout=120)
        except ContextWindowExceeded as e:
            return Status(400, f"This model's maximum context length is exceeded: {e}")
        return Reply(
            completion.text,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.model.aclose(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
