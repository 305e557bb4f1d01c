"""What an export format is: its name, what its records hold, how it is built.

A record format is a function from one task's episodes (a :class:`~mulligan.export.source.
TaskGroup`) to records (JSON-able dicts); the export driver streams task groups through it,
deduplicates, splits by task and writes JSONL or Parquet. A format that writes its own files
(``inspect``: one eval log per run) gives ``write`` instead. The registry is
:mod:`mulligan.export.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.export.source import EpisodeView, RunSource, TaskGroup

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """Settings some formats read."""

    turn_penalty: float = 0.0
    """rollouts: the reward of each turn that does not solve the task is ``-turn_penalty``."""
    max_pairs: int = 4
    """dpo: at most this many pairs per shared context (turn level) or prompt (trajectory)."""
    feedback_kinds: frozenset[str] = frozenset()
    """feedback-model: targets only of these kinds (empty: every kind but ``none``)."""


Builder = Callable[[TaskGroup, FormatOptions], Iterator[Record]]
EpisodesOf = Callable[[RunSource], Iterator[EpisodeView]]
LogWriter = Callable[[Sequence[RunSource], EpisodesOf, Path], list[Path]]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One export format."""

    name: str
    description: str
    fields: str
    """What a record holds, one line for the dataset card."""
    training: bool = True
    """Training data: leaked episodes are excluded by default."""
    build: Builder | None = None
    write: LogWriter | None = None
    """Formats that write their own files: ``write(runs, episodes_of, out_dir)``."""
    extra: dict[str, str] = field(default_factory=dict)
