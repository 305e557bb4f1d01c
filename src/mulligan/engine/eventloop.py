"""The event loop a run goes on: uvloop's where it is installed, asyncio's own otherwise.

At high concurrency against a fast server the client's per-turn CPU is a few hundred
microseconds of socket reads, timers and callbacks; asyncio's pure-Python loop spends about a
fifth of it on itself, uvloop (libuv underneath) far less (benchmarks/README.md, "The client's
per-turn hot path"). uvloop is a dependency only where it builds (Linux and macOS on CPython),
so the default loop stays the fallback: nothing in mulligan needs uvloop, and everything that
touches the loop (``add_reader`` on check-worker pipes, subprocesses for sandboxes and the
ALFWorld server, SIGINT/SIGTERM through ``asyncio.Runner``, aiohttp, Ray's awaitable object
references) runs on either. ``MULLIGAN_EVENT_LOOP=asyncio`` picks asyncio's loop where uvloop
is installed (to rule the loop out when chasing a bug).

The cyclic garbage collector's youngest generation is collected every
:data:`RUN_GC_THRESHOLD` allocations instead of Python's 700 while :func:`run` runs: at high
concurrency most objects of a turn (messages, events, reply buffers, coroutine frames) live
across many other episodes' turns, so at 700 each was traversed in several young and middle
collections before dying by reference count, about 15% of the client's CPU
(benchmarks/README.md, "Text checks without the round trip"). Garbage is collected as before,
only in fewer, larger passes; the thresholds are restored when the run ends.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

ENV_VAR = "MULLIGAN_EVENT_LOOP"

RUN_GC_THRESHOLD = 20_000
"""Net allocations of tracked objects between two collections of the youngest generation
during a run (Python's default: 700); the older generations keep their default ratios."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default (not installed, or not wanted)."""
    if os.environ.get(ENV_VAR, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # Windows, PyPy, or installed without it: asyncio's loop does the same
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` would use now (benchmarks record it)."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop of :func:`loop_factory`.

    ``asyncio.Runner`` does what ``asyncio.run`` does (Ctrl-C cancels the main task, async
    generators and the default executor are shut down at the end) for any loop factory."""
    with _fewer_collections(), asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The youngest generation collected every :data:`RUN_GC_THRESHOLD` allocations (never
    less often than before) while the block runs; the previous thresholds afterwards."""
    before = gc.get_threshold()
    if 0 < before[0] < RUN_GC_THRESHOLD:  # 0: collection turned off, which stays so
        gc.set_threshold(RUN_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
