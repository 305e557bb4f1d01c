"""Environment tasks: a task whose state the model changes through tool calls.

A single-prompt task is judged on the answer it proposes; an environment task holds state (a
game, a household) that the model changes by calling tool functions from ``<execute>`` cells,
and it is solved when the environment says so. The pieces:

- :class:`ToolSpec`: one tool function as the prompt lists it and the sandbox defines it;
- :class:`Environment`: one live episode's state, outside the sandbox: ``reset`` gives the
  first observation, ``step(tool, args)`` acts and returns the observation, ``won`` is the
  success signal (only the environment sets it: model code can ask for actions, never for a
  verdict);
- :class:`EnvironmentKind` and the registry (:data:`ENVIRONMENTS`, :func:`register_environment`,
  :func:`open_environment`): how a task's ``environment`` name becomes a live environment;
- :class:`ToolBudget`: the bound on tool calls per cell and per episode.

Tool calls cross the sandbox as messages (see ``sandbox/_worker.py``): the worker's stub sends
the call, the parent steps the environment and answers with the observation text.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mulligan.tasks.base import CheckResult, CodeRunner, Task

ENVIRONMENT_CHECKER = "environment"
"""The checker name of environment tasks: a proposal is judged by the environment's success
signal (MINT: any step so far that won), not by the proposal's text."""


class ToolCallError(Exception):
    """A tool call the environment refuses (bad arguments, budget used up); the message is what
    the model's cell sees, raised there as ``ToolError``."""


class EnvironmentFailure(Exception):
    """The environment itself failed (its process died, a step timed out): ends the episode as
    failed, like any other infrastructure error."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool function: its name and parameters (all ``str`` unless ``types`` says otherwise),
    what it does and an example call, rendered for the prompt as MINT does
    (:meth:`prompt_entry`)."""

    name: str
    params: tuple[str, ...]
    description: str
    example: str
    types: tuple[str, ...] = ()
    returns: str = "str"

    def __post_init__(self) -> None:
        for word in (self.name, *self.params):
            if not word.isidentifier() or keyword.iskeyword(word):
                raise ValueError(f"tool {self.name!r}: {word!r} is not a Python identifier")
        if self.types and len(self.types) != len(self.params):
            raise ValueError(f"tool {self.name!r}: one type per parameter")

    @property
    def signature(self) -> str:
        types = self.types or ("str",) * len(self.params)
        args = ", ".join(f"{p}: {t}" for p, t in zip(self.params, types, strict=True))
        return f"{self.name}({args}) -> {self.returns}"

    def prompt_entry(self) -> str:
        """The text after ``[n] `` in the prompt's tool list (MINT's ``get_toolset_description``
        entry: signature, description, example, then a blank line)."""
        example = f"For example: {self.example}\n" if self.example else ""
        return f"{self.signature}\n{self.description}\n{example}"

    def wire(self) -> dict[str, Any]:
        """What the sandbox worker needs to define the stub."""
        return {"name": self.name, "params": list(self.params), "doc": self.description}


class TaskTool(Protocol):
    """A stateless tool a single-prompt task's cells may call (MINT's ``wikipedia_search``):
    answered outside the sandbox, through the same message channel as environment tools."""

    @property
    def spec(self) -> ToolSpec: ...

    async def call(self, args: Sequence[Any]) -> str:
        """The tool's answer; raises :class:`ToolCallError` for a call it refuses."""
        ...


class EnvironmentChecker:
    """The checker environment tasks name. The episode loop judges their proposals by the
    environment's success signal (it holds the live environment); an answer text alone can
    never be judged, so calling this is a programming error, said loudly."""

    name = ENVIRONMENT_CHECKER

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult:
        raise TypeError(
            f"task {task.suite}/{task.id} is an environment task: only its environment's "
            "success signal judges it (in the episode loop), never an answer text"
        )


@runtime_checkable
class Environment(Protocol):
    """One episode's environment, living in mulligan's process (or a child it owns)."""

    @property
    def tools(self) -> Sequence[ToolSpec]: ...

    @property
    def won(self) -> bool:
        """The success signal: True once any step has reached the goal."""
        ...

    async def reset(self) -> str:
        """Start the episode; returns the first observation."""
        ...

    async def step(self, tool: str, args: Sequence[Any]) -> str:
        """Call one tool; returns its observation. Raises :class:`ToolCallError` for a call the
        model got wrong (unknown tool, wrong arguments) and :class:`EnvironmentFailure` when the
        environment itself fails."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EnvironmentKind:
    """A registered kind of environment: ``open(task)`` builds (but does not reset) one."""

    name: str
    description: str
    open: Callable[[Task], Environment]
    tools: Sequence[ToolSpec] = ()


ENVIRONMENTS: dict[str, EnvironmentKind] = {}
"""Every registered environment kind by name (suites register theirs when imported)."""


def register_environment(kind: EnvironmentKind, *, replace: bool = False) -> None:
    """Add an environment kind; ``ValueError`` if the name is taken (unless ``replace``)."""
    if kind.name in ENVIRONMENTS and not replace:
        raise ValueError(f"an environment named {kind.name!r} is already registered")
    ENVIRONMENTS[kind.name] = kind


def task_environment(task: Task) -> str | None:
    """The environment a task runs in (``metadata["environment"]``), or None."""
    name = task.metadata.get("environment")
    return str(name) if name else None


def open_environment(task: Task) -> Environment:
    """A new environment for ``task``; ``KeyError`` naming the registered kinds otherwise."""
    name = task_environment(task)
    if name is None or name not in ENVIRONMENTS:
        raise KeyError(
            f"task {task.suite}/{task.id} names environment {name!r}; "
            f"registered: {', '.join(ENVIRONMENTS) or 'none'}"
        )
    return ENVIRONMENTS[name].open(task)


@dataclass(slots=True)
class ToolBudget:
    """Bounds tool calls: at most ``per_cell`` in one cell and ``per_episode`` in all."""

    per_cell: int = 200
    per_episode: int = 1000
    used: int = 0
    used_in_cell: int = field(default=0)

    def new_cell(self) -> None:
        self.used_in_cell = 0

    def take(self, name: str) -> None:
        """Counts one call, or raises :class:`ToolCallError` saying which bound it hit."""
        if self.used >= self.per_episode:
            raise ToolCallError(
                f"{name}() was not run: this episode's {self.per_episode} tool calls are used up"
            )
        if self.used_in_cell >= self.per_cell:
            raise ToolCallError(
                f"{name}() was not run: at most {self.per_cell} tool calls per cell"
            )
        self.used += 1
        self.used_in_cell += 1
