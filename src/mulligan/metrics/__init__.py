"""Metrics: pure functions over stored episodes, each rate with a seeded bootstrap interval."""

from mulligan.metrics.compare import (
    ProviderValue,
    RunComparison,
    compare_runs,
    delta_feedback,
    feedback_provider_value,
)
from mulligan.metrics.cost import CostSummary, CostTotals, cost_per_solved
from mulligan.metrics.dynamics import (
    feedback_friction,
    proposals,
    recovery_rate,
    regression_rate,
    repeated_answer_rate,
)
from mulligan.metrics.runs import find_runs
from mulligan.metrics.stats import (
    DEFAULT_BOOTSTRAP,
    BootstrapConfig,
    Estimate,
    PairedTest,
    macro_estimate,
    mcnemar_exact,
    mcnemar_test,
    paired_difference,
    proportion_estimate,
    ratio_estimate,
    unpaired_difference,
)
from mulligan.metrics.success import (
    SuccessTable,
    TrendFit,
    linear_trend,
    macro_sr_at_k_estimates,
    sr_at_k_curve,
    sr_at_k_estimates,
    sr_trend,
    success_rate_at_k,
    success_tables,
)
from mulligan.metrics.summary import RunSummary, SuiteSummary, summarize_run
from mulligan.metrics.turns import mean_reciprocal_rank, mean_turns_to_success, recall_at_budget

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "BootstrapConfig",
    "CostSummary",
    "CostTotals",
    "Estimate",
    "PairedTest",
    "ProviderValue",
    "RunComparison",
    "RunSummary",
    "SuccessTable",
    "SuiteSummary",
    "TrendFit",
    "compare_runs",
    "cost_per_solved",
    "delta_feedback",
    "feedback_friction",
    "feedback_provider_value",
    "find_runs",
    "linear_trend",
    "macro_estimate",
    "macro_sr_at_k_estimates",
    "mcnemar_exact",
    "mcnemar_test",
    "mean_reciprocal_rank",
    "mean_turns_to_success",
    "paired_difference",
    "proportion_estimate",
    "proposals",
    "ratio_estimate",
    "recall_at_budget",
    "recovery_rate",
    "regression_rate",
    "repeated_answer_rate",
    "sr_at_k_curve",
    "sr_at_k_estimates",
    "sr_trend",
    "success_rate_at_k",
    "success_tables",
    "summarize_run",
    "unpaired_difference",
]
