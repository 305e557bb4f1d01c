"""Retries with backoff for model backends, per-cause retry counts, and an AIMD concurrency limit.

A backend turns each failed attempt into either a :class:`TransientFault` (may heal: 429, 5xx,
timeouts, dropped connections, malformed bodies), which :func:`call_with_retries` retries, or a
final :class:`~mulligan.models.base.ModelError`, which propagates at once. The retry loop is
tenacity's; what we add is the policy (full-jitter exponential backoff that yields to the
server's ``Retry-After``), counting retries by cause, and an error that names the cause when the
attempts run out.

:class:`AdaptiveLimit` is the concurrency limit of one endpoint, adjusted by AIMD (additive
increase, multiplicative decrease) the way TCP adjusts its window: halve on a rate-limit reply,
grow by one on success, bounded to ``[1, maximum]``.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from mulligan.models.base import ModelError

T = TypeVar("T")
E = TypeVar("E")
BalanceStrategy = Literal["least-in-flight", "round-robin"]


class TransientFault(Exception):
    """One attempt failed in a way that may heal on retry.

    Args:
        cause: a short stable label used for counting, e.g. ``http_429``, ``http_503``,
            ``timeout``, ``connection``, ``malformed``.
        message: what happened, for the final error if retries run out.
        retry_after_s: the server's ``Retry-After``, if it sent one.
        status: the HTTP status, if there was one.
    """

    def __init__(
        self,
        cause: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.retry_after_s = retry_after_s
        self.status = status


class BackendError(ModelError):
    """A final model-call failure that names its cause.

    ``cause`` uses the labels of :class:`TransientFault` plus ``http_<status>`` for final HTTP
    errors; ``attempts`` counts the requests made (1 when the error was final at once).
    """

    def __init__(
        self,
        message: str,
        *,
        cause: str,
        transient: bool = False,
        attempts: int = 1,
        status: int | None = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.cause = cause
        self.attempts = attempts
        self.status = status


class RetryPolicy(BaseModel):
    """How a backend retries transient faults.

    The wait before retry *n* (1-based) is uniform in ``[0, min(max_backoff_s,
    initial_backoff_s * 2**(n-1))]`` ("full jitter": concurrent episodes that failed together do
    not retry together), unless the server sent ``Retry-After``, which is obeyed, capped at
    ``max_retry_after_s`` so one bad header cannot stall a run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=6, ge=1, description="requests per call, the first included")
    initial_backoff_s: float = Field(default=1.0, ge=0.0)
    max_backoff_s: float = Field(default=30.0, ge=0.0)
    respect_retry_after: bool = True
    max_retry_after_s: float = Field(default=60.0, ge=0.0)


class _BackoffOrRetryAfter(wait_base):
    """Tenacity wait strategy: the server's ``Retry-After`` if any, else full-jitter backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = wait_random_exponential(
            multiplier=policy.initial_backoff_s, max=policy.max_backoff_s
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if (
            self.policy.respect_retry_after
            and isinstance(exc, TransientFault)
            and exc.retry_after_s is not None
        ):
            return min(exc.retry_after_s, self.policy.max_retry_after_s)
        return float(self.backoff(retry_state))


def retry_wait(policy: RetryPolicy, attempt: int, fault: TransientFault) -> float:
    """The wait before retrying after ``fault`` on ``attempt`` (1-based), as the loop computes it."""
    state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(fault), fault, None))
    return _BackoffOrRetryAfter(policy)(state)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP date (RFC 9110 §10.2.3); OpenAI also sends the
    non-standard ``retry-after-ms``. Returns None when absent, unparsable or negative.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class RetryStats:
    """Counts of one backend's requests and retries, by cause. Not thread-safe: one event loop.

    Attributes:
        calls: ``generate`` calls started.
        requests: HTTP requests (attempts) sent.
        succeeded / failed: calls that returned / raised.
        retries: retries by cause (``http_429``, ``timeout``, ...).
        errors: final errors by cause, including retries that ran out.
        waited_s: total time spent sleeping between attempts.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.requests = 0
        self.succeeded = 0
        self.failed = 0
        self.retries: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.waited_s = 0.0

    def as_dict(self) -> dict[str, int]:
        """Flat counts: ``calls``, ``requests``, ``succeeded``, ``failed``, ``retries``,
        ``retry.<cause>`` and ``error.<cause>``."""
        out = {
            "calls": self.calls,
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retries": sum(self.retries.values()),
        }
        out.update({f"retry.{k}": v for k, v in sorted(self.retries.items())})
        out.update({f"error.{k}": v for k, v in sorted(self.errors.items())})
        return out


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    stats: RetryStats,
    *,
    what: str,
) -> T:
    """Run ``attempt`` until it returns, raises a non-transient error, or attempts run out.

    Args:
        attempt: one try; raises :class:`TransientFault` for faults worth retrying.
        policy: attempts and waits.
        stats: updated with per-cause retry and error counts.
        what: names the call in the final error (e.g. the model name).

    Raises:
        BackendError: ``transient=True`` when every attempt hit a transient fault; the message
            names the last cause and the number of attempts.
        ModelError: whatever final error ``attempt`` raised, unchanged.
    """
    stats.calls += 1
    # Fast path: most calls succeed at once, and building tenacity's retry loop costs more CPU
    # than the rest of a call's bookkeeping; so the first attempt runs outside it, and only a
    # transient fault enters the loop, which replays that fault as its own first attempt (so
    # attempts, waits and counts are exactly tenacity's).
    try:
        result = await attempt()
    except TransientFault as fault:
        return await _retry_loop(attempt, policy, stats, what=what, first=fault)
    except BackendError as e:
        stats.failed += 1
        stats.errors[e.cause] += 1
        raise
    except BaseException:
        stats.failed += 1
        raise
    stats.succeeded += 1
    return result


async def _retry_loop(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    stats: RetryStats,
    *,
    what: str,
    first: TransientFault,
) -> T:
    """:func:`call_with_retries` after its first attempt failed with ``first``."""
    pending: TransientFault | None = first

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientFault):
            stats.retries[exc.cause] += 1
        if state.next_action is not None:
            stats.waited_s += state.next_action.sleep

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_BackoffOrRetryAfter(policy),
        retry=retry_if_exception_type(TransientFault),
        before_sleep=before_sleep,
        reraise=True,
    )
    tries = 0
    try:
        async for try_ in retrying:
            with try_:
                tries += 1
                if pending is not None:  # the first attempt, made before the loop
                    fault, pending = pending, None
                    raise fault
                result = await attempt()
    except TransientFault as fault:
        stats.failed += 1
        stats.errors[fault.cause] += 1
        plural = "attempt" if tries == 1 else "attempts"
        raise BackendError(
            f"{what}: gave up after {tries} {plural}; last fault: {fault.cause}: {fault}",
            cause=fault.cause,
            transient=True,
            attempts=tries,
            status=fault.status,
        ) from fault
    except BackendError as e:
        stats.failed += 1
        stats.errors[e.cause] += 1
        e.attempts = tries
        raise
    except BaseException:
        stats.failed += 1
        raise
    stats.succeeded += 1
    return result


class AdaptiveLimit:
    """An AIMD concurrency limit: at most ``limit`` requests in flight, ``1 <= limit <= maximum``.

    :meth:`on_success` adds one; :meth:`on_congestion` halves, but only once per congestion
    event: a rate-limit reply to a request sent *before* the last decrease says nothing new (its
    burst was already answered), so it is ignored. Without this, a burst of 100 rejected requests
    would halve the limit 100 times, to 1.

    The counters live on the event loop; waiting happens in :class:`EndpointPool`.
    """

    def __init__(self, maximum: int, initial: int | None = None) -> None:
        if maximum < 1:
            raise ValueError(f"maximum concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self.limit = max(1, min(maximum, initial if initial is not None else maximum))
        self.in_flight = 0
        self.generation = 0  # bumped on each decrease
        self.decreases = 0
        self.increases = 0
        self.lowest = self.limit

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.limit

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self.limit += 1
            self.increases += 1

    def on_congestion(self, sent_generation: int) -> None:
        """A rate-limit reply to a request sent when :attr:`generation` was ``sent_generation``."""
        if sent_generation != self.generation:
            return
        self.generation += 1
        new = max(1, self.limit // 2)
        if new < self.limit:
            self.decreases += 1
        self.limit = new
        self.lowest = min(self.lowest, new)


class EndpointPool(Generic[E]):
    """Endpoints (e.g. replicas of one model), each with its own :class:`AdaptiveLimit`.

    :meth:`acquire` waits until some endpoint has room and picks one: the fewest requests in
    flight (``least-in-flight``), ties broken round-robin; or strictly round-robin among those
    with room (``round-robin``). A rate limit from one replica therefore only slows that replica.

    A replica that refuses connections is ejected for a while (:meth:`eject`: 1 s, doubling
    with each consecutive failure, at most ``max_eject_s``) so requests stop going to a dead
    replica; when every replica is ejected, all are eligible again rather than none.

    ``sticky``: :meth:`acquire` with a key (an episode) sends every request of that key to the
    endpoint its first request went to (its *home*), waiting for room there rather than moving,
    so a server's prefix cache keeps the key's conversation; only when the home is ejected does
    the key move (counted in :attr:`moves`) and get a new home. The last ``max_keys`` keys are
    remembered (least recently used forgotten first), so memory stays bounded.

    All methods but :meth:`acquire` are synchronous, so a ``finally`` in a cancelled task can
    always give its slot back.
    """

    def __init__(
        self,
        endpoints: list[E],
        limits: list[AdaptiveLimit],
        strategy: BalanceStrategy = "least-in-flight",
        *,
        base_eject_s: float = 1.0,
        max_eject_s: float = 30.0,
        sticky: bool = False,
        max_keys: int = 100_000,
    ) -> None:
        if not endpoints or len(endpoints) != len(limits):
            raise ValueError("need at least one endpoint, and one limit per endpoint")
        if strategy not in ("least-in-flight", "round-robin"):
            raise ValueError(f"unknown balancing strategy {strategy!r}")
        self.endpoints = endpoints
        self.limits = limits
        self.strategy = strategy
        self._next = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.base_eject_s = base_eject_s
        self.max_eject_s = max_eject_s
        self._down_until = [0.0 for _ in endpoints]
        self._failures = [0 for _ in endpoints]
        self.ejections = 0
        self.sticky = sticky
        self.max_keys = max_keys
        self._homes: collections.OrderedDict[Hashable, int] = collections.OrderedDict()
        self.moves = 0  # keys moved off their home endpoint because it was ejected

    def _pick(self, key: Hashable | None = None) -> int | None:
        n = len(self.endpoints)
        order = [(self._next + i) % n for i in range(n)]
        now = time.monotonic()
        healthy = [i for i in order if self._down_until[i] <= now] or order
        if key is not None and self.sticky and n > 1:
            home = self._homes.get(key)
            if home is not None and home in healthy:
                self._homes.move_to_end(key)
                # Wait for room at home rather than lose the server's cached prefix.
                return home if self.limits[home].has_room else None
        open_ = [i for i in healthy if self.limits[i].has_room]
        if not open_:
            return None
        if self.strategy == "least-in-flight":
            chosen = min(open_, key=lambda i: self.limits[i].in_flight)  # first = round-robin tie
        else:
            chosen = open_[0]
        self._next = (chosen + 1) % n
        if key is not None and self.sticky and n > 1:
            self._rehome(key, chosen)
        return chosen

    def _rehome(self, key: Hashable, index: int) -> None:
        if self._homes.get(key, index) != index:
            self.moves += 1
        self._homes[key] = index
        self._homes.move_to_end(key)
        while len(self._homes) > self.max_keys:
            self._homes.popitem(last=False)

    async def acquire(self, key: Hashable | None = None) -> tuple[int, int]:
        """Wait for room; returns ``(endpoint index, limit generation at send time)``.

        ``key`` names what the request belongs to (an episode) for sticky routing."""
        while (index := self._pick(key)) is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        limit = self.limits[index]
        limit.in_flight += 1
        return index, limit.generation

    def release(self, index: int) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self.limits[index].in_flight -= 1
        self._wake()

    def adjust(self, index: int, *, success: bool, congested: bool, generation: int) -> None:
        """Feed an outcome to endpoint ``index``'s limit."""
        if congested:
            self.limits[index].on_congestion(generation)
        elif success:
            self.limits[index].on_success()
            self._wake()

    def eject(self, index: int) -> None:
        """Endpoint ``index`` refused or dropped a connection: stop routing to it for a while.

        Failures while it is already ejected (the rest of the burst that was in flight) do not
        lengthen the ejection; a failure after it comes back doubles it.
        """
        if self._down_until[index] > time.monotonic():
            return
        self._failures[index] += 1
        delay = min(self.max_eject_s, self.base_eject_s * 2 ** (self._failures[index] - 1))
        self._down_until[index] = time.monotonic() + delay
        self.ejections += 1

    def healthy(self, index: int) -> None:
        """Endpoint ``index`` answered: forget its failures."""
        self._failures[index] = 0
        self._down_until[index] = 0.0

    @property
    def in_flight(self) -> int:
        return sum(limit.in_flight for limit in self.limits)

    def _wake(self) -> None:
        # Wake every waiter; each re-checks for room, so waking too many is harmless.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
