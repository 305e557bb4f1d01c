"""Per-task checker options: what a task file may set for its checker (``checker_options``).

Options travel on the task (``task.metadata["checker_options"]``), so one registered checker
serves tasks with different settings; :data:`CHECKER_OPTIONS` declares, per checker, the options
it reads, and :func:`validate_checker_options` checks a task file's against them when it is
loaded, so a typo is an error on that line rather than an option silently ignored. Checkers read
theirs with :func:`options_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToleranceOptions(_Options):
    """Numeric comparison: the relative tolerance between answer and reference."""

    rel_tol: float = Field(default=1e-6, ge=0.0, le=1.0)


class CodeOptions(_Options):
    """Code checkers: the wall-time limit for running the proposal and its tests."""

    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)


CHECKER_OPTIONS: dict[str, type[_Options]] = {
    "number": ToleranceOptions,
    "math_equiv": ToleranceOptions,
    "python_tests": CodeOptions,
    "mbpp": CodeOptions,
    "humaneval": CodeOptions,
    "humaneval-stub": CodeOptions,
}
"""The options each checker reads; a checker not listed takes none."""

OptionsT = TypeVar("OptionsT", bound=_Options)


def validate_checker_options(checker: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against what ``checker`` reads, as plain JSON values.

    Raises ``ValueError`` naming the unknown option or the bad value.
    """
    if not options:
        return {}
    model = CHECKER_OPTIONS.get(checker)
    if model is None:
        raise ValueError(f"checker {checker!r} takes no options")
    return model.model_validate(dict(options)).model_dump(exclude_unset=True)


def options_of(task_metadata: Mapping[str, Any], model: type[OptionsT]) -> OptionsT:
    """The options a task sets for its checker (the defaults where it sets none)."""
    raw = task_metadata.get("checker_options") if hasattr(task_metadata, "get") else None
    return model.model_validate(dict(raw)) if isinstance(raw, Mapping) else model()
