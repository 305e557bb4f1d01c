"""Task, check result and the checker protocol shared by every suite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Task(BaseModel):
    """An immutable sample: what the policy sees, and what the checker needs to judge it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="unique within the suite, e.g. '12' or 'HumanEval/12'")
    suite: str = Field(description="e.g. 'gsm8k', 'humaneval'")
    category: str = Field(description="MINT task type: 'reasoning' or 'code_generation'")
    prompt: str = Field(description="the task text shown to the policy")
    reference: str = Field(description="ground truth: answer text, or test code for code tasks")
    checker: str = Field(description="registry name of the checker that judges answers")
    gold_solution: str = Field(
        description="a solution the checker accepts (what `scripted/reference` proposes)"
    )
    metadata: Mapping[str, Any] = Field(default_factory=dict)
    tools: tuple[str, ...] = Field(
        default=(), description="tool functions pre-imported in the REPL (MINT: wikipedia_search)"
    )


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
    """Runs a whole program in a fresh sandbox process (never in our own process)."""

    async def run_program(self, code: str, timeout_s: float = 10.0) -> ProgramResult: ...


@runtime_checkable
class Checker(Protocol):
    """Judges an answer against a task. Must never eval() model text in our process."""

    name: str

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult: ...
