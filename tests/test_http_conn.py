"""The lean HTTP/1.1 client (models/http_conn.py) against small asyncio servers on 127.0.0.1.

Each test's server is written here, byte by byte, to produce what a real server sometimes does:
chunked and compressed replies, keep-alive, idle connections closed under the client, bodies cut
short, replies slower than the timeout, ``Connection: close`` and HTTP/1.0. No wall-clock
duration is asserted (speed is measured in benchmarks/).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mulligan.models import http_conn
from mulligan.models.http import TRANSPORT_ERRORS, Endpoint
from mulligan.models.http_conn import ConnectionPool, HTTPConnectionError

Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Server:
    """A server on 127.0.0.1 whose connections ``handler(server, reader, writer, n)`` serves (``n``
    counts connections from 0); it records the requests and how many connections it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self.connections
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(self, reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request on a connection (head and body), None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def pool_for(server: Server, *, limit: int = 4, timeout_s: float = 5.0) -> ConnectionPool:
    return ConnectionPool(
        "127.0.0.1",
        server.port,
        tls=None,
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        limit=limit,
        timeout_s=timeout_s,
    )


def keep_alive(reply: Callable[[bytes], bytes]) -> Handler:
    """A handler answering every request on a connection with ``reply(request)``."""

    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        while (request := await srv.read_request(reader)) is not None:
            writer.write(reply(request))
            await writer.drain()

    return handler


async def test_request_bytes_and_keep_alive_reuse() -> None:
    async with serving(keep_alive(lambda r: ok(b'{"n": %d}' % len(r)))) as server:
        pool = pool_for(server)
        try:
            for _ in range(20):
                status, body, headers = await pool.request("POST", "/v1/x?a=1", b'{"q": 1}')
                assert status == 200 and body.startswith(b'{"n": ')
                assert headers["content-length"] == str(len(body))  # case-insensitive
            assert server.connections == 1 and pool.connects == 1
        finally:
            pool.close()
    assert len(server.requests) == 20
    request = server.requests[-1]
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/x?a=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Authorization: Bearer k" in lines and b"Content-Length: 8" in lines
    assert not any(line.lower().startswith(b"accept-encoding") for line in lines)
    assert body == b'{"q": 1}'


async def test_chunked_and_compressed_replies() -> None:
    payload = b'{"choices": [{"text": "' + b"x" * 5000 + b'"}]}'

    def chunked(request: bytes) -> bytes:
        parts = [payload[i : i + 777] for i in range(0, len(payload), 777)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Thing: 1\r\n\r\n" + body

    def compressed(request: bytes) -> bytes:
        if b"/gzip" in request:
            return ok(gzip.compress(payload), b"Content-Encoding: gzip")
        return ok(zlib.compress(payload), b"Content-Encoding: deflate")

    async with serving(keep_alive(chunked)) as server:
        pool = pool_for(server)
        status, body, headers = await pool.request("GET", "/", None)
        assert (status, body, headers["x-thing"]) == (200, payload, "1")
        assert b"content-length" not in server.requests[-1].lower()  # a GET without a body
        pool.close()
    async with serving(keep_alive(compressed)) as server:
        pool = pool_for(server)
        assert (await pool.request("GET", "/gzip", None))[1] == payload
        assert (await pool.request("GET", "/deflate", None))[1] == payload
        assert server.connections == 1
        pool.close()


async def test_replies_past_the_size_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_conn, "MAX_REPLY_BYTES", 4096)
    bomb = gzip.compress(b"0" * 1_000_000)  # about 1 kB that inflates to 1 MB

    def reply(request: bytes) -> bytes:
        if b"/bomb" in request:
            return ok(bomb, b"Content-Encoding: gzip")
        return ok(b"x" * 10_000)

    async with serving(keep_alive(reply)) as server:
        pool = pool_for(server)
        try:
            with pytest.raises(HTTPConnectionError, match="exceeds 4096 bytes once decompressed"):
                await pool.request("GET", "/bomb", None)
            with pytest.raises(HTTPConnectionError, match="exceeds 4096 bytes"):
                await pool.request("GET", "/big", None)
        finally:
            pool.close()


async def test_idle_connection_closed_by_the_server_is_retried_once_anew() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        await srv.read_request(reader)
        writer.write(ok(b"first"))  # says keep-alive ...
        await writer.drain()
        # ... but drops the next request on this connection unanswered (closing it)
        await srv.read_request(reader)

    async with serving(handler) as server:
        pool = pool_for(server)
        assert (await pool.request("GET", "/", None))[1] == b"first"
        assert (await pool.request("GET", "/", None))[1] == b"first"  # on a fresh connection
        assert server.connections == 2 and pool.connects == 2
        pool.close()


async def test_idle_connections_the_server_timed_out_are_not_used() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        await srv.read_request(reader)
        writer.write(ok(b"reply %d" % n))
        await writer.drain()
        await asyncio.sleep(0.02)  # a keep-alive timeout much shorter than uvicorn's 5 s

    async with serving(handler) as server:
        pool = pool_for(server)
        for n in range(3):
            assert (await pool.request("GET", "/", None))[1] == b"reply %d" % n
            await asyncio.sleep(0.2)  # idle: the server closes it meanwhile (or, if the close
            # is not seen yet, the request finds it closed and is retried on a fresh one)
        assert server.connections == 3 and pool.connects == 3
        pool.close()


async def test_a_fresh_connection_closed_at_once_is_an_error_not_a_loop() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        await srv.read_request(reader)  # and close without a word

    async with serving(handler) as server:
        pool = pool_for(server)
        with pytest.raises(HTTPConnectionError, match="closed the connection"):
            await pool.request("GET", "/", None)
        assert server.connections == 1
        pool.close()


async def test_body_cut_short_is_a_transport_error_and_the_connection_is_not_reused() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        await srv.read_request(reader)
        if n == 0:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            await writer.drain()
            await asyncio.sleep(30)  # the rest never comes: the client's timeout ends it
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"y" * 10)

    async with serving(handler) as server:
        pool = pool_for(server, timeout_s=0.3)
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/", None)
        with pytest.raises(HTTPConnectionError, match="broke off after") as info:
            await pool.request("GET", "/", None)  # a new connection; this one closes early
        assert isinstance(info.value, TRANSPORT_ERRORS)
        assert server.connections == 2 and pool.open_connections == 0
        pool.close()


async def test_slow_replies_time_out_but_bytes_that_keep_coming_do_not() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        while (request := await srv.read_request(reader)) is not None:
            if b"/silent" in request:
                await asyncio.sleep(30)
            body = b"abcdef"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
            for i in range(len(body)):  # 1.5 s in all, never 1 s without a byte
                await asyncio.sleep(0.25)
                writer.write(body[i : i + 1])
                await writer.drain()

    async with serving(handler) as server:
        pool = pool_for(server, timeout_s=1.0)
        assert (await pool.request("GET", "/dribble", None))[1] == b"abcdef"
        with pytest.raises(TimeoutError):  # a shorter timeout on the same connection
            await pool.request("GET", "/silent", None, timeout_s=0.2)
        assert pool.connects == 1 and pool.open_connections == 0
        pool.close()


async def test_the_connection_limit_holds_under_concurrency() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        while (await srv.read_request(reader)) is not None:
            await asyncio.sleep(0.02)
            writer.write(ok(b"done"))

    async with serving(handler) as server:
        pool = pool_for(server, limit=3)
        replies = await asyncio.gather(*(pool.request("GET", "/", None) for _ in range(30)))
        assert all(r[1] == b"done" for r in replies)
        assert server.most_open <= 3 and pool.connects <= 3
        assert pool.open_connections <= 3
        # Requests cancelled while they wait for a connection, or while they use one, give
        # their slots back: the pool serves on at full width.
        tasks = [asyncio.ensure_future(pool.request("GET", "/", None)) for _ in range(12)]
        await asyncio.sleep(0.01)
        for task in tasks[::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(r[1] == b"done" for r in results[1::2])  # type: ignore[index]
        assert pool._in_use == 0 and not pool._waiting
        replies = await asyncio.gather(*(pool.request("GET", "/", None) for _ in range(6)))
        assert all(r[1] == b"done" for r in replies) and pool.open_connections <= 3
        pool.close()


async def test_connection_close_and_http_1_0_replies() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        request = await srv.read_request(reader)
        assert request is not None
        if b"/old" in request:  # HTTP/1.0 without a length: the body ends with the connection
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold body")
        else:
            writer.write(ok(b"bye", b"Connection: close"))
        await writer.drain()

    async with serving(handler) as server:
        pool = pool_for(server)
        assert (await pool.request("GET", "/", None))[1] == b"bye"
        assert (await pool.request("GET", "/old", None))[1] == b"old body"
        assert (await pool.request("GET", "/", None))[1] == b"bye"
        assert server.connections == 3 and pool.connects == 3
        pool.close()


async def test_malformed_and_refused() -> None:
    async def handler(
        srv: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/9 teapot\r\nno colon here\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with serving(handler) as server:
        pool = pool_for(server)
        with pytest.raises(HTTPConnectionError, match="malformed reply"):
            await pool.request("GET", "/", None)
        pool.close()
    with pytest.raises(HTTPConnectionError, match="cannot connect") as info:
        await pool_for(server).request("GET", "/", None)  # the server is gone
    assert "Bearer" not in str(info.value)


async def test_endpoint_uses_the_lean_pool_unless_a_proxy_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with serving(keep_alive(lambda r: ok(b"{}", b"Retry-After: 3"))) as server:
        base = f"http://127.0.0.1:{server.port}/v1?api-version=2"
        endpoint = Endpoint(base, api_key="sk-x", timeout_s=5, connections=2, shown="s")
        reply = await endpoint.request("POST", "chat/completions", b"{}")
        assert (reply.status, reply.body, reply.headers["retry-after"]) == (200, b"{}", "3")
        assert endpoint.lean_pool() is not None
        assert server.requests[-1].startswith(b"POST /v1/chat/completions?api-version=2 ")
        await endpoint.aclose()
        await asyncio.sleep(0.05)
        assert server.open_now == 0  # aclose closed the connection
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    proxied = Endpoint("http://api.example/v1", api_key="k", timeout_s=5, connections=2, shown="")
    assert proxied.lean_pool() is None  # aiohttp, which speaks to proxies


async def test_https_with_the_server_name_checked(tmp_path: Path) -> None:
    """TLS on the loop's transport: the certificate is verified against the host's name."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = Server(keep_alive(lambda r: ok(b"secret reply")))
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=server_tls)
    port = listener.sockets[0].getsockname()[1]
    client_tls = ssl.create_default_context(cafile=str(cert))
    try:
        # "localhost" resolves to 127.0.0.1 (or ::1, where nothing listens: then 127.0.0.1)
        pool = ConnectionPool("localhost", port, tls=client_tls, headers={}, limit=2, timeout_s=5)
        for _ in range(3):
            assert (await pool.request("GET", "/", None))[1] == b"secret reply"
        assert pool.connects == 1
        pool.close()
        # The same certificate presented for another name is refused, as a transport error.
        wrong = ConnectionPool("127.0.0.1", port, tls=client_tls, headers={}, limit=2, timeout_s=5)
        with pytest.raises(HTTPConnectionError, match="cannot connect"):
            await wrong.request("GET", "/", None)
    finally:
        listener.close()
