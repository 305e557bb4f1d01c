"""Metrics: pure functions over stored episodes."""

from mulligan.metrics.success import SuccessTable, success_rate_at_k, success_tables

__all__ = ["SuccessTable", "success_rate_at_k", "success_tables"]
