"""Training data from runs: ``mulligan export`` in SFT, DPO, KTO, RLTF, feedback-model,
hindsight, rollout and Inspect forms, streamed from the store with provenance on every record.

Modules: :mod:`~mulligan.export.source` (reading runs, filters, provenance),
:mod:`~mulligan.export.base` and :mod:`~mulligan.export.registry` (the formats, one module
each), :mod:`~mulligan.export.writer` (JSONL / Parquet), :mod:`~mulligan.export.card` (the
dataset card), :mod:`~mulligan.export.exporter` (the driver).
"""

from mulligan.export.base import ExportFormat, FormatOptions
from mulligan.export.exporter import (
    ExportRequest,
    ExportResult,
    export_runs,
    parse_splits,
    split_of,
)
from mulligan.export.registry import FORMATS, get_format, register_format
from mulligan.export.source import ExportError, Filters

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "ExportRequest",
    "ExportResult",
    "Filters",
    "FormatOptions",
    "export_runs",
    "get_format",
    "parse_splits",
    "register_format",
    "split_of",
]
