"""Success rate at k turns (SR@k) per suite and overall, and its trend over k, from stored episodes.

SR@k = (1/N) * sum_i 1[episode i has a correct proposal at a turn <= k], over N episodes.
"Overall" is the micro-average over all episodes (MINT's convention); "macro" averages the
per-suite rates. Failed episodes (errors) count as unsolved: they are attempts that produced
no correct answer, and dropping them would flatter a flaky backend.

The trend ("improvement per turn" in MINT) is the ordinary least-squares line through the points
(k, 100 * SR@k), k = 1..K: slope b1 = sum_k (k - k_bar)(y_k - y_bar) / sum_k (k - k_bar)^2 in
percentage points per turn, and r^2 = 1 - SS_res / SS_tot. MINT fits the same model
(statsmodels ``ols('y ~ x')`` on the micro-averaged SR in percent against k, one run per k).

Intervals: SR@k overall and per suite is a proportion of independent episodes, with Wilson's
interval (right at 0/n and n/n, where a percentile bootstrap collapses to a point); macro SR@k is
a mean of suite rates, with the MOVER combination of their Wilson intervals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode
from mulligan.metrics.stats import (
    DEFAULT_BOOTSTRAP,
    BootstrapConfig,
    Estimate,
    macro_proportion_estimate,
    proportion_estimate,
)


def success_rate_at_k(episodes: Iterable[Episode], k: int) -> float:
    """Fraction of ``episodes`` solved within ``k`` turns (0.0 for no episodes)."""
    items = list(episodes)
    if not items:
        return 0.0
    return sum(e.success_at(k) for e in items) / len(items)


class TrendFit(BaseModel):
    """An ordinary least-squares line y = intercept + slope * x through a few points.

    ``rsquared`` is None when all y are equal (SS_tot = 0: r^2 is undefined, not 1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    slope: float
    intercept: float
    rsquared: float | None
    points: int


def linear_trend(points: Mapping[int, float]) -> TrendFit:
    """OLS fit of y on x for ``{x: y}``; needs at least two distinct x.

    slope = sum (x - x_bar)(y - y_bar) / sum (x - x_bar)^2, intercept = y_bar - slope * x_bar,
    r^2 = 1 - sum (y - y_hat)^2 / sum (y - y_bar)^2.
    """
    if len(points) < 2:
        raise ValueError(f"a trend needs at least two points, got {len(points)}")
    xs = [float(x) for x in points]
    ys = [float(points[x]) for x in points]
    x_bar = sum(xs) / len(xs)
    y_bar = sum(ys) / len(ys)
    sxx = sum((x - x_bar) ** 2 for x in xs)
    sxy = sum((x - x_bar) * (y - y_bar) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = y_bar - slope * x_bar
    ss_tot = sum((y - y_bar) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    rsquared = 1.0 - ss_res / ss_tot if ss_tot > 0 else None
    return TrendFit(slope=slope, intercept=intercept, rsquared=rsquared, points=len(xs))


def _max_k(episodes: list[Episode], max_k: int | None) -> int:
    return max_k if max_k is not None else max((e.max_turns for e in episodes), default=0)


def sr_at_k_curve(episodes: Iterable[Episode], max_k: int | None = None) -> dict[int, float]:
    """``{k: SR@k}`` (fractions) for k = 1..K, K = ``max_k`` or the largest turn budget."""
    items = list(episodes)
    return {k: success_rate_at_k(items, k) for k in range(1, _max_k(items, max_k) + 1)}


def sr_trend(episodes: Iterable[Episode], max_k: int | None = None) -> TrendFit | None:
    """MINT's improvement per turn: OLS of 100 * SR@k on k = 1..K from one run.

    Returns None when K < 2 (one point has no slope). The slope is in percentage points per turn.
    """
    curve = sr_at_k_curve(episodes, max_k)
    if len(curve) < 2:
        return None
    return linear_trend({k: 100.0 * sr for k, sr in curve.items()})


def sr_at_k_estimates(
    episodes: Iterable[Episode],
    max_k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> dict[int, Estimate]:
    """Micro SR@k for k = 1..K, each a proportion of episodes with Wilson's interval."""
    items = list(episodes)
    return {
        k: proportion_estimate([e.success_at(k) for e in items], bootstrap)
        for k in range(1, _max_k(items, max_k) + 1)
    }


def macro_sr_at_k_estimates(
    episodes: Iterable[Episode],
    max_k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> dict[int, Estimate]:
    """Macro SR@k = (1/S) sum_s SR_s@k over suites s, with the MOVER combination of the suites'
    Wilson intervals (see :func:`~mulligan.metrics.stats.macro_proportion_estimate`)."""
    items = list(episodes)
    by_suite: dict[str, list[Episode]] = defaultdict(list)
    for episode in items:
        by_suite[episode.key.suite].append(episode)
    out = {}
    for k in range(1, _max_k(items, max_k) + 1):
        groups = {suite: [e.success_at(k) for e in eps] for suite, eps in by_suite.items()}
        out[k] = macro_proportion_estimate(groups, bootstrap.confidence)
    return out
