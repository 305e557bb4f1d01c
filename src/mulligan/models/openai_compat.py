"""The OpenAI-compatible HTTP backend: OpenAI itself, vLLM, SGLang, llama.cpp server, Ollama, ...

``openai/gpt-4o-mini`` talks to https://api.openai.com/v1 (or ``$OPENAI_BASE_URL``, as OpenAI's
own SDK does: a proxy or gateway) with ``$OPENAI_API_KEY``; ``openai-compatible/<model>`` talks to
the server(s) at URLs given in the name, ``openai-compatible/<model>@http://h1:8000/v1,
http://h2:8000/v1``, at ``--base-url`` or at ``$MULLIGAN_BASE_URL`` (comma-separated for several
replicas), with ``$MULLIGAN_API_KEY`` (default ``EMPTY``; never the OpenAI key, which must not
leak to arbitrary servers, which is also why ``openai/`` ignores ``--base-url``).

The protocol is spoken over a lean HTTP transport (:mod:`mulligan.models.http`: a keep-alive
HTTP/1.1 client of its own for whole replies, aiohttp for streams and proxies; one connection
pool per replica, as large as the replica's concurrency limit) and fast JSON: the request is a dict serialised once, the reply is parsed once. The
official ``openai`` SDK is not used: its request transformation (type introspection over every
message of every call) and its httpx transport cost about 12 ms of CPU per call at concurrency
256, more than the rest of a turn. What we keep of what a client must do:

- retries are ours (:mod:`mulligan.models.retry`), so every retry is counted by cause and obeys
  one backoff and ``Retry-After`` rule;
- we parse the JSON body ourselves, so a malformed reply (not JSON, no ``choices``, no
  ``message``...) raises an error that says what was wrong, instead of surfacing later as
  ``None`` text or an ``AttributeError``;
- several base URLs serve one model as a fleet: each replica has its own AIMD concurrency limit
  (halved on HTTP 429, +1 per success, within ``[1, max_concurrency]``), and each request goes to
  the replica with the fewest requests in flight (or round-robin). A retry picks again, so a
  replica that fails is routed around.
- episodes stick to a replica (``sticky=True``, the default): a call that names its episode
  (its :class:`~mulligan.models.base.CallContext`) goes to the replica that served the
  episode's previous turn while that replica is up and has room, so a server's prefix cache
  (vLLM, SGLang) holds the episode's conversation; a dead replica's episodes move elsewhere.

Final (never retried) errors: 400 with a context-length message raises
:class:`ContextLengthError` (a :class:`~mulligan.models.base.ContextWindowExceeded`), 401/403
name the API-key variable, 404 says the model or the base URL is wrong, other 4xx carry the
server's message. Retried: 408, 409, 429, 5xx, timeouts, connection errors, malformed bodies.

Two API modes: ``chat`` (``/chat/completions``, the server applies the chat template) and
``completion`` (``/completions`` with a prompt rendered from the messages, by default in MINT's
``Human:``/``Assistant:`` format for base models). Either can stream (``stream=True``): the reply
arrives as server-sent events, which we parse as defensively as whole bodies and which measure
the time to first token.

Identity (what the response cache keys on and the manifest records): the server URLs, and for
each what ``GET /models`` reports (asked once per model instance: the entry of our model id, or
every entry when the server lists no such id, as llama.cpp's server does, which answers with
whatever file it loaded whatever id is sent), reduced to fields that name the weights (``id``,
vLLM's ``root`` and ``parent``, llama.cpp's ``meta``, ``owned_by``; never ``created``, which some
servers set to the time of the request). A server that does not answer ``/models`` is identified
by its URL alone. Also the API mode, the extra body and whether the seed is sent, which change
answers too; never the API key, nor credentials or a query string in a URL (:func:`public_url`).

Accounting: token counts from the reply's ``usage``, latency of the successful request, cost
from the price table (:mod:`mulligan.models.pricing`; a model without a price costs 0 and has
``price_known = False``), and per-cause retry counts in :attr:`OpenAICompatModel.stats`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, NoReturn

from mulligan.errors import MulliganError
from mulligan.events import Message
from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    ModelError,
)
from mulligan.models.http import (
    NO_API_KEY,
    TRANSPORT_ERRORS,
    Endpoint,
    HTTPStatusFault,
    decode_json,
    encode_json,
)
from mulligan.models.pricing import PriceTable, default_price_table
from mulligan.models.retry import (
    AdaptiveLimit,
    BackendError,
    BalanceStrategy,
    EndpointPool,
    RetryPolicy,
    RetryStats,
    TransientFault,
    call_with_retries,
    parse_retry_after,
)

log = logging.getLogger(__name__)

ApiMode = Literal["chat", "completion"]
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
BASE_URL_ENV = "MULLIGAN_BASE_URL"
API_KEY_ENV = "MULLIGAN_API_KEY"

# Statuses that may heal: request timeout, conflict (OpenAI's lock timeouts), rate limit, and
# every 5xx (overload, restarts, a replica being replaced).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# How servers say "prompt + max_tokens do not fit": OpenAI, vLLM, SGLang, llama.cpp, TGI.
_CONTEXT_LENGTH = re.compile(
    r"context[ _-]?length|context[ _-]?window|maximum context|exceeds? the available context"
    r"|exceed_context_size|too many tokens|prompt is too long|input (length|tokens?) .*exceed"
    r"|maximum (allowed )?(input )?length",
    re.IGNORECASE,
)
_BODY_SNIPPET = 300
IDENTITY_TIMEOUT_S = 10.0  # GET /models, once per model: a server that is slow to say is skipped
_IDENTITY_FIELDS = ("id", "root", "parent", "owned_by", "meta")
_IDENTITY_MAX_ENTRIES = 16
_IDENTITY_MAX_FIELD_CHARS = 2_000


class BackendConfigError(ModelError, MulliganError):
    """The backend cannot be built as named (no base URL, no API key...). Never transient."""


class ContextLengthError(BackendError, ContextWindowExceeded):
    """The server said the conversation does not fit the model's context window (HTTP 400)."""


_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s,'\"]+")


def redact_url_credentials(text: str) -> str:
    """``text`` with every URL in it as :func:`public_url` shows it (no ``user:key@``, a query
    string by its hash): base URLs may carry a proxy's password or a key (``?api-key=``), and
    URLs end up in error messages, logs, the store and the manifest."""
    return _URL.sub(lambda m: public_url(m.group(0)), text)


def transport_fault(e: BaseException, where: str) -> TransientFault:
    """The retryable fault for a request that failed in transport (one of
    :data:`~mulligan.models.http.TRANSPORT_ERRORS`): a timeout, or a connection that failed."""
    if isinstance(e, TimeoutError):
        return TransientFault("timeout", f"no reply from {where} in time ({type(e).__name__})")
    detail = redact_url_credentials(f"{type(e).__name__}: {e}")
    return TransientFault("connection", f"connection to {where} failed ({detail})")


def mint_completion_prompt(messages: Sequence[Message]) -> str:
    """Render a chat as MINT's completion-mode prompt (its ``VLLMAgent.format_prompt``).

    System messages come first, as they are; then ``\\n\\nHuman: <user>`` and
    ``\\n\\nAssistant: <assistant>`` turns, ending with ``\\n\\nAssistant:`` for the reply.
    """
    parts: list[str] = []
    for m in messages:
        if m.role == "system":
            parts.append(m.content)
        elif m.role == "user":
            parts.append(f"\n\nHuman: {m.content}")
        else:
            parts.append(f"\n\nAssistant: {m.content}")
    parts.append("\n\nAssistant:")
    return "".join(parts)


def _snippet(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "..."


def _error_message(body: bytes) -> tuple[str, str | None]:
    """``(message, code)`` from an error body in any of the common shapes, or a snippet."""
    try:
        data = json.loads(body)
    except ValueError:
        return _snippet(body) or "(empty body)", None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):  # Ollama: {"error": "..."}
            return err, None
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or data.get("detail")
            code = err.get("code") or err.get("type")
            if msg is not None:
                return str(msg), None if code is None else str(code)
    return _snippet(body), None


class OpenAICompatModel:
    """A model served over the OpenAI HTTP API, by one or several replicas.

    Args:
        model: the model id sent to the server (``gpt-4o-mini``, ``Qwen/Qwen2.5-7B-Instruct``).
        base_urls: one base URL or several (replicas of the same model), e.g.
            ``http://127.0.0.1:8000/v1``.
        api_key: sent as ``Authorization: Bearer``; servers without auth accept any value.
        name: the name reported in completions and used for pricing
            (default ``openai-compatible/<model>``).
        mode: ``chat`` or ``completion``.
        max_concurrency: the most requests in flight per replica (the AIMD limit's ceiling).
        initial_concurrency: the AIMD limit at start (default: ``max_concurrency``).
        balance: ``least-in-flight`` (default) or ``round-robin`` across replicas.
        timeout_s: per request (connect, each read, write).
        retry: attempts and backoff (default :class:`RetryPolicy`).
        prices: the price table (default: bundled or ``$MULLIGAN_PRICES``).
        max_tokens_field: ``max_tokens`` (most servers) or ``max_completion_tokens`` (OpenAI's
            current name, required by its reasoning models).
        completion_prompt: renders messages for ``completion`` mode.
        extra_body: extra JSON fields for every request (e.g. vLLM's ``top_k``).
        send_seed: send ``params.seed`` (some servers reject the field).
        stream: receive the reply as server-sent events, which measures time to first token
            (:attr:`mean_ttft_s`; ``ttft_ms.*`` in :attr:`stats`). Usage is requested with
            ``stream_options.include_usage``.

    A role's backend arguments (``-M key=value``) reach these options, all but ``api_key``,
    ``name``, ``prices`` and ``completion_prompt`` (:data:`~mulligan.models.args.OPENAI_ARGS`).
    """

    cacheable = True

    def __init__(
        self,
        model: str,
        *,
        base_urls: str | Sequence[str],
        api_key: str = NO_API_KEY,
        name: str | None = None,
        mode: ApiMode = "chat",
        max_concurrency: int = 64,
        initial_concurrency: int | None = None,
        balance: BalanceStrategy = "least-in-flight",
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        max_tokens_field: MaxTokensField = "max_tokens",
        completion_prompt: Callable[[Sequence[Message]], str] = mint_completion_prompt,
        extra_body: Mapping[str, Any] | None = None,
        send_seed: bool = True,
        stream: bool = False,
        sticky: bool = True,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        urls = [u.strip().rstrip("/") for u in urls if u.strip()]
        if not urls:
            raise BackendConfigError(f"{name or model}: no base URL given")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise BackendConfigError(
                    f"{name or model}: base URL {url!r} must start with http:// or https://"
                )
        if mode not in ("chat", "completion"):
            raise BackendConfigError(f"unknown API mode {mode!r}; use 'chat' or 'completion'")
        if timeout_s <= 0:
            raise BackendConfigError(f"timeout_s must be positive, got {timeout_s}")
        self.model = model
        self.name = name or f"openai-compatible/{model}"
        self.mode: ApiMode = mode
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.prices = prices or default_price_table()
        self.max_tokens_field: MaxTokensField = max_tokens_field
        self.completion_prompt = completion_prompt
        self.extra_body = dict(extra_body or {})
        self.send_seed = send_seed
        self.stream = stream
        self.retry_stats = RetryStats()
        self.ttft_count = 0
        self.ttft_total_s = 0.0
        self.ttft_max_s = 0.0
        self.price_known = self.prices.price(self.name).known
        if not self.price_known:
            log.info(
                "%s: no price in %s; its calls are costed at $0", self.name, self.prices.source
            )
        endpoints = [
            Endpoint(
                url,
                api_key=api_key,
                timeout_s=timeout_s,
                connections=max_concurrency,
                shown=public_url(url),
            )
            for url in urls
        ]
        self.pool: EndpointPool[Endpoint] = EndpointPool(
            endpoints,
            [AdaptiveLimit(max_concurrency, initial_concurrency) for _ in endpoints],
            balance,
            sticky=sticky,
        )
        self._path = "chat/completions" if mode == "chat" else "completions"
        # Requests answered (successfully) per replica, for load-balancing reports and tests.
        self.served: list[int] = [0 for _ in endpoints]
        self._identity: dict[str, Any] | None = None
        self._identity_lock = asyncio.Lock()

    # ------------------------------------------------------------------------------ reporting

    @property
    def stats(self) -> dict[str, int]:
        """Flat counters: ``calls``, ``requests``, ``succeeded``, ``failed``, ``retries``,
        ``retry.<cause>``, ``error.<cause>``; per replica *i* the concurrency limit now
        (``limit.i``) and at its lowest (``limit_lowest.i``) and the requests it answered
        (``served.i``); ``ejections`` of unreachable replicas; ``priced`` (0: cost unknown, counted
        as 0); and, when streaming, ``ttft_ms.mean`` / ``ttft_ms.max``."""
        out = self.retry_stats.as_dict()
        out["priced"] = int(self.price_known)
        for i, limit in enumerate(self.pool.limits):
            out[f"limit.{i}"] = limit.limit
            out[f"limit_lowest.{i}"] = limit.lowest
            out[f"served.{i}"] = self.served[i]
        out["ejections"] = self.pool.ejections
        if len(self.pool.endpoints) > 1 and self.pool.sticky:
            out["sticky_moves"] = self.pool.moves
        if self.ttft_count:
            out["ttft_ms.mean"] = round(1000 * self.ttft_total_s / self.ttft_count)
            out["ttft_ms.max"] = round(1000 * self.ttft_max_s)
        return out

    def counters(self) -> dict[str, int]:
        """:attr:`stats` (retries and final errors by cause, replica ejections, ...), as the run's
        manifest keeps them."""
        return self.stats

    @property
    def endpoints(self) -> list[Endpoint]:
        return self.pool.endpoints

    # ------------------------------------------------------------------------------ identity

    async def resolve_identity(self) -> dict[str, Any]:
        """What answers this model's calls (module docstring), asked of the servers once."""
        async with self._identity_lock:
            if self._identity is None:
                servers = await asyncio.gather(*(self._reported(e) for e in self.endpoints))
                identity: dict[str, Any] = {
                    "backend": "openai-compatible",
                    "model": self.model,
                    "mode": self.mode,
                    "servers": sorted(servers, key=lambda s: str(s["url"])),
                    "send_seed": self.send_seed,
                }
                if self.extra_body:
                    identity["extra_body"] = json.loads(json.dumps(self.extra_body, default=str))
                if self.mode == "completion":
                    prompt = self.completion_prompt
                    identity["completion_prompt"] = f"{prompt.__module__}.{prompt.__qualname__}"
                self._identity = identity
            return self._identity

    async def _reported(self, endpoint: Endpoint) -> dict[str, Any]:
        """``{"url", "reported"}``: the server's ``/models`` entries for our model (or all it
        lists, if none is ours), or None when it does not say."""
        timeout = min(self.timeout_s, IDENTITY_TIMEOUT_S)
        try:
            raw = await endpoint.request("GET", "models", timeout_s=timeout)
            data = json.loads(raw.body) if raw.status < 400 else None
        except TRANSPORT_ERRORS as e:
            data = None
            log.info("%s: %s/models did not answer (%s)", self.name, endpoint.shown, e)
        except ValueError:
            data = None
        listed = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listed, list):  # no /models: the URL alone identifies it
            log.info("%s: %s/models says nothing usable", self.name, endpoint.shown)
            return {"url": public_url(endpoint.base_url), "reported": None}
        entries = [_identity_fields(m) for m in listed if isinstance(m, dict)]
        ours = [m for m in entries if m.get("id") == self.model]
        chosen = ours or sorted(entries, key=lambda m: str(m.get("id")))[:_IDENTITY_MAX_ENTRIES]
        return {"url": public_url(endpoint.base_url), "reported": chosen}

    # ------------------------------------------------------------------------------ calling

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        """One completion; see :class:`~mulligan.models.base.Model`.

        ``latency_s`` is the duration of the request that succeeded (not the queueing for a
        concurrency slot nor the waits between retries).

        Raises:
            ContextLengthError: the server says the prompt does not fit (not retried).
            BackendError: a final HTTP error (``transient=False``, e.g. 401, 404), or transient
                faults until the attempts ran out (``transient=True``); ``.cause`` names it.
        """
        if not messages:
            raise ModelError(f"{self.name}: generate() needs at least one message")
        body = encode_json(self._payload(messages, params))
        # The episode a call belongs to, for sticky routing (None: any replica).
        key = None if context is None else (context.task.suite, context.task.id, context.epoch)
        return await call_with_retries(
            lambda: self._attempt(body, key), self.retry, self.retry_stats, what=self.name
        )

    def _payload(self, messages: list[Message], params: GenerateParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            self.max_tokens_field: params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if self.send_seed:
            body["seed"] = params.seed
        if self.extra_body:  # merged into the top level, as the SDK's ``extra_body`` is
            body.update(self.extra_body)
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.mode == "chat":
            body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        else:
            body["prompt"] = self.completion_prompt(messages)
        return body

    async def _attempt(self, body: bytes, key: Hashable | None = None) -> Completion:
        index, generation = await self.pool.acquire(key)
        endpoint = self.pool.endpoints[index]
        self.retry_stats.requests += 1
        congested = False
        success = False
        try:
            start = time.perf_counter()
            try:
                if self.stream:
                    completion = await self._stream(endpoint, body, start)
                else:
                    raw = await endpoint.request("POST", self._path, body)
                    if raw.status >= 400:
                        raise HTTPStatusFault(raw.status, raw.body, raw.headers)
                    completion = self._parse(raw.body, endpoint, time.perf_counter() - start)
            except HTTPStatusFault as e:
                self.pool.healthy(index)  # it answered, so it is up
                congested = e.status == 429
                self._raise_status(e, endpoint)
            except TimeoutError as e:
                raise TransientFault(
                    "timeout", f"no reply from {endpoint.shown} within {self.timeout_s:g} s"
                ) from e
            except TRANSPORT_ERRORS as e:
                self.pool.eject(index)
                raise transport_fault(e, endpoint.shown) from e
            self.pool.healthy(index)
            success = True
            self.served[index] += 1
            return completion
        finally:
            self.pool.adjust(index, success=success, congested=congested, generation=generation)
            self.pool.release(index)

    async def _stream(self, endpoint: Endpoint, body: bytes, start: float) -> Completion:
        """One streamed request: the reply assembled from server-sent events, and its TTFT."""
        # Status errors and failures to connect surface here as for a whole-body request.
        async with endpoint.stream(self._path, body) as lines:
            try:
                return await self._read_stream(lines, endpoint, start)
            except TRANSPORT_ERRORS as e:
                # Once the body is ours to read, only the transport can fail.
                cause = "timeout" if isinstance(e, TimeoutError) else "connection"
                raise TransientFault(
                    cause,
                    f"the stream from {endpoint.shown} broke off ({type(e).__name__}: {e})",
                ) from e

    async def _read_stream(
        self, lines: AsyncIterator[str], endpoint: Endpoint, start: float
    ) -> Completion:
        where = f"stream from {endpoint.shown}"

        def bad(what: str) -> TransientFault:
            return TransientFault("malformed", f"malformed {where}: {what}")

        parts: list[str] = []
        finish: str | None = None
        usage: Mapping[str, Any] = {}
        ttft: float | None = None
        done = False
        chunks = 0
        async for line in lines:
            if not line.startswith("data:"):
                continue  # blank separators, ': keep-alive' comments, event:/id: fields
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = decode_json(data)
            except ValueError:
                raise bad(f"event {chunks} is not JSON: {_snippet(data)!r}") from None
            if not isinstance(chunk, dict):
                raise bad(f"event {chunks} is a JSON {type(chunk).__name__}, not an object")
            if chunk.get("error"):  # vLLM reports errors met mid-generation in-band
                raise bad(
                    f"event {chunks} carries an error: {_snippet(json.dumps(chunk['error']))}"
                )
            chunks += 1
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            choices = chunk.get("choices")
            if not isinstance(choices, list):
                raise bad(f"event {chunks - 1} has no 'choices' list")
            if not choices:
                continue  # the usage-only event at the end
            choice = choices[0]
            if not isinstance(choice, dict):
                raise bad(f"event {chunks - 1}: choices[0] is not an object")
            if self.mode == "chat":
                delta = choice.get("delta")
                piece = delta.get("content") if isinstance(delta, dict) else None
            else:
                piece = choice.get("text")
            if piece is not None and not isinstance(piece, str):
                raise bad(f"event {chunks - 1}: the text is of type {type(piece).__name__}")
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - start
                parts.append(piece)
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
        if not done and finish is None:
            raise bad(f"it ended after {chunks} events, before [DONE] or a finish_reason")
        latency = time.perf_counter() - start
        if ttft is not None:
            self.record_ttft(ttft)
        return self._completion("".join(parts), finish, usage, latency, ttft)

    def record_ttft(self, seconds: float) -> None:
        """Add one time-to-first-token measurement (streaming only)."""
        self.ttft_count += 1
        self.ttft_total_s += seconds
        self.ttft_max_s = max(self.ttft_max_s, seconds)

    @property
    def mean_ttft_s(self) -> float | None:
        """Mean time to first token over streamed calls (None before any)."""
        return self.ttft_total_s / self.ttft_count if self.ttft_count else None

    def _raise_status(self, e: HTTPStatusFault, endpoint: Endpoint) -> NoReturn:
        status = e.status
        message, code = _error_message(e.body)
        where = f"HTTP {status} from {endpoint.shown}"
        if status in RETRYABLE_STATUSES or status >= 500:
            raise TransientFault(
                f"http_{status}",
                f"{where}: {message}",
                retry_after_s=parse_retry_after(dict(e.headers)),
                status=status,
            ) from e
        if status in (400, 413, 422) and (
            code == "context_length_exceeded" or _CONTEXT_LENGTH.search(message)
        ):
            raise ContextLengthError(
                f"{self.name}: the conversation does not fit the context window ({where}: "
                f"{message})",
                cause="context_length",
                status=status,
            ) from e
        if status in (401, 403):
            key_env = OPENAI_KEY_ENV if self.name.startswith("openai/") else API_KEY_ENV
            hint = f"check the API key (${key_env})" + (
                "" if status == 401 else " and that it may use this model"
            )
            raise BackendError(
                f"{self.name}: {where} ({message}); {hint}. Not retried.",
                cause=f"http_{status}",
                status=status,
            ) from e
        if status == 404:
            raise BackendError(
                f"{self.name}: {where} ({message}); the server does not know model "
                f"{self.model!r}, or the base URL is wrong (it usually ends in /v1). Not retried.",
                cause="http_404",
                status=status,
            ) from e
        raise BackendError(
            f"{self.name}: {where}: {message}. Not retried.",
            cause=f"http_{status}",
            status=status,
        ) from e

    def _parse(self, body: bytes, endpoint: Endpoint, latency: float) -> Completion:
        """A Completion from a reply body, or a ``malformed`` fault saying what is wrong."""
        where = f"reply from {endpoint.shown}"

        def bad(what: str) -> TransientFault:
            return TransientFault("malformed", f"malformed {where}: {what}")

        try:
            data = decode_json(body)
        except ValueError as e:
            raise bad(f"body is not JSON ({e}): {_snippet(body)!r}") from None
        if not isinstance(data, dict):
            raise bad(f"body is a JSON {type(data).__name__}, not an object")
        if data.get("error"):
            raise bad(f"HTTP 200 carrying an error: {_snippet(json.dumps(data['error']))}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise bad(
                "no 'choices'"
                if choices is None
                else "'choices' is empty"
                if isinstance(choices, list)
                else f"'choices' is of type {type(choices).__name__}, not a list"
            )
        choice = choices[0]
        if not isinstance(choice, dict):
            raise bad("choices[0] is not an object")
        if self.mode == "chat":
            message = choice.get("message")
            if not isinstance(message, dict):
                raise bad("choices[0] has no 'message' object")
            text = message.get("content")
            if text is None:  # a refusal or tool call: no text, which is still an answer
                text = message.get("refusal") or ""
        else:
            text = choice.get("text")
        if not isinstance(text, str):
            raise bad(f"the reply text is of type {type(text).__name__}, not a string")
        raw_usage = data.get("usage")
        usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
        return self._completion(text, choice.get("finish_reason"), usage, latency)

    def _completion(
        self,
        text: str,
        finish: object,
        usage: Mapping[str, Any],
        latency: float,
        ttft: float | None = None,
    ) -> Completion:
        prompt_tokens = _count(usage, "prompt_tokens")
        completion_tokens = _count(usage, "completion_tokens")
        cost, _known = self.prices.cost(self.name, prompt_tokens, completion_tokens)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency,
            ttft_s=ttft,
            finish_reason=finish if isinstance(finish, str) and finish else "stop",
            cost_usd=cost,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections of every replica."""
        for endpoint in self.pool.endpoints:
            await endpoint.aclose()

    def __repr__(self) -> str:
        urls = ", ".join(e.shown for e in self.pool.endpoints)
        return f"OpenAICompatModel({self.name!r}, mode={self.mode!r}, base_urls=[{urls}])"


def public_url(url: str) -> str:
    """``url`` fit for a manifest: credentials in it (``user:key@``) dropped, a query string
    (which may carry a key) replaced by its hash, so different queries still differ."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = f"sha256={_sha256(parts.query)[:16]}" if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _identity_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``/models`` entry that name the weights; a large one by its hash."""
    out: dict[str, Any] = {}
    for name in _IDENTITY_FIELDS:
        if name in entry and entry[name] is not None:
            text = json.dumps(entry[name], sort_keys=True, default=str)
            small = len(text) <= _IDENTITY_MAX_FIELD_CHARS
            out[name] = json.loads(text) if small else "sha256:" + _sha256(text)
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value >= 0 else 0


# -------------------------------------------------------------------------------- factories


def split_base_urls(rest: str) -> tuple[str, list[str]]:
    """``model@url1,url2`` -> ``(model, [url1, url2])``; no ``@http`` -> ``(rest, [])``."""
    at = rest.find("@http")
    if at < 0:
        return rest, []
    return rest[:at], [u for u in rest[at + 1 :].split(",") if u.strip()]


def _header_safe_key(key: str, source: str) -> str:
    """``key`` without surrounding whitespace, refused (without echoing it) when an HTTP header
    cannot carry it: a character outside latin-1 (a smart quote pasted in) or a control
    character (a newline would end the header and start another)."""
    key = key.strip()
    for position, char in enumerate(key, 1):
        if ord(char) > 255 or ord(char) < 32 or ord(char) == 127:
            raise BackendConfigError(
                f"the API key from {source} has a character an HTTP header cannot carry at "
                f"position {position} (U+{ord(char):04X}): set it to the key alone"
            )
    return key


def openai_model(model: str, *, api_key: str | None = None, **kwargs: Any) -> OpenAICompatModel:
    """``openai/<model>``: OpenAI's API with ``$OPENAI_API_KEY``.

    The base URL: ``base_url`` if passed (e.g. an Azure or proxy endpoint), else
    ``$OPENAI_BASE_URL``, else OpenAI's. Other keyword arguments go to :class:`OpenAICompatModel`.
    """
    source = "the api_key argument" if api_key else f"${OPENAI_KEY_ENV}"
    key = _header_safe_key(api_key or os.environ.get(OPENAI_KEY_ENV) or "", source)
    if not key:
        raise BackendConfigError(
            f"openai/{model} needs an API key: set ${OPENAI_KEY_ENV} "
            f"(or use openai-compatible/{model} for a local server)"
        )
    base_url = (
        kwargs.pop("base_url", None)
        or os.environ.get(OPENAI_BASE_URL_ENV, "").strip()
        or OPENAI_BASE_URL
    )
    kwargs.setdefault("max_tokens_field", "max_completion_tokens")
    return OpenAICompatModel(
        model, base_urls=base_url, api_key=key, name=f"openai/{model}", **kwargs
    )


def openai_compatible_model(
    rest: str,
    *,
    base_url: str | Sequence[str] | None = None,
    api_key: str | None = None,
    **kwargs: Any,
) -> OpenAICompatModel:
    """``openai-compatible/<model>[@url1,url2]``: any server speaking the OpenAI API.

    Base URLs, first found wins: the ``@`` suffix of the name, ``base_url`` (``--base-url``),
    then ``$MULLIGAN_BASE_URL`` (each comma-separated for replicas). The key: ``api_key``, then
    ``$MULLIGAN_API_KEY``, else ``EMPTY``.
    """
    model, urls = split_base_urls(rest)
    if not model:
        raise BackendConfigError(f"openai-compatible/{rest}: no model name before '@'")
    if not urls:
        given = base_url if base_url is not None else os.environ.get(BASE_URL_ENV, "")
        # --base-url and the variable are comma-separated lists of replicas.
        parts = given.split(",") if isinstance(given, str) else list(given)
        urls = [u.strip() for u in parts if u.strip()]
    if not urls:
        raise BackendConfigError(
            f"openai-compatible/{model} needs the server's base URL: pass "
            f"--base-url http://127.0.0.1:8000/v1 (comma-separated for several replicas), set "
            f"{BASE_URL_ENV} to it, or name the model "
            f"openai-compatible/{model}@http://127.0.0.1:8000/v1"
        )
    source = "the api_key argument" if api_key else f"${API_KEY_ENV}"
    key = _header_safe_key(api_key or os.environ.get(API_KEY_ENV) or "", source) or NO_API_KEY
    return OpenAICompatModel(
        model, base_urls=urls, api_key=key, name=f"openai-compatible/{model}", **kwargs
    )
