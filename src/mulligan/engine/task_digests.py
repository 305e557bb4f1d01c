"""The resume check on tasks: a resumed run refuses to go on when a finished episode's task has
changed since it ran.

The config hash names where tasks come from (``--tasks file:PATH``, a data directory, a dataset
name), not what they hold, so a task file edited between two invocations, or data pulled again
with other contents, would otherwise mix episodes of two task sets in one run. Each stored
episode keeps the digest of the task it ran on (``Episode.task_digest``, stamped by the runner,
:meth:`~mulligan.tasks.base.Task.digest`), and the manifest keeps one digest of the whole
selection (``tasks_digest``, :func:`~mulligan.tasks.base.selection_digest`). On resume:

- the same selection digest as the manifest's: nothing changed since the last invocation, whose
  own start checked every episode finished before it; nothing to read (the common case);
- otherwise (a raised ``--limit``, a changed file): every finished episode's stored digest is
  compared with its task's now, from the store's index-free scan of one small column per
  episode. Episodes whose task changed or is no longer selected make it refuse, in one line
  naming them, with the fix (a new ``--out``). Episodes stored before digests existed cannot
  be checked and are let through.

So the manifest stays one line however many tasks a run has, and the per-task check costs a
scan only when the selection changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mulligan.config import ConfigError
from mulligan.store import RunStore
from mulligan.tasks import Task
from mulligan.tasks.base import selection_digest, task_digests

MANIFEST_KEY = "tasks_digest"
_SHOWN = 5  # changed tasks named in the error


class TasksChangedError(ConfigError):
    """A resumed run's finished episodes ran on tasks that are not the same now."""


def changed_tasks(
    store: RunStore, current: Mapping[tuple[str, str], str]
) -> tuple[list[str], list[str]]:
    """(tasks whose content changed, tasks no longer selected), as ``suite/id``, among those
    with a finished episode that recorded its task's digest (``current``: the selected tasks'
    digests now, :func:`~mulligan.tasks.base.task_digests`)."""
    changed: set[str] = set()
    gone: set[str] = set()
    for suite, task_id, digest in store.finished_task_digests():
        if digest is None:  # stored before task digests: nothing to compare
            continue
        now = current.get((suite, task_id))
        if now is None:
            gone.add(f"{suite}/{task_id}")
        elif now != digest:
            changed.add(f"{suite}/{task_id}")
    return sorted(changed), sorted(gone)


def check_resumed_tasks(
    store: RunStore, manifest: dict[str, Any], tasks: Sequence[Task], out: Path | None
) -> str:
    """The selection digest of ``tasks`` (for the manifest's ``tasks_digest``); raises
    :class:`TasksChangedError` when a finished episode of the stored run (``manifest``: its
    manifest, empty for a new run) ran on a task that changed."""
    current = task_digests(tasks)
    digest = selection_digest(current)
    if not manifest or manifest.get(MANIFEST_KEY) == digest:
        return digest
    changed, gone = changed_tasks(store, current)
    if changed or gone:
        raise TasksChangedError(_message(changed, gone, out))
    return digest


def _message(changed: list[str], gone: list[str], out: Path | None) -> str:
    parts = []
    for label, keys in (("changed", changed), ("no longer among the tasks", gone)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            parts.append(f"{len(keys)} {label} ({', '.join(keys[:_SHOWN])}{more})")
    return (
        f"{out}: cannot resume: tasks with finished episodes differ from when they ran: "
        f"{'; '.join(parts)}; the run would mix two task sets. Start a new run with another "
        "--out (or restore the tasks as they were)"
    )
