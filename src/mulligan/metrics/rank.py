"""Rank agreement between two settings: does a cheap setting rank models as an expensive one does?

ConvCodeWorld's check (Han et al., 2025) that a cheap, reproducible setting (e.g. static or
replayed feedback) can stand in for an expensive one (live LLM feedback): run the same models
under both, and compare the models' order. Each setting is a set of runs, one per model (runs
are matched by their policy model); a model's score is its SR@K over the tasks both settings
share, K each setting's own turn budget (its runs' largest).

- **Spearman's rho**: Pearson's correlation of the two score vectors' ranks (ties get their
  average rank).
- **Kendall's tau-b**: (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)) over model pairs,
  n0 = n(n-1)/2, n1 and n2 the pairs tied in each setting.

Intervals: a percentile bootstrap over **tasks**: draw the shared tasks with replacement, score
every model in both settings on the draw, correlate; models stay fixed (with a handful of
models, resampling models would mostly measure which models were drawn). A draw where one
setting ranks every model equal gives no correlation and is left out (``draws`` says how many
counted). Undefined (None) when a setting scores every model the same; with two models
it can only be +-1, so give at least three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` (ascending), ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start : end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho of paired values (None when either side is constant or n < 2)."""
    if len(a) != len(b):
        raise ValueError("spearman needs paired values")
    ra, rb = np.asarray(average_ranks(a)), np.asarray(average_ranks(b))
    if len(a) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall_tau_b(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b of paired values (None when either side is constant or n < 2)."""
    if len(a) != len(b):
        raise ValueError("kendall_tau_b needs paired values")
    n = len(a)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                ties_a += 1
            if db == 0:
                ties_b += 1
            if da and db:
                if (da > 0) == (db > 0):
                    concordant += 1
                else:
                    discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return None if denominator == 0 else (concordant - discordant) / denominator


class Correlation(BaseModel):
    """A rank correlation with its bootstrap interval over tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None
    ci_low: float | None
    ci_high: float | None
    draws: int


class RankAgreement(BaseModel):
    """How two settings rank the same models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[str]
    scores_a: list[float]
    scores_b: list[float]
    tasks: int
    k_a: int
    k_b: int
    spearman: Correlation
    kendall: Correlation
    confidence: float
    resampled: str = "tasks"


def _outcomes(episodes: Sequence[Episode], k: int) -> dict[str, float]:
    """Per task key (suite/id), the share of its finished epochs solved within k turns."""
    solved: dict[str, list[bool]] = {}
    for e in episodes:
        solved.setdefault(f"{e.key.suite}/{e.key.task_id}", []).append(e.success_at(k))
    return {key: sum(v) / len(v) for key, v in solved.items()}


_Corr = Callable[[Sequence[float], Sequence[float]], float | None]


def _correlation(
    matrix_a: NDArray[np.float64],
    matrix_b: NDArray[np.float64],
    corr: _Corr,
    bootstrap: BootstrapConfig,
) -> Correlation:
    """``corr`` of the models' mean scores, and its percentile interval over task draws."""
    value = corr(list(matrix_a.mean(axis=1)), list(matrix_b.mean(axis=1)))
    rng = np.random.default_rng(bootstrap.seed)
    n_tasks = matrix_a.shape[1]
    draws = []
    for _ in range(bootstrap.n_resamples):
        idx = rng.integers(0, n_tasks, n_tasks)
        r = corr(list(matrix_a[:, idx].mean(axis=1)), list(matrix_b[:, idx].mean(axis=1)))
        if r is not None:
            draws.append(r)
    if value is None or not draws:
        return Correlation(value=value, ci_low=None, ci_high=None, draws=len(draws))
    tail = (1 - bootstrap.confidence) / 2
    low, high = np.quantile(np.asarray(draws), [tail, 1 - tail])
    return Correlation(value=value, ci_low=float(low), ci_high=float(high), draws=len(draws))


def rank_agreement(
    setting_a: Mapping[str, Sequence[Episode]],
    setting_b: Mapping[str, Sequence[Episode]],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> RankAgreement:
    """Spearman and Kendall between two settings' model scores (``{model: episodes}`` each),
    over the models and tasks both hold. Raises ValueError when they share no model or task."""
    models = sorted(set(setting_a) & set(setting_b))
    if not models:
        raise ValueError("the two settings share no policy model: nothing to rank")
    k_a, k_b = (
        max(e.max_turns for m in models for e in setting[m]) if models else 1
        for setting in (setting_a, setting_b)
    )
    outcomes = [(_outcomes(setting_a[m], k_a), _outcomes(setting_b[m], k_b)) for m in models]
    tasks = sorted(set.intersection(*(set(a) & set(b) for a, b in outcomes)))
    if not tasks:
        raise ValueError("the two settings' runs share no task: nothing to compare")
    matrix_a = np.asarray([[a[t] for t in tasks] for a, _ in outcomes], dtype=np.float64)
    matrix_b = np.asarray([[b[t] for t in tasks] for _, b in outcomes], dtype=np.float64)
    return RankAgreement(
        models=models,
        scores_a=[float(x) for x in matrix_a.mean(axis=1)],
        scores_b=[float(x) for x in matrix_b.mean(axis=1)],
        tasks=len(tasks),
        k_a=k_a,
        k_b=k_b,
        spearman=_correlation(matrix_a, matrix_b, spearman, bootstrap),
        kendall=_correlation(matrix_a, matrix_b, kendall_tau_b, bootstrap),
        confidence=bootstrap.confidence,
    )
