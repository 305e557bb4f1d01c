"""The dataset card written beside every export (``README.md``, Hugging Face's convention).

It says what the records are (format and fields), how many were written per split, what each
filter dropped, which runs they come from (run id, directory, policy and feedback models as
the manifests name them) and the licence of each suite's tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mulligan import __version__
from mulligan.export.base import ExportFormat
from mulligan.export.source import RunSource, Tally
from mulligan.tasks.licences import licence_of

if TYPE_CHECKING:
    from mulligan.export.exporter import ExportRequest


def _filters(request: ExportRequest, exclude_leaked: bool) -> list[str]:
    f = request.filters
    lines = [
        f"- suites: {', '.join(sorted(f.suites)) or 'all'}",
        f"- tasks: {', '.join(sorted(f.tasks)) or 'all'}",
        f"- solved only: {'yes' if f.solved_only else 'no'}",
        f"- feedback kinds: {', '.join(sorted(f.feedback_kinds)) or 'all'}",
        f"- episodes whose feedback leaked the reference: "
        f"{'excluded' if exclude_leaked else 'kept'}",
        f"- episodes with a malformed policy reply: {'excluded' if f.well_formed_only else 'kept'}",
        f"- duplicate records: {'dropped' if request.dedupe else 'kept'}",
    ]
    if request.splits:
        shares = ", ".join(f"{n}={s:g}" for n, s in request.splits)
        lines.append(f"- split by task (never by episode): {shares}, seed {request.seed}")
    return lines


def _model_of(run: RunSource, key: str) -> str:
    manifest = run.manifest
    value = manifest.get("config", {}).get(key) or manifest.get(key)
    return str(value) if value else "-"


def render_card(
    request: ExportRequest,
    fmt: ExportFormat,
    runs: Sequence[RunSource],
    tally: Tally,
    files: Sequence[Path],
    exclude_leaked: bool,
) -> str:
    """The card's markdown."""
    lines = [
        f"# mulligan export: {fmt.name}",
        "",
        f"{fmt.description}. Exported by mulligan {__version__} on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"**Fields.** {fmt.fields}.",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
        f"| episodes read | {tally.episodes_read} |",
        *(f"| dropped: {why} | {n} |" for why, n in sorted(tally.dropped.items())),
        *(f"| episodes kept: {suite} | {n} |" for suite, n in sorted(tally.suites.items())),
        *(f"| records: {split} | {n} |" for split, n in sorted(tally.written.items())),
        "",
        "Files: " + ", ".join(f"`{p.name}`" for p in files) + ".",
        "",
        "## Filters",
        "",
        *_filters(request, exclude_leaked),
        "",
        "## Provenance",
        "",
        "| run | directory | policy model | feedback model |",
        "|---|---|---|---|",
        *(
            f"| {r.run_id} | {r.run_dir} | {_model_of(r, 'model')} | "
            f"{_model_of(r, 'feedback_model')} |"
            for r in runs
        ),
        "",
        "Every record's `provenance` names its run, episode, turn, models, feedback kinds and "
        "sources, whether the feedback saw or leaked the reference, and the template hashes.",
        "",
        "## Licences of the source tasks",
        "",
        *(f"- {suite}: {licence_of(suite)}" for suite in sorted(tally.suites)),
        "",
    ]
    return "\n".join(lines)


def write_card(
    request: ExportRequest,
    fmt: ExportFormat,
    runs: Sequence[RunSource],
    tally: Tally,
    files: Sequence[Path],
    exclude_leaked: bool,
) -> Path:
    path = request.out / "README.md"
    path.write_text(render_card(request, fmt, runs, tally, files, exclude_leaked), "utf-8")
    return path
