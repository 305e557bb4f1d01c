"""Success rate at k turns (SR@k) per suite and overall, from stored episodes.

SR@k = (1/N) * sum_i 1[episode i has a correct proposal at a turn <= k], over N episodes.
"Overall" is the micro-average over all episodes (MINT's convention); "macro" averages the
per-suite rates. Failed episodes (errors) count as unsolved: they are attempts that produced
no correct answer, and dropping them would flatter a flaky backend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

from mulligan.events import Episode


class SuccessTable(BaseModel):
    """SR@k for k = 1..K over one group of episodes."""

    episodes: int
    failed: int
    sr_at_k: dict[str, float]


def success_rate_at_k(episodes: Iterable[Episode], k: int) -> float:
    """Fraction of ``episodes`` solved within ``k`` turns (0.0 for no episodes)."""
    items = list(episodes)
    if not items:
        return 0.0
    return sum(e.success_at(k) for e in items) / len(items)


def _table(episodes: list[Episode], max_k: int) -> SuccessTable:
    return SuccessTable(
        episodes=len(episodes),
        failed=sum(e.status == "failed" for e in episodes),
        sr_at_k={str(k): success_rate_at_k(episodes, k) for k in range(1, max_k + 1)},
    )


def success_tables(episodes: Iterable[Episode]) -> dict[str, object]:
    """``{"overall": table, "macro": {...}, "suites": {suite: table}}`` with K = the largest budget."""
    by_suite: dict[str, list[Episode]] = defaultdict(list)
    everything: list[Episode] = []
    for episode in episodes:
        by_suite[episode.key.suite].append(episode)
        everything.append(episode)
    max_k = max((e.max_turns for e in everything), default=0)
    suites = {name: _table(items, max_k) for name, items in sorted(by_suite.items())}
    macro = {
        str(k): (sum(t.sr_at_k[str(k)] for t in suites.values()) / len(suites)) if suites else 0.0
        for k in range(1, max_k + 1)
    }
    return {
        "overall": _table(everything, max_k).model_dump(),
        "macro": {"sr_at_k": macro},
        "suites": {name: t.model_dump() for name, t in suites.items()},
    }
