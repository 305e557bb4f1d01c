"""Repeated sampling: pass@k and pass^k per turn budget, from several episodes of each task.

A run with ``--epochs n`` attempts every task n times, each epoch with its own sampling seeds
(:func:`mulligan.models.base.call_seed`); a fork run (:mod:`mulligan.engine.fork`) samples
several branches of each parent episode. For a task with n sampled episodes of which c were
solved within t turns:

- **pass@k** (Chen et al., 2021, the unbiased estimator of "at least one of k samples
  succeeds")::

      pass@k = 1 - C(n - c, k) / C(n, k)

- **pass^k** (Yao et al., 2024, tau-bench: "all of k samples succeed")::

      pass^k = C(c, k) / C(n, k)

Both are averaged over tasks (each task weighs the same, however many samples it has), for
every turn budget t = 1..K (success within t turns, as SR@t counts it) and every k = 1..n_max.
Failed episodes count as sampled and unsolved, as in SR@k. pass@1 = pass^1 = c/n.

**k > n**: a task sampled fewer than k times has no unbiased estimate (C(n, k) = 0): it is left
out of that k's average, and the table says how many tasks were left out (``short``). When every
task is short, the value is None.

**Intervals**: a percentile bootstrap that resamples *tasks* (the clusters: a task's samples
are not independent of each other) and averages their per-task values
(:func:`~mulligan.metrics.stats.mean_estimate` over tasks, ``method="task-bootstrap"``).
``Estimate.episodes`` then counts the tasks averaged. Like every percentile bootstrap, it
collapses to a point when every task has the same value (all 0 or all 1).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from mulligan.events import Episode
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, mean_estimate


def _check_counts(n: int, c: int, k: int) -> None:
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 samples and 0 <= c <= n successes, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"k={k} exceeds the n={n} samples: pass@k and pass^k need k <= n")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s unbiased pass@k of one task: 1 - C(n-c, k) / C(n, k) (1 when n - c < k).

    Raises ValueError for k > n (no unbiased estimate exists), k < 1 or counts out of range.
    """
    _check_counts(n, c, k)
    # Exact integers (math.comb is 0 when k > n - c), one correctly rounded division: pass@1
    # is exactly c / n, as SR is, where 1 - (n - c) / n would not be.
    total = math.comb(n, k)
    return (total - math.comb(n - c, k)) / total


def pass_hat_k(n: int, c: int, k: int) -> float:
    """tau-bench's pass^k of one task: C(c, k) / C(n, k), the chance that k samples drawn
    without replacement all succeed (0 when c < k). Same errors as :func:`pass_at_k`."""
    _check_counts(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


TaskId = tuple[str, str]  # (suite, task id)


def samples_per_task(episodes: Iterable[Episode]) -> dict[TaskId, list[Episode]]:
    """Episodes grouped by task (suite, task id), in a stable order."""
    out: dict[TaskId, list[Episode]] = defaultdict(list)
    for episode in episodes:
        out[(episode.key.suite, episode.key.task_id)].append(episode)
    return dict(sorted(out.items()))


def task_counts(episodes: Iterable[Episode], turns: int) -> dict[TaskId, tuple[int, int]]:
    """Per task, (n, c): its sampled episodes and those solved within ``turns`` turns."""
    return {
        task: (len(eps), sum(e.success_at(turns) for e in eps))
        for task, eps in samples_per_task(episodes).items()
    }


class PassKTable(BaseModel):
    """pass@k and pass^k of a group of episodes, by k and turn budget t.

    ``pass_at_k[k][t]`` and ``pass_hat_k[k][t]`` are ``Estimate``s (keys are strings, as in
    JSON) whose ``episodes`` counts the tasks averaged; ``short[k]`` counts the tasks left out of
    k's average because they have fewer than k samples.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: int
    samples_min: int = Field(description="fewest sampled episodes of a task (0: no task)")
    samples_max: int = Field(description="most sampled episodes of a task")
    ks: list[int]
    max_turns: int
    pass_at_k: dict[str, dict[str, Estimate]]
    pass_hat_k: dict[str, dict[str, Estimate]]
    short: dict[str, int]

    @property
    def repeated(self) -> bool:
        """Whether some task was sampled more than once (only then does k > 1 exist)."""
        return self.samples_max >= 2


def _averaged(
    counts: Sequence[tuple[int, int]],
    k: int,
    per_task: Callable[[int, int, int], float],
    bootstrap: BootstrapConfig,
) -> Estimate:
    values = [per_task(n, c, k) for n, c in counts if n >= k]
    estimate = mean_estimate(values, bootstrap)
    return estimate.model_copy(update={"method": "task-bootstrap"})


def pass_k_table(
    episodes: Iterable[Episode],
    ks: Sequence[int] | None = None,
    max_turns: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> PassKTable:
    """pass@k and pass^k for each k in ``ks`` (default 1..the most samples of a task) and each
    turn budget t = 1..``max_turns`` (default: the largest episode budget); see the module
    docstring for the formulas, the tasks left out (k > n) and the intervals."""
    items = list(episodes)
    groups = samples_per_task(items)
    sizes = [len(eps) for eps in groups.values()]
    most = max(sizes, default=0)
    chosen = sorted(set(ks)) if ks is not None else list(range(1, most + 1))
    if any(k < 1 for k in chosen):
        raise ValueError(f"every k must be at least 1, got {chosen}")
    budget = max_turns if max_turns is not None else max((e.max_turns for e in items), default=0)
    at: dict[str, dict[str, Estimate]] = {str(k): {} for k in chosen}
    hat: dict[str, dict[str, Estimate]] = {str(k): {} for k in chosen}
    for t in range(1, budget + 1):
        counts = list(task_counts(items, t).values())
        for k in chosen:
            at[str(k)][str(t)] = _averaged(counts, k, pass_at_k, bootstrap)
            # pass^1 is pass@1: the same values, so the same estimate.
            hat[str(k)][str(t)] = (
                at[str(k)][str(t)] if k == 1 else _averaged(counts, k, pass_hat_k, bootstrap)
            )
    return PassKTable(
        tasks=len(groups),
        samples_min=min(sizes, default=0),
        samples_max=most,
        ks=chosen,
        max_turns=budget,
        pass_at_k=at,
        pass_hat_k=hat,
        short={str(k): sum(n < k for n in sizes) for k in chosen},
    )
