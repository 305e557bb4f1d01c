"""The export driver: runs in, a dataset directory out (records per split and a dataset card).

:func:`export_runs` resolves the runs, picks the format from the registry, streams task groups
(:func:`~mulligan.export.source.task_groups`) through the format's builder, drops duplicate
records when asked, assigns each task to a split by a seeded hash of its id (never an episode:
all episodes of a task land in one split, so no task leaks from train into test), writes the
records (:mod:`~mulligan.export.writer`) and the dataset card (:mod:`~mulligan.export.card`).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from mulligan.events import FeedbackKind
from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.card import write_card
from mulligan.export.registry import get_format
from mulligan.export.source import (
    EpisodeView,
    ExportError,
    Filters,
    RunSource,
    Tally,
    TaskGroup,
    digest,
    resolve_runs,
    stream_episodes,
    task_groups,
)
from mulligan.export.writer import OutputFormat, RecordSink
from mulligan.store import RunStore

Splits = tuple[tuple[str, float], ...]
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export, how, and where."""

    runs: tuple[Path, ...]
    format: str
    out: Path
    filters: Filters = field(default_factory=Filters)
    options: FormatOptions = field(default_factory=FormatOptions)
    output: OutputFormat = "jsonl"
    splits: Splits = ()
    """``(name, share)`` pairs summing to 1; empty: one file, ``data``."""
    seed: int = 0
    dedupe: bool = False
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class ExportResult:
    files: list[Path]
    card: Path
    tally: Tally
    seconds: float


def parse_splits(text: str) -> Splits:
    """``"train=0.9,test=0.1"`` as pairs; shares must be positive and sum to 1."""
    pairs = []
    for part in text.split(","):
        name, _, share = part.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if not _SPLIT_NAME.match(name.strip()) or value <= 0:
            raise ExportError(f"--split {text!r}: write NAME=SHARE pairs, e.g. train=0.9,test=0.1")
        pairs.append((name.strip(), value))
    if abs(sum(v for _, v in pairs) - 1.0) > 1e-6 or len({n for n, _ in pairs}) < len(pairs):
        raise ExportError(f"--split {text!r}: the shares must sum to 1, each name once")
    return tuple(pairs)


def split_of(suite: str, task_id: str, splits: Splits, seed: int) -> str:
    """The split of a task: a seeded hash of ``suite/task_id`` placed on the cumulative shares."""
    if not splits:
        return "data"
    text = f"mulligan-split/1:{seed}:{suite}/{task_id}".encode()
    point = int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2**64
    total = 0.0
    for name, share in splits:
        total += share
        if point < total:
            return name
    return splits[-1][0]


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a directory for the dataset")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out {out} is not empty; choose a new directory or pass --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ExportError(f"--out {out}: cannot create it ({reason})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ExportError(f"--out {out} is not writable by you; choose another directory")


def _records(
    fmt: ExportFormat, groups: Iterator[TaskGroup], request: ExportRequest, tally: Tally
) -> Iterator[tuple[str, Record]]:
    assert fmt.build is not None
    for group in groups:
        key = group[0].episode.key
        split = split_of(key.suite, key.task_id, request.splits, request.seed)
        seen: set[str] = set()  # duplicates share their task: a set per task suffices
        for record in fmt.build(group, request.options):
            if request.dedupe:
                content = digest({k: v for k, v in record.items() if k != "provenance"})
                if content in seen:
                    tally.dropped["duplicate record (--dedupe)"] += 1
                    continue
                seen.add(content)
            yield split, record


def _write_records(
    fmt: ExportFormat, runs: list[RunSource], request: ExportRequest, exclude: bool, tally: Tally
) -> list[Path]:
    sink = RecordSink(request.out, request.output)
    try:
        groups = task_groups(runs, request.filters, exclude, tally)
        for split, record in _records(fmt, groups, request, tally):
            sink.write(split, record)
            tally.written[split] += 1
    except BaseException:
        sink.abort()
        raise
    return sink.finish()


def _write_logs(
    fmt: ExportFormat, runs: list[RunSource], request: ExportRequest, exclude: bool, tally: Tally
) -> list[Path]:
    assert fmt.write is not None
    with ExitStack() as stack:

        def episodes_of(run: RunSource) -> Iterator[EpisodeView]:
            store = stack.enter_context(RunStore.open_existing(run.run_dir))
            for view in stream_episodes(store, run, request.filters, exclude, tally):
                tally.written["samples"] += 1
                yield view

        return fmt.write(runs, episodes_of, request.out)


def export_runs(request: ExportRequest) -> ExportResult:
    """Export the runs as asked; see the module docstring."""
    started = time.perf_counter()
    fmt = get_format(request.format)
    if fmt.write is not None and (request.splits or request.output != "jsonl"):
        raise ExportError(f"--format {fmt.name} writes one log per run: no --split or --output")
    unknown = sorted(request.filters.feedback_kinds - set(get_args(FeedbackKind)))
    if unknown:
        kinds = ", ".join(get_args(FeedbackKind))
        raise ExportError(
            f"--feedback-kind {unknown[0]!r} is no feedback kind; choose from {kinds}"
        )
    runs = resolve_runs(request.runs)
    _prepare_out(request.out, request.overwrite)
    exclude = request.filters.exclude_leaked
    exclude = fmt.training if exclude is None else exclude
    tally = Tally()
    write = _write_logs if fmt.write is not None else _write_records
    files = write(fmt, runs, request, exclude, tally)
    card = write_card(request, fmt, runs, tally, files, exclude)
    return ExportResult(files, card, tally, time.perf_counter() - started)
