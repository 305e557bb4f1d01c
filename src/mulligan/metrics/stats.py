"""Statistics behind every metric: Wilson intervals for proportions, seeded cluster-bootstrap
intervals for ratios and differences, and paired tests.

Every rate mulligan reports is a *ratio of sums over episodes*::

    R = sum_i a_i / sum_i b_i

where episode i contributes a numerator a_i and a denominator b_i (SR@k: a_i = 1[solved by k],
b_i = 1; recovery rate: a_i = recoveries in episode i, b_i = wrong proposals followed by another
proposal in episode i; cost per solved task: a_i = cost of episode i, b_i = 1[solved]). Writing
them all this way lets one estimator serve every metric, and it makes the bootstrap resample
*episodes* (clusters), not the events inside them: events of one episode are not independent.

Confidence intervals of ratios are percentile intervals of the cluster bootstrap: draw n episodes
with replacement B times, recompute R each time (skipping draws whose denominator is 0), and take
the (1-c)/2 and (1+c)/2 quantiles. The generator is numpy's PCG64 seeded by
``BootstrapConfig.seed`` and the draws are made in a fixed order, so the same inputs and seed give
the same interval on every machine.

A *plain proportion* (x successes among n independent episodes: SR@k, recall) gets the Wilson
score interval instead (:func:`wilson_interval`). The percentile bootstrap collapses at the edges:
every draw of 0/21 is 0/21 and every draw of 3/3 is 3/3, so it reports [0, 0] and [1, 1], as if
21 failures proved a success rate of exactly 0. Wilson's interval is exact at neither edge (0/21
gives [0, 0.155]; 3/3 gives [0.44, 1]) and keeps close to its nominal coverage for small n
(Brown, Cai and DasGupta, 2001). A macro average of proportions (the mean of per-suite SR) gets
the MOVER combination of the suites' Wilson intervals (:func:`macro_proportion_estimate`), for
the same reason. A *rate of counted events* (flips among proposal pairs, false praise among
wrong proposals, challenges that made the policy cave: several per episode, so the bootstrap
still resamples episodes) gets the hull of its cluster-bootstrap interval and Wilson's interval
over the pooled counts (:func:`count_rate_estimate`): the bootstrap keeps the episodes'
clustering where it widens the interval, Wilson keeps the edges open where the bootstrap
collapses (0 of 9 flips: [0, 0] from the bootstrap, [0, 0.30] reported). A *difference of two
success rates* gets the hull of its bootstrap interval and Newcombe's (his method 10: Wilson's
intervals combined, for paired outcomes with the phi correction; Newcombe, 1998)
(:func:`proportion_difference`): two runs that agree on every one of 32 tasks no longer print
[0, 0] for their difference. Each :class:`Estimate` names its interval's ``method``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

# Upper bound on the number of indices drawn at once: keeps memory bounded (about 16 MB of int64)
# however many episodes a run has. The chunk size depends only on n, so results are identical
# whatever machine runs them.
_MAX_DRAWS_PER_CHUNK = 2_000_000


class BootstrapConfig(BaseModel):
    """How confidence intervals are computed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_resamples: int = Field(default=2000, ge=1, description="bootstrap draws B")
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0, description="interval coverage c")
    seed: int = Field(default=0, ge=0, description="seed of the PCG64 generator")


DEFAULT_BOOTSTRAP = BootstrapConfig()

IntervalMethod = Literal[
    "wilson",
    "mover-wilson",
    "cluster-bootstrap",
    "cluster-bootstrap+wilson",
    "task-bootstrap",
    "stratified-bootstrap",
    "paired-bootstrap",
    "unpaired-bootstrap",
    "paired-bootstrap+newcombe",
    "unpaired-bootstrap+newcombe",
]
"""How an :class:`Estimate`'s interval was computed: Wilson's score interval (a proportion over
independent episodes), its MOVER combination (a mean of such proportions, e.g. over suites), the
hull of a cluster bootstrap and Wilson's interval (a rate of counted events), or a percentile
bootstrap that resamples episodes (``cluster``), tasks with their per-task values
(``task``: pass@k and pass^k, :mod:`mulligan.metrics.passk`), episodes
within each group (``stratified``, macro averages), task pairs (``paired``) or two samples each on
its own (``unpaired``)."""


class Estimate(BaseModel):
    """A ratio-of-sums estimate with its confidence interval (computed as ``method`` says).

    ``value`` is ``numerator / denominator``; it is None when the denominator is 0 (the rate is
    undefined, e.g. a recovery rate in a run where no proposal was ever wrong). The interval is
    None when it cannot be estimated (no episode with a non-zero denominator).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None
    numerator: float
    denominator: float
    episodes: int = Field(description="episodes (bootstrap clusters) the estimate is over")
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    method: IntervalMethod = "cluster-bootstrap"


class PairedTest(BaseModel):
    """McNemar's exact test on paired binary outcomes (same tasks, two conditions).

    ``a_only``: pairs where only condition A succeeded; ``b_only``: only B. Under H0 (both
    conditions equally likely to succeed) the discordant pairs split Binomial(a_only + b_only, 1/2);
    ``p_value`` is the two-sided exact binomial p-value.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    test: str = "mcnemar-exact"
    pairs: int
    both: int
    a_only: int
    b_only: int
    neither: int
    p_value: float


def _as_array(values: Sequence[float]) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def _quantiles(samples: NDArray[np.float64], confidence: float) -> tuple[float, float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(samples, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _resample_indices(
    rng: np.random.Generator, n: int, n_resamples: int
) -> list[NDArray[np.int64]]:
    """Bootstrap index matrices (rows = draws), chunked to bound memory."""
    rows_per_chunk = max(1, _MAX_DRAWS_PER_CHUNK // max(n, 1))
    chunks = []
    done = 0
    while done < n_resamples:
        rows = min(rows_per_chunk, n_resamples - done)
        chunks.append(rng.integers(0, n, size=(rows, n)))
        done += rows
    return chunks


def _ratio_draws(
    numerators: NDArray[np.float64],
    denominators: NDArray[np.float64],
    rng: np.random.Generator,
    n_resamples: int,
) -> NDArray[np.float64]:
    """B bootstrap replicates of sum(a)/sum(b); NaN where a draw's denominator is 0."""
    out = []
    for idx in _resample_indices(rng, numerators.size, n_resamples):
        num = numerators[idx].sum(axis=1)
        den = denominators[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))
    return np.concatenate(out) if out else np.empty(0)


def ratio_estimate(
    numerators: Sequence[float],
    denominators: Sequence[float],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """R = sum_i a_i / sum_i b_i over episodes i, with a cluster-bootstrap percentile interval.

    ``numerators[i]`` and ``denominators[i]`` are episode i's a_i and b_i (b_i >= 0).
    """
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators must have one entry per episode")
    num = _as_array(numerators)
    den = _as_array(denominators)
    total_num, total_den = float(num.sum()), float(den.sum())
    value = total_num / total_den if total_den > 0 else None
    interval = None
    if value is not None:
        rng = np.random.default_rng(bootstrap.seed)
        interval = _quantiles(
            _ratio_draws(num, den, rng, bootstrap.n_resamples), bootstrap.confidence
        )
    return Estimate(
        value=value,
        numerator=total_num,
        denominator=total_den,
        episodes=len(num),
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=bootstrap.confidence,
    )


def count_rate_estimate(
    numerators: Sequence[float],
    denominators: Sequence[float],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """A rate of counted events, sum_i a_i / sum_i b_i with whole-number 0 <= a_i <= b_i, whose
    interval is the hull of the cluster bootstrap's and Wilson's over the pooled counts (module
    docstring): never [0, 0] at 0 of n or [1, 1] at n of n."""
    estimate = ratio_estimate(numerators, denominators, bootstrap)
    if estimate.value is None or estimate.ci_low is None or estimate.ci_high is None:
        return estimate
    if not all(
        0 <= a <= b and a == int(a) and b == int(b)
        for a, b in zip(numerators, denominators, strict=True)
    ):
        raise ValueError("a count rate needs whole-number counts with 0 <= a_i <= b_i")
    low, high = wilson_interval(estimate.numerator, int(estimate.denominator), bootstrap.confidence)
    return estimate.model_copy(
        update={
            "ci_low": min(low, estimate.ci_low),
            "ci_high": max(high, estimate.ci_high),
            "method": "cluster-bootstrap+wilson",
        }
    )


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion of ``successes`` among ``n`` trials (n >= 1).

    With p = x/n and z the (1+c)/2 normal quantile::

        centre = (p + z^2/2n) / (1 + z^2/n)
        half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)

    and the interval is [centre - half, centre + half]: never outside [0, 1], 0 only at x = 0
    (as the lower bound) and 1 only at x = n (as the upper bound).
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    shrink = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    # Exact at the edges (floating point would leave 1e-17 from 0 or 1).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def proportion_estimate(
    outcomes: Sequence[bool | float], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """The share of independent episodes that succeeded, with Wilson's interval (at
    ``bootstrap.confidence``; nothing is resampled).

    ``outcomes[i]`` is episode i's outcome, True/False or 1.0/0.0; for the mean of other
    per-episode values use :func:`mean_estimate`.
    """
    values = [float(x) for x in outcomes]
    if any(v not in (0.0, 1.0) for v in values):
        raise ValueError("a proportion's outcomes are 0 or 1; use mean_estimate for other values")
    successes, n = sum(values), len(values)
    interval = wilson_interval(successes, n, bootstrap.confidence) if n else None
    return Estimate(
        value=successes / n if n else None,
        numerator=successes,
        denominator=float(n),
        episodes=n,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=bootstrap.confidence,
        method="wilson",
    )


def macro_proportion_estimate(
    groups: Mapping[str, Sequence[bool | float]], confidence: float = 0.95
) -> Estimate:
    """The mean M = (1/G) sum_g p_g of G groups' proportions (empty groups left out), with the
    MOVER interval built from each group's Wilson interval [l_g, u_g] (Zou and Donner, 2008)::

        [M - sqrt(sum_g (p_g - l_g)^2) / G,  M + sqrt(sum_g (u_g - p_g)^2) / G]

    It is Wilson's interval for one group, stays inside [0, 1], and does not collapse to a point
    when every group is at 0 or at 1 (the stratified bootstrap does). ``numerator`` is sum_g p_g
    and ``denominator`` G, as in :func:`macro_estimate`.
    """
    parts = [proportion_estimate(outcomes) for _, outcomes in sorted(groups.items()) if outcomes]
    if not parts:
        return Estimate(
            value=None,
            numerator=0.0,
            denominator=0.0,
            episodes=0,
            confidence=confidence,
            method="mover-wilson",
        )
    rates = [part.numerator / part.denominator for part in parts]
    bounds = [wilson_interval(part.numerator, part.episodes, confidence) for part in parts]
    g = len(parts)
    value = sum(rates) / g
    below = math.sqrt(sum((p - low) ** 2 for p, (low, _) in zip(rates, bounds, strict=True))) / g
    above = math.sqrt(sum((high - p) ** 2 for p, (_, high) in zip(rates, bounds, strict=True))) / g
    return Estimate(
        value=value,
        numerator=float(sum(rates)),
        denominator=float(g),
        episodes=sum(part.episodes for part in parts),
        ci_low=max(0.0, value - below),
        ci_high=min(1.0, value + above),
        confidence=confidence,
        method="mover-wilson",
    )


def mean_estimate(
    values: Sequence[float], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """The mean of per-episode values (a_i = x_i, b_i = 1), with a cluster-bootstrap interval."""
    return ratio_estimate([float(x) for x in values], [1.0] * len(values), bootstrap)


def macro_estimate(
    groups: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """Macro average M = (1/G) sum_g R_g of per-group ratios R_g = sum a / sum b (e.g. suites).

    Groups whose denominator is 0 are left out of the average. The returned ``numerator`` is
    sum_g R_g and ``denominator`` the number of groups averaged. The interval comes from a
    stratified bootstrap: each group's episodes are resampled within the group, so every draw
    keeps the group sizes (suites are fixed by design, not sampled).
    """
    arrays = {
        name: (_as_array(nums), _as_array(dens))
        for name, (nums, dens) in sorted(groups.items())
        if len(nums) > 0
    }
    rates = [float(n.sum() / d.sum()) for n, d in arrays.values() if d.sum() > 0]
    value = sum(rates) / len(rates) if rates else None
    episodes = sum(n.size for n, _ in arrays.values())
    interval = None
    if value is not None:
        rng = np.random.default_rng(bootstrap.seed)
        # Draw group by group in sorted order: deterministic and independent of dict order.
        per_group = np.stack(
            [_ratio_draws(n, d, rng, bootstrap.n_resamples) for n, d in arrays.values()]
        )
        # A draw where some group's denominator came out 0 averages the remaining groups, as
        # the point estimate does; a draw where all did is NaN and dropped by _quantiles.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            macro_draws = np.nanmean(per_group, axis=0)
        interval = _quantiles(macro_draws, bootstrap.confidence)
    return Estimate(
        value=value,
        numerator=float(sum(rates)),
        denominator=float(len(rates)),
        episodes=episodes,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=bootstrap.confidence,
        method="stratified-bootstrap",
    )


def paired_difference(
    a: Sequence[float], b: Sequence[float], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """D = (1/n) sum_i (a_i - b_i) over n paired tasks, with a paired-bootstrap interval.

    The pairs are resampled together, which is what makes the interval paired: task difficulty
    cancels out of each replicate.
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    diff = _as_array(a) - _as_array(b)
    estimate = ratio_estimate(diff.tolist(), [1.0] * diff.size, bootstrap)
    return estimate.model_copy(update={"method": "paired-bootstrap"})


def unpaired_difference(
    a: Sequence[float], b: Sequence[float], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """D = mean(a) - mean(b) for two independent samples, each resampled on its own.

    For runs that share no task; when they do, ``paired_difference`` is the right (and tighter)
    interval. ``numerator``/``denominator`` are not meaningful here and carry D and 1.
    """
    if not a or not b:
        raise ValueError("both samples need at least one value")
    xa, xb = _as_array(a), _as_array(b)
    value = float(xa.mean() - xb.mean())
    rng = np.random.default_rng(bootstrap.seed)
    draws_a = _ratio_draws(xa, np.ones_like(xa), rng, bootstrap.n_resamples)
    draws_b = _ratio_draws(xb, np.ones_like(xb), rng, bootstrap.n_resamples)
    interval = _quantiles(draws_a - draws_b, bootstrap.confidence)
    return Estimate(
        value=value,
        numerator=value,
        denominator=1.0,
        episodes=xa.size + xb.size,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=bootstrap.confidence,
        method="unpaired-bootstrap",
    )


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    p = min(1, 2 * sum_{i=0}^{m} C(n, i) / 2^n), n = a_only + b_only, m = min(a_only, b_only);
    p = 1 when there is no discordant pair.
    """
    if a_only < 0 or b_only < 0:
        raise ValueError("counts must be non-negative")
    n = a_only + b_only
    if n == 0:
        return 1.0
    m = min(a_only, b_only)
    # Exact integer arithmetic; Python's int/int division rounds correctly even for huge n.
    tail = sum(math.comb(n, i) for i in range(m + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_test(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """McNemar's exact test on paired outcomes ``a[i]``, ``b[i]`` of the same task i."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return PairedTest(
        pairs=len(a),
        both=both,
        a_only=a_only,
        b_only=b_only,
        neither=len(a) - both - a_only - b_only,
        p_value=mcnemar_exact(a_only, b_only),
    )


def proportion_difference(
    a: Sequence[bool],
    b: Sequence[bool],
    paired: bool,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """SR(a) - SR(b) of two sets of outcomes (paired: the same tasks, in the same order), with
    the hull of the (paired or unpaired) bootstrap interval and Newcombe's (module docstring)."""
    xa, xb = [float(x) for x in a], [float(x) for x in b]
    boot = (
        paired_difference(xa, xb, bootstrap) if paired else unpaired_difference(xa, xb, bootstrap)
    )
    low, high = _newcombe(a, b, paired, bootstrap.confidence)
    return boot.model_copy(
        update={
            "ci_low": low if boot.ci_low is None else min(low, boot.ci_low),
            "ci_high": high if boot.ci_high is None else max(high, boot.ci_high),
            "method": f"{'paired' if paired else 'unpaired'}-bootstrap+newcombe",
        }
    )


def _newcombe(
    a: Sequence[bool], b: Sequence[bool], paired: bool, confidence: float
) -> tuple[float, float]:
    """Newcombe's interval for p_a - p_b (method 10 of his 1998 papers: MOVER on Wilson's
    intervals; for paired data the correlation phi of the 2x2 table enters)."""
    pa, pb = sum(a) / len(a), sum(b) / len(b)
    la, ua = wilson_interval(sum(a), len(a), confidence)
    lb, ub = wilson_interval(sum(b), len(b), confidence)
    phi = 0.0
    if paired:
        both = sum(x and y for x, y in zip(a, b, strict=True))
        a_only = sum(x and not y for x, y in zip(a, b, strict=True))
        b_only = sum(y and not x for x, y in zip(a, b, strict=True))
        neither = len(a) - both - a_only - b_only
        margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
        phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins else 0.0
    below = (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2
    above = (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2
    delta = pa - pb
    return max(-1.0, delta - math.sqrt(max(below, 0.0))), min(
        1.0, delta + math.sqrt(max(above, 0.0))
    )
