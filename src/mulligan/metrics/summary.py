"""Every per-run metric at once, each rate with its interval: the report's input.

``summarize_run`` reads the episodes once and computes SR@k (micro, macro over suites and per
suite) for k = 1..K, the SR trend over k, MRR / recall / mean turns to success, recovery,
regression and repeated-answer rates, feedback friction, cost per solved task, and pass@k /
pass^k per turn budget over each task's sampled episodes (epochs or fork branches). The formulas
live in the modules that compute them (``success``, ``turns``, ``dynamics``, ``feedback``,
``cost``). Each ``Estimate`` names its interval's method: Wilson's for proportions of episodes
(SR@k overall and per suite, recall), a bootstrap over episodes for the rest (``stats``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode
from mulligan.metrics.branches import BranchSummary, branch_summary
from mulligan.metrics.cost import CostSummary, cost_per_solved
from mulligan.metrics.dynamics import recovery_rate, regression_rate, repeated_answer_rate
from mulligan.metrics.feedback import feedback_friction
from mulligan.metrics.passk import PassKTable, pass_k_table
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate
from mulligan.metrics.success import (
    TrendFit,
    macro_sr_at_k_estimates,
    sr_at_k_estimates,
    sr_trend,
)
from mulligan.metrics.turns import mean_reciprocal_rank, mean_turns_to_success, recall_at_budget


class SuiteSummary(BaseModel):
    """SR@k of one suite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int
    failed: int
    sr_at_k: dict[str, Estimate]


class RunSummary(BaseModel):
    """All metrics of one run (or any group of episodes). Rates are fractions in [0, 1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episodes: int
    failed: int
    max_k: int
    sr_at_k: dict[str, Estimate]
    macro_sr_at_k: dict[str, Estimate]
    suites: dict[str, SuiteSummary]
    trend: TrendFit | None
    mrr: Estimate
    recall: Estimate
    mean_turns_to_success: Estimate
    recovery_rate: Estimate
    regression_rate: Estimate
    repeated_answer_rate: Estimate
    feedback_friction: Estimate
    cost: CostSummary
    bootstrap: BootstrapConfig
    repeated_sampling: PassKTable | None = None
    """pass@k and pass^k per turn budget over the episodes of each task (``metrics.passk``)."""
    branches: BranchSummary | None = None
    """A fork run's sibling groups and turn-level pairs (``metrics.branches``); else None."""


def _keyed(estimates: dict[int, Estimate]) -> dict[str, Estimate]:
    return {str(k): v for k, v in estimates.items()}


def summarize_run(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> RunSummary:
    """Compute every metric over ``episodes`` (read once; pass ``store.episodes()``)."""
    items = list(episodes)
    max_k = max((e.max_turns for e in items), default=0)
    by_suite: dict[str, list[Episode]] = defaultdict(list)
    for episode in items:
        by_suite[episode.key.suite].append(episode)
    suites = {
        name: SuiteSummary(
            episodes=len(eps),
            failed=sum(e.status == "failed" for e in eps),
            sr_at_k=_keyed(sr_at_k_estimates(eps, max_k, bootstrap)),
        )
        for name, eps in sorted(by_suite.items())
    }
    return RunSummary(
        episodes=len(items),
        failed=sum(e.status == "failed" for e in items),
        max_k=max_k,
        sr_at_k=_keyed(sr_at_k_estimates(items, max_k, bootstrap)),
        macro_sr_at_k=_keyed(macro_sr_at_k_estimates(items, max_k, bootstrap)),
        suites=suites,
        trend=sr_trend(items, max_k),
        mrr=mean_reciprocal_rank(items, None, bootstrap),
        recall=recall_at_budget(items, None, bootstrap),
        mean_turns_to_success=mean_turns_to_success(items, None, bootstrap),
        recovery_rate=recovery_rate(items, bootstrap),
        regression_rate=regression_rate(items, bootstrap),
        repeated_answer_rate=repeated_answer_rate(items, bootstrap),
        feedback_friction=feedback_friction(items, None, bootstrap),
        cost=cost_per_solved(items, bootstrap=bootstrap),
        bootstrap=bootstrap,
        repeated_sampling=pass_k_table(items, None, max_k, bootstrap),
        branches=branch_summary(items),
    )
