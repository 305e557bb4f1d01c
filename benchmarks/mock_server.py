"""A fast mock OpenAI-compatible server for the benchmarks: one asyncio process (uvloop where
installed) parsing HTTP/1.1 with httptools, keep-alive, every call answered after a fixed latency
with the same reply.

The test suite's server (``tests/openai_server.py``) is a thread per connection with Python's
``http.server``: right for scripting faults, but at 256 connections and 200 ms it serves about
650 calls per second on one core, so a harness measured against it looks half as efficient as it
is (a bare asyncio + aiohttp loop measured 50% of ideal). This one sleeps on the event loop, not
in a thread, and serves thousands of calls per second, so efficiency measures the client.

    python benchmarks/mock_server.py --latency-ms 200 --reply TEXT

prints its base URL, serves until stdin closes, then prints how many calls it answered
(``harness_overhead.MockServer`` drives it). Routes: ``GET /v1/models`` (the one model,
``test-model``) and ``POST .../chat/completions``; anything else is a 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httptools

MODEL_ID = "test-model"


class _Server:
    """What every connection shares: the reply, the latency and the count of calls served."""

    def __init__(self, reply: str, latency_s: float) -> None:
        self.latency_s = latency_s
        self.calls = 0
        self.models = _response(
            200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0}]}
        )
        self.reply = reply

    def completion(self, body: bytes) -> bytes:
        self.calls += 1
        prompt_tokens = max(1, len(body) // 4)  # a stand-in count: nothing reads it as exact
        return _response(
            200,
            {
                "id": f"mock-{self.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": 8,
                    "total_tokens": prompt_tokens + 8,
                },
            },
        )


def _response(status: int, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 404: "Not Found"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; requests on it are answered in order."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.pending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's too)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method, url, body = self.parser.get_method(), self.url, b"".join(self.body)
        keep_alive = self.parser.should_keep_alive()
        self.url, self.body = b"", []
        previous = self.pending
        self.pending = asyncio.ensure_future(self._answer(previous, method, url, body, keep_alive))

    async def _answer(
        self, previous: asyncio.Task[None] | None, method: bytes, url: bytes, body: bytes,
        keep_alive: bool,
    ) -> None:  # fmt: skip
        if method == b"POST" and url.rstrip(b"/").endswith(b"/chat/completions"):
            await asyncio.sleep(self.server.latency_s)
            response = self.server.completion(body)
        elif method == b"GET" and url.rstrip(b"/") == b"/v1/models":
            response = self.server.models
        else:
            response = _response(404, {"error": {"message": f"no route {url.decode()}"}})
        if previous is not None:  # pipelined requests are answered in order
            await previous
        if self.transport is not None:
            self.transport.write(response)
            if not keep_alive:
                self.transport.close()


async def serve(latency_ms: float, reply: str) -> None:
    """Serve on 127.0.0.1 until stdin closes; print the base URL first, the calls served last."""
    loop = asyncio.get_running_loop()
    state = _Server(reply, latency_ms / 1000.0)
    server = await loop.create_server(lambda: _Connection(state), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    print(state.calls, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--reply", required=True, help="the assistant's reply to every call")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.latency_ms, args.reply))
    else:
        uvloop.run(serve(args.latency_ms, args.reply))


if __name__ == "__main__":
    main()
