"""A lean keep-alive HTTP/1.1 client for whole replies: one connection pool per server.

:class:`ConnectionPool` speaks HTTP/1.1 on the running event loop's own transports
(``loop.create_connection`` and an :class:`asyncio.Protocol`), with httptools (llhttp, the C
parser uvicorn uses) reading the replies: status, headers, ``Content-Length``, chunked and
read-until-close bodies, keep-alive, ``Connection: close`` and HTTP/1.0. It exists because
aiohttp's request and response objects were the largest single cost of a turn
(benchmarks/README.md, "Lean HTTP client"); it does only what the OpenAI-compatible backend needs
of a request whose reply is read whole: no redirects, proxies, cookies or streaming (those stay
with aiohttp in :mod:`mulligan.models.http`, the transport's home, which uses this pool).

What goes wrong in transport raises :class:`HTTPConnectionError` (a refused, dropped or reset
connection, a body cut short, a malformed reply) or :class:`TimeoutError` (no connection within
the timeout, or the timeout between bytes of the reply). Messages name the server as
``host:port`` and never carry a request's headers (the API key is one of them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import zlib
from collections.abc import Mapping

import httptools
from multidict import CIMultiDict

MAX_REPLY_BYTES = 256 * 1024 * 1024
"""A reply body larger than this, as received or once decompressed, is refused (a chat reply is
kilobytes; a runaway or hostile server must not fill the client's memory)."""


class HTTPConnectionError(Exception):
    """A request that failed in transport: no connection, a dropped one, a malformed reply."""


class _Stale(Exception):
    """A reused connection that the server had closed before any byte of the reply."""


_ENCODED = {b"gzip", b"x-gzip", b"deflate"}


class _Connection(asyncio.Protocol):
    """One connection: at most one request in flight, the reply parsed as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str) -> None:
        self._loop = loop
        self._where = where
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timeout_s = 0.0
        self._last = 0.0  # the loop time of the last byte (or of the request)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] = []
        self._received = 0  # bytes of this reply so far
        self._sized = False  # Content-Length or chunked: the body ends by itself, not at EOF
        self._encoding = b""
        self._headers_done = False
        self.keep_alive = False

    # ---------------------------------------------------------------- the request
    async def exchange(self, data: bytes, timeout_s: float) -> None:
        """Send ``data`` (a whole request) and wait for the whole reply (``status``,
        ``headers``, :meth:`body`). Raises :class:`_Stale` when the connection was found
        closed before any byte of the reply, :class:`HTTPConnectionError` or ``TimeoutError``
        for other failures; the connection is then closed."""
        assert self.transport is not None
        self._reset()
        self._waiter = waiter = self._loop.create_future()
        self._timeout_s = timeout_s
        self._last = now = self._loop.time()
        # One timer per connection, not one per request: it stays armed across requests and,
        # when it fires, moves itself to the deadline that ``_last`` sets by then
        # (:meth:`_check_timeout`), so a request and each chunk received only note the time.
        timer = self._timer
        if timer is None or timer.when() > now + timeout_s:  # none, or too late for this one
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(now + timeout_s, self._check_timeout)
        self.transport.write(data)
        try:
            await waiter
        finally:
            self._waiter = None

    def body(self) -> bytes:
        """The reply's body, decoded if the server compressed it all the same."""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        if self._encoding in _ENCODED:
            data = _decompress(data, self._encoding, self._where)
        return data

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    def _check_timeout(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():  # idle: disarmed until the next request
            return
        due = self._last + self._timeout_s
        if self._loop.time() < due:  # bytes (or a new request) came meanwhile: wait on
            self._timer = self._loop.call_at(due, self._check_timeout)
            return
        self._fail(TimeoutError(f"no reply from {self._where} within {self._timeout_s:g} s"))

    def _fail(self, error: BaseException) -> None:
        self.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: out of step, never reused
            self.close()
            return
        self._received += len(data)
        if self._received > MAX_REPLY_BYTES:
            self._fail(
                HTTPConnectionError(f"the reply from {self._where} exceeds {MAX_REPLY_BYTES} bytes")
            )
            return
        self._last = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(HTTPConnectionError(f"malformed reply from {self._where} ({e})"))

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)

    def _ended(self, exc: Exception | None) -> None:
        """The server closed the connection (``exc`` if it was reset)."""
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._sized:  # a body read until the connection closes
            self.keep_alive = False
            waiter.set_result(None)
        elif self._received == 0:
            self._fail(_Stale(f"{self._where} closed the connection ({exc or 'EOF'})"))
        else:
            reason = f"{type(exc).__name__}: {exc}" if exc else "closed"
            self._fail(
                HTTPConnectionError(
                    f"the reply from {self._where} broke off after {self._received} bytes "
                    f"({reason})"
                )
            )

    # ---------------------------------------------------------------- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._headers_done = True
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "content-length":
                self._sized = True
            elif lowered == "transfer-encoding":
                self._sized = self._sized or "chunked" in value.lower()
            elif lowered == "content-encoding":
                self._encoding = value.strip().lower().encode("latin-1")
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._sized = True  # no body, by definition

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if (
            100 <= self.status < 200 and self.status != 101
        ):  # an interim reply: the real one follows
            self._reset()
            self._received = 1  # bytes did arrive: a drop from here on is not a stale connection
            return
        self.keep_alive = self._parser.should_keep_alive()
        self._finish()


def _decompress(data: bytes, encoding: bytes, where: str) -> bytes:
    """A gzip or deflate body (zlib-wrapped or raw, as servers differ), decoded, at most
    :data:`MAX_REPLY_BYTES` of it."""
    try:
        if encoding == b"deflate":
            try:
                return _inflate(data, zlib.MAX_WBITS, where)
            except zlib.error:
                return _inflate(data, -zlib.MAX_WBITS, where)
        return _inflate(data, 16 + zlib.MAX_WBITS, where)
    except zlib.error as e:
        raise HTTPConnectionError(f"the reply from {where} is not valid {encoding!r} ({e})") from e


def _inflate(data: bytes, wbits: int, where: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, MAX_REPLY_BYTES)
    if inflater.unconsumed_tail:  # a decompression bomb, or just too big
        raise HTTPConnectionError(
            f"the reply from {where} exceeds {MAX_REPLY_BYTES} bytes once decompressed"
        )
    return out + inflater.flush()


class ConnectionPool:
    """Keep-alive connections to one server, ``limit`` at most, idle ones reused
    most-recent-first (the warmest, and the least likely to have been closed by the server).

    Args:
        host, port: the server.
        tls: an SSL context for https, None for plain http.
        headers: sent with every request (``Host`` and ``Content-Length`` are added).
        limit: connections at most, in use or idle.
        timeout_s: to connect, and between bytes of the reply.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        headers: Mapping[str, str],
        limit: int,
        timeout_s: float,
    ) -> None:
        self.host = host
        self.port = port
        self.where = f"{host}:{port}"
        self._tls = tls
        self.timeout_s = timeout_s
        default_port = 443 if tls is not None else 80
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header = f"{host_header}:{port}"
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # The part of every request after its request line, but for the body's length.
        self._fixed = f"Host: {host_header}\r\n{fixed}".encode("latin-1")
        self._idle: list[_Connection] = []
        # A counted limit instead of an asyncio.Semaphore: the common case (a slot free) costs
        # one comparison, not a lock's coroutine; waiters are woken first come, first served.
        self._limit = limit
        self._in_use = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._open: set[_Connection] = set()
        self.connects = 0  # connections opened so far (tests and benchmarks read it)

    async def request(
        self, method: str, target: str, body: bytes | None, timeout_s: float | None = None
    ) -> tuple[int, bytes, CIMultiDict[str]]:
        """``(status, body, headers)`` of one request to ``target`` (path and query)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        # The request as bytes, once: request line, Host, the session's headers, the length
        # (none for a request without a body, as clients send a GET), the body.
        length = b"\r\n" if body is None else b"Content-Length: %d\r\n\r\n" % len(body)
        data = b"".join(
            (
                f"{method} {target} HTTP/1.1\r\n".encode("latin-1"),
                self._fixed,
                length,
                body or b"",
            )
        )
        if self._in_use < self._limit and not self._waiting:
            self._in_use += 1
        else:
            await self._wait_for_slot()  # the slot is handed over by the one who frees it
        try:
            conn = self._take_idle()
            if conn is None:
                conn = await self._connect(timeout)
                await self._exchange(conn, data, timeout, stale_is_error=True)
            else:
                try:
                    await self._exchange(conn, data, timeout, stale_is_error=False)
                except _Stale:  # the server had closed it while idle: once more, anew
                    conn = await self._connect(timeout)
                    await self._exchange(conn, data, timeout, stale_is_error=True)
            try:
                content = conn.body()
            except HTTPConnectionError:
                self._discard(conn)
                raise
            status, headers = conn.status, CIMultiDict(conn.headers)
            if conn.keep_alive and not conn.closed:
                self._idle.append(conn)
            else:
                self._discard(conn)
            return status, content, headers
        finally:
            self._free_slot()

    async def _wait_for_slot(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self._free_slot()
            else:
                self._waiting.remove(waiter)
            raise

    def _free_slot(self) -> None:
        """Hand the slot to the first waiter still waiting, or give it back."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_use -= 1

    async def _exchange(
        self, conn: _Connection, data: bytes, timeout: float, *, stale_is_error: bool
    ) -> None:
        """One request on ``conn``; a failed connection is closed and forgotten."""
        try:
            await conn.exchange(data, timeout)
        except _Stale as e:
            self._discard(conn)
            if stale_is_error:  # a fresh connection closed at once: a real failure
                raise HTTPConnectionError(str(e)) from None
            raise
        except BaseException:  # an error, a timeout or a cancellation: never reuse it
            self._discard(conn)
            raise

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
            self._discard(conn)
        return None

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self.where),
                    self.host,
                    self.port,
                    ssl=self._tls,
                    server_hostname=self.host if self._tls is not None else None,
                )
        except TimeoutError:
            raise TimeoutError(f"no connection to {self.where} within {timeout:g} s") from None
        except OSError as e:  # refused, unreachable, unknown host, TLS failures
            raise HTTPConnectionError(
                f"cannot connect to {self.where} ({type(e).__name__}: {e})"
            ) from e
        self.connects += 1
        self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    @property
    def open_connections(self) -> int:
        """Connections open now, in use or idle."""
        self._open = {c for c in self._open if not c.closed}
        return len(self._open)

    def close(self) -> None:
        """Close every connection (in use ones too: their requests fail)."""
        self._idle.clear()
        for conn in list(self._open):
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing left to close
                conn.close()
        self._open.clear()
