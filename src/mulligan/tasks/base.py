"""Task, check result, the checker protocol and the suite record shared by every suite; a
task's content digest (:meth:`Task.digest`, :func:`selection_digest`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

TaskCategory = Literal["reasoning", "code_generation", "decision_making"]
"""MINT's task types: an answer to reason out, a program that must pass tests, or a goal to reach
in an environment through tool calls (``tasks/environment.py``)."""

CheckerMode = Literal["mint", "strict"]
"""``mint``: MINT's own criteria, flaws included, so success rates compare with MINT's.
``strict``: stricter or better-founded criteria (exact match, math equivalence, one letter)."""


class Task(BaseModel):
    """An immutable sample: what the policy sees, and what the checker needs to judge it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="unique within the suite, e.g. '12' or 'HumanEval/12'")
    suite: str = Field(description="e.g. 'gsm8k', 'humaneval'")
    category: TaskCategory = Field(
        description="MINT task type: 'reasoning', 'code_generation' or 'decision_making'"
    )
    prompt: str = Field(description="the task text shown to the policy")
    reference: str = Field(description="ground truth: answer text, or test code for code tasks")
    checker: str = Field(description="registry name of the checker that judges answers")
    gold_solution: str = Field(
        description="a solution the checker accepts (what `scripted/reference` proposes)"
    )
    metadata: Mapping[str, Any] = Field(default_factory=dict)
    checklist: tuple[str, ...] = Field(
        default=(),
        description="rubric items a good answer satisfies (RefineBench); judged per proposal by "
        "the judge role and shown by the checklist feedback",
    )
    tools: tuple[str, ...] = Field(
        default=(),
        description="tool functions the sandbox defines and the prompt lists (for environment "
        "tasks, the environment's tools by name)",
    )

    def digest(self) -> str:
        """A digest of what the policy sees and what judges it: every field, metadata included,
        except :data:`LOCATION_METADATA` (where data lies, not what it is). Equal digests mean
        the same sample, wherever its data was read from; a resumed run compares them with its
        finished episodes' (``engine/task_digests.py``)."""
        content = self.model_dump(mode="json")
        content["metadata"] = {
            k: v for k, v in content["metadata"].items() if k not in LOCATION_METADATA
        }
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


LOCATION_METADATA = frozenset({"game_file", "alfworld_data"})
"""Metadata keys that hold paths to a task's data (ALFWorld's game file and data directory), left
out of :meth:`Task.digest`: a data directory moved or mounted elsewhere is the same task."""


def task_digests(tasks: Iterable[Task]) -> dict[tuple[str, str], str]:
    """Each task's :meth:`Task.digest` by its key (suite, id)."""
    return {(t.suite, t.id): t.digest() for t in tasks}


def selection_digest(digests: Mapping[tuple[str, str], str]) -> str:
    """One digest of a whole selection of tasks (their keys and digests, from
    :func:`task_digests`), in any order: a run's manifest keeps it, so an unchanged selection is
    recognised without comparing task by task."""
    lines = sorted(f"{suite}\x00{task_id}\x00{d}" for (suite, task_id), d in digests.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class CheckResult(BaseModel):
    """A checker's judgement of one answer."""

    model_config = ConfigDict(frozen=True)

    correct: bool
    score: float = Field(ge=0.0, le=1.0, description="1.0/0.0, or partial credit (e.g. F1)")
    detail: str = ""


class ProgramResult(BaseModel):
    """Outcome of running a complete program once in the sandbox (used by code checkers)."""

    model_config = ConfigDict(frozen=True)

    ok: bool = Field(description="exited normally with status 0")
    output: str = ""
    timed_out: bool = False
    error: str | None = None


@runtime_checkable
class CodeRunner(Protocol):
    """Runs a whole program in a fresh sandbox process (never in our own process).

    ``output_limit`` (characters) raises the output cap for this program, e.g. for a stream
    of results (:mod:`mulligan.tasks.checkers.calls`); None keeps the sandbox's own.
    ``timeout_s`` is the program's CPU time (so a verdict does not depend on the machine's
    load); the sandbox also stops it after several times as much wall time.
    """

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult: ...


@runtime_checkable
class Checker(Protocol):
    """Judges an answer against a task. Must never eval() model text in our process."""

    name: str

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult: ...


class SuiteLoader(Protocol):
    """Loads a suite's tasks in data order: one group's, or every group's when ``group`` is None.

    ``data_dir`` is where pulled data lies (None: the default); ``checkers`` picks MINT's or the
    strict criteria. Raises ``TaskDataError`` for missing or malformed data.
    """

    def __call__(
        self, group: str | None, data_dir: Path | None, checkers: CheckerMode
    ) -> list[Task]: ...


@dataclass(frozen=True)
class SuiteDefinition:
    """A task suite as the registry (:mod:`mulligan.tasks.suites`) knows it.

    ``groups`` are named subsets (MINT's seven) that ``--tasks`` selects and that are sampled
    separately; a suite without groups is selected by task id. ``default_groups`` are the groups
    a run takes when ``--tasks`` names none (None: all of them; MBPP's suites take their ``test``
    split). ``data_pull`` names the ``mulligan data pull`` dataset that fetches its data, or None
    when nothing needs pulling.
    """

    name: str
    description: str
    load: SuiteLoader
    groups: tuple[str, ...] = ()
    data_pull: str | None = None
    default_groups: tuple[str, ...] | None = None

    def count(self, group: str | None = None, data_dir: Path | None = None) -> int:
        """How many tasks the suite (or one group) holds here; loads them to count."""
        return len(self.load(group, data_dir, "mint"))
