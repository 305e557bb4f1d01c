"""``guess``: a tiny pure-Python environment suite, a number-guessing game played through a tool.

It exists so the environment protocol (``tasks/environment.py``) can be tested and tried
without ALFWorld's data or packages: each task hides a whole number in 1..100 (derived from the
task id, so it is the same on every run), the model calls ``guess(number)`` from ``<execute>``
cells and is told "higher" or "lower"; the game is won when it names the number and over after
:data:`MAX_GUESSES` guesses. The number lives only in the parent (this module), never in the
sandbox; ``gold_solution`` (what ``scripted/reference`` runs) is the one call that wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.environment import (
    ENVIRONMENT_CHECKER,
    EnvironmentKind,
    ToolCallError,
    ToolSpec,
    register_environment,
)

LOW, HIGH = 1, 100
MAX_GUESSES = 10
TASK_COUNT = 20

GUESS_TOOL = ToolSpec(
    name="guess",
    params=("number",),
    types=("int",),
    description="Guess the hidden number. It will tell you whether it is higher or lower.",
    example="guess(50)",
)
PROMPT = "Find the hidden number by calling guess(number).\n"


def secret_of(task_id: str) -> int:
    """The hidden number of a task: a hash of its id, so every run agrees."""
    digest = hashlib.sha256(f"mulligan-guess/{task_id}".encode()).digest()
    return LOW + int.from_bytes(digest[:4], "big") % (HIGH - LOW + 1)


@dataclass
class GuessingGame:
    """One game: the hidden number and the guesses so far (the environment's whole state)."""

    secret: int
    guesses: int = 0
    found: bool = False

    @property
    def tools(self) -> Sequence[ToolSpec]:
        return (GUESS_TOOL,)

    @property
    def won(self) -> bool:
        return self.found

    async def reset(self) -> str:
        self.guesses, self.found = 0, False
        return (
            f"I am thinking of a whole number between {LOW} and {HIGH}. "
            f"You have {MAX_GUESSES} guesses."
        )

    async def step(self, tool: str, args: Sequence[Any]) -> str:
        if tool != "guess" or len(args) != 1:
            raise ToolCallError("guess(number) takes exactly one whole number")
        value = args[0]
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise ToolCallError(f"guess(number) takes a whole number, not {value!r}")
        if self.found or self.guesses >= MAX_GUESSES:
            return "The game is over."
        self.guesses += 1
        number = int(value)
        if number == self.secret:
            self.found = True
            return f"Correct! The number is {number}."
        left = MAX_GUESSES - self.guesses
        direction = "higher" if self.secret > number else "lower"
        return f"The number is {direction} than {number}. {left} guesses left."

    async def aclose(self) -> None:
        return None


def _open(task: Task) -> GuessingGame:
    return GuessingGame(secret=secret_of(task.id))


GUESS_ENVIRONMENT = EnvironmentKind(
    name="guess",
    description="a number-guessing game (pure Python, for tests and demos)",
    open=_open,
    tools=(GUESS_TOOL,),
)
register_environment(GUESS_ENVIRONMENT)


def load_guess(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    """:data:`TASK_COUNT` games; needs no data."""
    tasks = []
    for number in range(TASK_COUNT):
        task_id = str(number)
        secret = secret_of(task_id)
        tasks.append(
            Task(
                id=task_id,
                suite="guess",
                category="decision_making",
                prompt=PROMPT,
                reference=str(secret),
                checker=ENVIRONMENT_CHECKER,
                gold_solution=f"print(guess({secret}))",
                metadata={"environment": "guess", "mint_task_type": "guess"},
                tools=(GUESS_TOOL.name,),
            )
        )
    return tasks


GUESS = SuiteDefinition(
    name="guess",
    description="a number-guessing game played through a tool (environment protocol demo)",
    load=load_guess,
)
