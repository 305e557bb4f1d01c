"""A prompt lists a tool only if the sandbox defines it (issue 12, item 6).

Every reasoning prompt used to say that ``wikipedia_search`` was "already imported"; in the
sandbox it raised NameError. For every registered suite, in both checker modes, and every task,
each tool the rendered prompt lists must be callable in a fresh sandbox session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mulligan.prompts.policy import render_mint_prompt
from mulligan.sandbox import SandboxPool
from mulligan.tasks.base import Task
from mulligan.tasks.environment import ENVIRONMENTS, ToolSpec, task_environment
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.suites import SUITES
from mulligan.tasks.wikipedia import WIKIPEDIA_TOOL, offer_tool

_TOOL_HEADER = "Tool function available (already imported in <execute> environment):"
_TOOL_LINE = re.compile(r"^\[\d+\] ([A-Za-z_][A-Za-z0-9_.]*)")


def listed_tools(prompt: str) -> tuple[str, ...]:
    """The tool names a rendered prompt lists (the lines under its tool header)."""
    if _TOOL_HEADER not in prompt:
        return ()
    names: list[str] = []
    # Each entry is "[n] name..." and, for environment tools, its description lines (MINT's
    # format); the list ends where the example or the task begins.
    for line in prompt.split(_TOOL_HEADER, 1)[1].strip("\n").splitlines():
        if line.strip() == "---":
            break
        match = _TOOL_LINE.match(line.strip())
        if match:
            names.append(match.group(1))
    assert names, "a tool header with no tool under it"
    return tuple(names)


class SpecHost:
    """An environment's tool specs as an episode's session gets them (never stepped here)."""

    def __init__(self, specs: Sequence[ToolSpec]) -> None:
        self.tool_specs = specs

    async def call_tool(self, name: str, args: list[Any]) -> str:
        raise AssertionError("the listing test only checks that the tools exist")


def session_tools(task: Task) -> SpecHost | None:
    """The tool host an episode of ``task`` opens its cells with: an environment's tools, and
    ``wikipedia_search`` where the run gave it a backing (``offer_tool``)."""
    kind = ENVIRONMENTS.get(task_environment(task) or "")
    specs = list(kind.tools) if kind is not None else []
    if WIKIPEDIA_TOOL.name in task.tools:
        specs.append(WIKIPEDIA_TOOL)
    return SpecHost(specs) if specs else None


async def undefined_tools(
    pool: SandboxPool, tools: tuple[str, ...], host: SpecHost | None = None
) -> list[str]:
    """The tools that are not callable in a fresh sandbox session, as an episode gets one."""
    async with pool.session() as sandbox:
        missing = []
        for name in tools:
            result = await sandbox.execute(f"print(callable({name}))", tools=host)
            if result.error is not None or result.output.strip() != "True":
                missing.append(f"{name}: {result.error or result.output.strip()}")
        return missing


def _all_tasks(data_dir: Path) -> list[Task]:
    tasks: list[Task] = []
    for suite in SUITES.values():
        for mode in ("mint", "strict"):
            try:
                tasks += suite.load(None, data_dir, mode)
            except TaskDataError:
                if suite.name in ("mint", "humaneval"):
                    raise
                break  # a standard set that is not here: its own tests say so
    return tasks


@pytest.mark.parametrize("wikipedia", [False, True], ids=["no-backing", "wikipedia-backed"])
async def test_every_listed_tool_is_defined_in_the_sandbox(
    mint_dir: Path, sandboxes: SandboxPool, wikipedia: bool
) -> None:
    tasks = _all_tasks(mint_dir.parent)
    # Without a backing no prompt lists wikipedia_search; with one, MINT's reasoning prompts do.
    assert all(WIKIPEDIA_TOOL.name not in t.tools for t in tasks)
    if wikipedia:
        tasks = offer_tool(tasks)
        reasoning = {t.suite for t in tasks if WIKIPEDIA_TOOL.name in t.tools}
        assert reasoning == {"gsm8k", "math", "theoremqa", "mmlu", "hotpotqa"}
    assert {t.suite for t in tasks} >= {"gsm8k", "theoremqa", "hotpotqa", "humaneval", "mbpp"}
    assert {t.suite for t in tasks} >= {"alfworld", "guess"}
    by_tools: dict[tuple[str, ...], Task] = {}
    for task in tasks:
        prompt, _ = render_mint_prompt(task, max_turns=5, max_proposals=2)
        tools = listed_tools(prompt)
        assert set(tools) == set(task.tools), task.id
        by_tools.setdefault(tools, task)
    for tools, task in by_tools.items():
        missing = await undefined_tools(sandboxes, tools, session_tools(task))
        assert missing == [], f"listed by {task.suite}/{task.id} and others"


def _task_with_tools(*tools: str) -> Task:
    return Task(
        id="t",
        suite="s",
        category="reasoning",
        prompt="?",
        reference="1",
        checker="gsm8k",
        gold_solution="1",
        tools=tools,
    )


@pytest.mark.parametrize(
    ("tools", "missing"),
    [(("print", "len"), []), (("wikipedia_search",), ["wikipedia_search"])],
)
async def test_the_check_finds_a_listed_tool_the_sandbox_lacks(
    sandboxes: SandboxPool, tools: tuple[str, ...], missing: list[str]
) -> None:
    # Controls for the test above: builtins are found, MINT's unbacked tool is reported.
    prompt, _ = render_mint_prompt(_task_with_tools(*tools), max_turns=5, max_proposals=2)
    assert listed_tools(prompt) == tools
    found = await undefined_tools(sandboxes, listed_tools(prompt))
    assert [line.split(":")[0] for line in found] == missing
