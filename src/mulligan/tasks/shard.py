"""Shards of a run: a deterministic partition of its tasks by task key, for runs split over
machines under any scheduler (``mulligan run --shard i/n``, joined by ``mulligan merge``).

A task belongs to shard ``i`` of ``n`` when a stable hash of its key (suite, task id) is ``i``
modulo ``n``: SHA-256, not Python's ``hash()``, which is salted per process. Every epoch of a
task lands in the same shard, so shards never share an episode, and the partition does not
depend on the order, number or selection of the other tasks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from mulligan.tasks.base import Task

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def task_key_hash(suite: str, task_id: str) -> int:
    """A stable 64-bit hash of a task's key, the same on every machine and Python."""
    digest = hashlib.sha256(f"{suite}\x00{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"`` -> Shard(i, n); raises ValueError with the fix."""
        match = _SPEC.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not i/n (e.g. 0/4: the first of 4 shards)")
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"{text!r}: i/n needs n >= 1 and 0 <= i < n (shards count from 0)")
        return cls(index, count)

    @classmethod
    def of(cls, value: Any) -> Shard | None:
        """The shard a stored config's ``shard`` option names (None: an unsharded run)."""
        return None if value in (None, "") else cls.parse(str(value))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, suite: str, task_id: str) -> bool:
        return task_key_hash(suite, task_id) % self.count == self.index

    def select(self, tasks: list[Task]) -> list[Task]:
        """The tasks of this shard, in their order."""
        return [t for t in tasks if self.holds(t.suite, t.id)]
