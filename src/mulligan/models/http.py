"""The HTTP transport of the OpenAI-compatible backend: one keep-alive connection pool per server.

:class:`Endpoint` is one server (a replica) at a base URL: ``request`` sends one request and
returns the whole reply, ``stream`` hands over a reply to read line by line (server-sent events).
Whole replies, the hot path, go over a lean HTTP/1.1 client on the event loop's own transports
(:mod:`mulligan.models.http_conn`: httptools' C parser, requests built as bytes once per call),
which costs a fraction of aiohttp's request and response objects (benchmarks/README.md, "Lean
HTTP client"); streams, and every request when the environment names a proxy, go over aiohttp,
whose client costs about 0.4 ms of CPU per request at 256 requests in flight, where httpx's
costs 2-7 ms (its connection pool scans every connection for every request) and the official
``openai`` SDK's about 6 ms more. What a reply *means* (statuses, bodies, retries) is decided by
the backend (:mod:`mulligan.models.openai_compat`); this module only moves bytes and says what
went wrong in transport: :data:`TRANSPORT_ERRORS` are the exceptions a failed request raises
(``TimeoutError`` among them for a server that does not answer in time).

A session (and a lean pool) belongs to an event loop, so each endpoint opens its own on first use
in the running loop (and a new one if it is later used from another loop, as tests do).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from aiohttp import helpers as aiohttp_helpers

from mulligan import __version__
from mulligan.models.http_conn import ConnectionPool, HTTPConnectionError

try:  # several times faster than json on the hot path (a request body and a reply per turn)
    import orjson
except ImportError:  # a dependency, but nothing needs it: json does the same, slower
    orjson = None  # type: ignore[assignment]

# What a request that failed in transport raises: refused or dropped connections, a body cut
# short, a malformed reply, and timeouts (aiohttp's are ``TimeoutError`` subclasses); the lean
# client's own failures are :class:`~mulligan.models.http_conn.HTTPConnectionError`.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    HTTPConnectionError,
    TimeoutError,
)


NO_API_KEY = "EMPTY"
"""The key sent when none was given (servers without auth accept any value)."""


@dataclass(frozen=True)
class Reply:
    """A whole reply: status, body and headers (header names case-insensitive)."""

    status: int
    body: bytes
    headers: Mapping[str, str]


class HTTPStatusFault(Exception):
    """A reply with an error status (>= 400): its status, body and headers."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """A request body: compact JSON, UTF-8 (what the model reads is not escaped to ASCII).

    orjson's bytes equal json's here except for float spelling (``1e-5`` for ``1e-05``), the
    same numbers; neither is stored or hashed (the response cache keys on its own canonical
    JSON). What orjson refuses (an integer beyond 64 bits, a non-string key) json encodes."""
    if orjson is not None:
        try:
            return orjson.dumps(payload)
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_json(body: bytes | str) -> Any:
    """A reply body or a server-sent event's data, parsed; ``ValueError`` when it is not JSON.

    What orjson refuses and json accepts (``NaN``, ``Infinity``) json decides, and json words
    the error, so a reply is accepted or refused, and described, the same with or without
    orjson."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except ValueError:  # orjson.JSONDecodeError
            pass
    return json.loads(body)


class Endpoint:
    """One server at ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Args:
        base_url: requests go to ``base_url + "/" + path``; a query string in it
            (``?api-version=...``) is sent with every request, as the official SDK does, and
            ``user:password@`` in it is sent as basic auth instead of the API key.
        api_key: sent as ``Authorization: Bearer``; :data:`NO_API_KEY` when none was given,
            the only case in which a ``~/.netrc`` entry for the host is sent instead.
        timeout_s: to connect, and between bytes of the reply.
        connections: keep-alive connections at most (the replica's concurrency limit).
        shown: the URL as messages show it (without credentials or query).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout_s: float,
        connections: int,
        shown: str,
    ) -> None:
        self.base_url = base_url
        self.shown = shown
        parts = urllib.parse.urlsplit(base_url)
        netloc = parts.netloc.rpartition("@")[2]
        self._root = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        self._parts = parts
        self._query = f"?{parts.query}" if parts.query else ""
        authorization = f"Bearer {api_key}"
        # A key or URL credentials the user gave win over the environment's netrc entry.
        self._netrc_allowed = api_key == NO_API_KEY and parts.username is None
        if parts.username is not None:
            # ``user:password@`` in the URL (a proxy with basic auth) wins, as in httpx.
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {token}"
        self._headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"mulligan/{__version__}",
        }
        self.timeout_s = timeout_s
        self.connections = connections
        self._default_timeout = _client_timeout(timeout_s)  # one object, not one per request
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy: yarl.URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        self._pool: ConnectionPool | None = None  # the lean client, when no proxy applies
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    def url(self, path: str) -> str:
        return f"{self._root}/{path}{self._query}"

    def _timeout(self, timeout_s: float | None) -> aiohttp.ClientTimeout:
        return self._default_timeout if timeout_s is None else _client_timeout(timeout_s)

    def session(self) -> aiohttp.ClientSession:
        """The keep-alive session of the running event loop."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._proxy, self._proxy_auth, netrc_auth = _from_environment(self._root)
            headers = self._headers
            if netrc_auth is not None and self._netrc_allowed:
                headers = {**headers, "Authorization": netrc_auth.encode()}
            connector = aiohttp.TCPConnector(
                limit=self.connections, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=headers,
                timeout=self._default_timeout,
                # The environment's proxy and netrc settings are read here, once per session
                # (``_from_environment``), not by aiohttp for every request: with
                # ``trust_env=True`` it reads both in a worker thread per request, two thread
                # hops that cost more CPU than the rest of the request.
                trust_env=False,
            )
            self._loop = loop
        return self._session

    def lean_pool(self) -> ConnectionPool | None:
        """The lean client's pool of the running event loop; None when requests go through
        aiohttp (a proxy from the environment applies, or the scheme is not http(s)). Decided
        once per event loop, when the environment is read."""
        loop = asyncio.get_running_loop()
        if self._pool_loop is not loop:
            if self._pool is not None:
                self._pool.close()
            self._pool, self._pool_loop = self._open_pool(), loop
        return self._pool

    def _open_pool(self) -> ConnectionPool | None:
        parts = self._parts
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        proxy, _, netrc_auth = _from_environment(self._root)
        if proxy is not None:
            return None
        headers = self._headers
        if netrc_auth is not None and self._netrc_allowed:
            headers = {**headers, "Authorization": netrc_auth.encode()}
        https = parts.scheme == "https"
        return ConnectionPool(
            parts.hostname,
            parts.port or (443 if https else 80),
            tls=ssl.create_default_context() if https else None,
            headers=headers,
            limit=self.connections,
            timeout_s=self.timeout_s,
        )

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, timeout_s: float | None = None
    ) -> Reply:
        """One request; the whole reply, whatever its status. Raises :data:`TRANSPORT_ERRORS`."""
        pool = self._pool if self._pool_loop is asyncio.get_running_loop() else self.lean_pool()
        if pool is not None and method != "HEAD":  # (a reply to HEAD has no body to read)
            target = f"{self._parts.path}/{path}{self._query}"
            status, content, headers = await pool.request(method, target, body, timeout_s)
            return Reply(status, content, headers)
        async with self.session().request(
            method,
            self.url(path),
            data=body,
            timeout=self._timeout(timeout_s),
            allow_redirects=False,
            proxy=self._proxy,
            proxy_auth=self._proxy_auth,
        ) as response:
            content = await response.read()
            return Reply(response.status, content, response.headers)

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: bytes) -> AsyncIterator[AsyncIterator[str]]:
        """POST ``body``; yields the reply's lines as they arrive (without line ends).

        Raises :class:`HTTPStatusFault` for an error status (with the whole error body) and
        :data:`TRANSPORT_ERRORS` for a failed request, also while the lines are read."""
        session = self.session()
        async with session.post(
            self.url(path),
            data=body,
            allow_redirects=False,
            proxy=self._proxy,
            proxy_auth=self._proxy_auth,
        ) as response:
            if response.status >= 400:
                raise HTTPStatusFault(response.status, await response.read(), response.headers)
            yield _lines(response)

    async def aclose(self) -> None:
        """Close the connections (the session and the pool of the loop they were opened in)."""
        pool, self._pool, self._pool_loop = self._pool, None, None
        if pool is not None:
            pool.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone: nothing left to close
                await session.close()


def _client_timeout(t: float) -> aiohttp.ClientTimeout:
    """To connect, and between bytes of the reply: ``t`` seconds; no limit on the whole."""
    return aiohttp.ClientTimeout(total=None, connect=t, sock_connect=t, sock_read=t)


def _from_environment(
    root: str,
) -> tuple[yarl.URL | None, aiohttp.BasicAuth | None, aiohttp.BasicAuth | None]:
    """``(proxy, proxy_auth, netrc_auth)`` for requests to ``root``, as aiohttp's
    ``trust_env=True`` would find them for each request: the proxy of ``$HTTP(S)_PROXY``
    unless ``$NO_PROXY`` exempts the host, and the host's ``~/.netrc`` (``$NETRC``) entry."""
    url = yarl.URL(root)
    proxy: yarl.URL | None = None
    proxy_auth: aiohttp.BasicAuth | None = None
    with contextlib.suppress(LookupError):
        proxy, proxy_auth = aiohttp_helpers.get_env_proxy_for_url(url)
    netrc_auth: aiohttp.BasicAuth | None = None
    if url.host is not None:
        with contextlib.suppress(LookupError):
            netrc_auth = aiohttp_helpers.basicauth_from_netrc(
                aiohttp_helpers.netrc_from_env(), url.host
            )
    return proxy, proxy_auth, netrc_auth


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    async for raw in response.content:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")
