"""The registry of export formats: one module per format, each defining ``FORMAT``.

``mulligan export --format NAME`` looks names up here; add a format with :func:`register_format`
(an :class:`~mulligan.export.base.ExportFormat` with a ``build`` or a ``write``).
"""

from __future__ import annotations

from mulligan.export import (
    dpo,
    feedback_model,
    hindsight,
    inspect_log,
    kto,
    rltf_sd,
    rollouts,
    sft,
)
from mulligan.export.base import ExportFormat
from mulligan.export.source import ExportError

FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat) -> None:
    """Add a format (``mulligan export --format NAME`` then accepts it)."""
    if (fmt.build is None) == (fmt.write is None):
        raise ValueError(f"format {fmt.name!r}: give exactly one of build or write")
    FORMATS[fmt.name] = fmt


def get_format(name: str) -> ExportFormat:
    """The format called ``name``; an unknown name is one error line listing the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        choices = ", ".join(sorted(FORMATS))
        raise ExportError(f"unknown export format {name!r}; choose one of {choices}") from None


for _module in (sft, dpo, kto, rltf_sd, feedback_model, hindsight, rollouts, inspect_log):
    register_format(_module.FORMAT)
