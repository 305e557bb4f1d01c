"""The response cache: a content-addressed SQLite store of completions, in front of any backend.

``CachedModel(inner, path, mode)`` implements the model protocol. The key of a call is the
SHA-256 of (model name, the backend's identity, messages, every sampling parameter including the
seed, the epoch from the call context): two calls share an answer only if they would have asked
the same thing of the same model. The name alone is not enough: ``openai-compatible/<id>`` is
served under one id by many servers with different weights (llama.cpp server, vLLM's
``--served-model-name``, Ollama), so the identity (see
:class:`~mulligan.models.base.DeclaresIdentity`: the server URLs and what they report, a local
model's weights checksum, a vLLM model's name and revision) is part of the key. It is resolved
once per model; if it cannot be resolved the call bypasses the cache rather than risk another
model's answer.

Modes:

- ``auto`` (default): ``on`` for temperature 0, ``off`` above. Greedy answers are what the model
  *would* say again, so reusing them changes nothing but cost. A sample at temperature > 0 is one
  draw of many; silently replaying it could hide the variance a user re-runs to measure.
- ``on``: read and write at any temperature. Because the epoch is part of the key, the samples of
  epochs 0, 1, 2 of one task stay distinct (a rerun replays each epoch's own sample), rather than
  every epoch getting the first sample.
- ``read``: answer from the cache, never store (a frozen cache); ``write``: always call the
  model and store (refresh); ``off``: pass through.

A hit comes back with ``cached=True``, the original token counts and cost (what producing the
answer took; money actually spent is the sum over calls with ``cached=False``) and, as
``latency_s``, the time the lookup took.

Storage: one shared file, ``$MULLIGAN_CACHE_DIR/responses.sqlite`` (default
``~/.cache/mulligan/responses.sqlite``), in WAL mode so several processes read and write it at
once; each write is one short autocommitted statement. SQLite calls run in a worker thread so a
lock held by another process never blocks the event loop. Concurrent identical calls in one
process are coalesced: the first asks the model, the others wait and read its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mulligan.events import Message
from mulligan.models.base import (
    CallContext,
    Completion,
    GenerateParams,
    Model,
    counters_of,
    identity_of,
)

log = logging.getLogger(__name__)

CacheMode = Literal["auto", "on", "read", "write", "off"]
CACHE_MODES: tuple[CacheMode, ...] = ("auto", "on", "read", "write", "off")
CACHE_DIR_ENV = "MULLIGAN_CACHE_DIR"
CACHE_FILE = "responses.sqlite"
KEY_VERSION = 2  # bump when the key's contents change, so old entries are not misread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    completion TEXT NOT NULL
);
"""


def default_cache_path() -> Path:
    """``$MULLIGAN_CACHE_DIR/responses.sqlite``, default ``~/.cache/mulligan/responses.sqlite``."""
    root = os.environ.get(CACHE_DIR_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "mulligan"
    return base / CACHE_FILE


def cache_key(
    model: str,
    messages: list[Message],
    params: GenerateParams,
    epoch: int,
    identity: dict[str, Any] | None = None,
) -> str:
    """The content address of a call: hex SHA-256 of its canonical JSON (``identity``: the
    backend's, see the module docstring)."""
    payload = {
        "v": KEY_VERSION,
        "model": model,
        "identity": identity,
        "messages": [[m.role, m.content] for m in messages],
        "params": params.model_dump(mode="json"),
        "epoch": epoch,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """The SQLite file behind :class:`CachedModel` (blocking methods; call them off the loop).

    One connection, guarded by a lock, shared by the worker threads; other processes use their
    own connections to the same file.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: how long a statement waits for another process's write lock.
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT completion FROM responses WHERE key=?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            return Completion.model_validate_json(row[0])
        except ValidationError as e:  # written by an incompatible version: a miss, not a crash
            log.warning("%s: ignoring unreadable cache entry %s: %s", self.path, key[:12], e)
            return None

    def put(self, key: str, completion: Completion) -> None:
        data = completion.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses(key, model, created_at, completion) "
                "VALUES (?, ?, ?, ?)",
                (key, completion.model, time.time(), data),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedModel:
    """A model whose answers are cached (see the module docstring for modes and keys).

    Args:
        inner: the backend that answers misses.
        path: the SQLite file (default :func:`default_cache_path`); ignored if ``cache`` is given.
        mode: ``auto`` | ``on`` | ``read`` | ``write`` | ``off``.
        cache: an open :class:`ResponseCache` to share between models.

    Attributes:
        hits / misses: lookups answered / not answered from the cache.
        inner_calls: calls that reached ``inner``.
        errors: SQLite failures (logged; a failed lookup is a miss, a failed store is skipped)
            and a failure to resolve the backend's identity (every call then bypasses the cache).
    """

    cacheable = False  # already cached: a second cache in front gains nothing

    def __init__(
        self,
        inner: Model,
        path: Path | str | None = None,
        mode: CacheMode = "auto",
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}")
        self.inner = inner
        self.name = inner.name
        self.mode: CacheMode = mode
        self._owns_cache = cache is None and mode != "off"
        self.cache = (
            cache if cache is not None else (ResponseCache(path) if mode != "off" else None)
        )
        self.hits = 0
        self.misses = 0
        self.inner_calls = 0
        self.errors = 0
        # Per-key locks that coalesce concurrent identical calls; removed when unused.
        self._key_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._identity: dict[str, Any] | None = None
        self._identity_failed = False
        self._identity_lock = asyncio.Lock()

    def counters(self) -> dict[str, int]:
        """``cache.hits`` / ``cache.misses`` / ``cache.errors``, then the inner model's own."""
        return {
            "cache.hits": self.hits,
            "cache.misses": self.misses,
            "cache.errors": self.errors,
            **counters_of(self.inner),
        }

    def effective_mode(self, params: GenerateParams) -> CacheMode:
        """The mode applied to a call with these params (``auto`` resolved)."""
        if self.mode == "auto":
            return "on" if params.temperature == 0 else "off"
        return self.mode

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        """The cached answer if there is one (and the mode reads), else the inner model's."""
        mode = self.effective_mode(params)
        identity = None if mode == "off" else await self._resolved_identity()
        if identity is None or self.cache is None:
            return await self._call_inner(messages, params, context)
        cache = self.cache
        key = cache_key(self.name, messages, params, context.epoch if context else 0, identity)
        reads = mode in ("on", "read")
        writes = mode in ("on", "write")
        if reads and (hit := await self._lookup(cache, key)) is not None:
            return hit
        async with self._coalesced(key):
            # Another caller with the same key may have filled it while we waited.
            if reads and (hit := await self._lookup(cache, key)) is not None:
                return hit
            if reads:
                self.misses += 1
            completion = await self._call_inner(messages, params, context)
            if writes:
                try:
                    await asyncio.to_thread(cache.put, key, completion)
                except sqlite3.Error as e:  # a cache that cannot store must not lose the answer
                    self.errors += 1
                    log.warning("%s: could not store a response: %s", cache.path, e)
        return completion

    async def resolve_identity(self) -> dict[str, Any]:
        """The inner backend's identity (the cache adds nothing to what answers a call)."""
        return await identity_of(self.inner)

    async def _resolved_identity(self) -> dict[str, Any] | None:
        """The inner identity, resolved once; None (and one warning) if that failed."""
        async with self._identity_lock:
            if self._identity is None and not self._identity_failed:
                try:
                    self._identity = await identity_of(self.inner)
                except Exception as e:  # unknown identity: never risk another model's answers
                    self._identity_failed = True
                    self.errors += 1
                    log.warning("%s: identity unknown, calls bypass the cache: %s", self.name, e)
            return self._identity

    async def _lookup(self, cache: ResponseCache, key: str) -> Completion | None:
        start = time.perf_counter()
        try:
            found = await asyncio.to_thread(cache.get, key)
        except sqlite3.Error as e:  # e.g. locked past the timeout: ask the model instead
            self.errors += 1
            log.warning("%s: lookup failed, treated as a miss: %s", cache.path, e)
            return None
        if found is None:
            return None
        self.hits += 1
        return found.model_copy(update={"cached": True, "latency_s": time.perf_counter() - start})

    async def _call_inner(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None
    ) -> Completion:
        self.inner_calls += 1
        return await self.inner.generate(messages, params, context)

    @contextlib.asynccontextmanager
    async def _coalesced(self, key: str) -> AsyncIterator[None]:
        lock, users = self._key_locks.get(key, (asyncio.Lock(), 0))
        self._key_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._key_locks[key]
            if users <= 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, users - 1)

    async def aclose(self) -> None:
        """Close the inner model, and the cache file if this model opened it."""
        try:
            await self.inner.aclose()
        finally:
            if self._owns_cache and self.cache is not None:
                await asyncio.to_thread(self.cache.close)

    def __repr__(self) -> str:
        where = self.cache.path if self.cache is not None else None
        return f"CachedModel({self.inner!r}, mode={self.mode!r}, path={where})"
