"""Prompt templates: rendering, hashes, and in-context examples that tell the truth."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import mulligan
from mulligan.actions import parse_action
from mulligan.prompts import (
    EXAMPLES,
    NO_OUTPUT,
    countdown,
    load_template,
    model_template_versions,
    render_mint_prompt,
    template_hash,
    template_names,
    template_source,
)
from mulligan.tasks import Task, load_tasks
from mulligan.tasks.environment import ToolSpec
from mulligan.tasks.guess import GuessingGame

_STEP = re.compile(r"<execute>(.*?)</execute>\n\nObservation:\n(.*?)\n\nAssistant:", re.DOTALL)


class _GameTools:
    """The guess example's game (hidden number 15) as its episode's tool host."""

    def __init__(self) -> None:
        self.game = GuessingGame(secret=15)

    @property
    def tool_specs(self) -> tuple[ToolSpec, ...]:
        return tuple(self.game.tools)

    async def call_tool(self, name: str, args: list[object]) -> str:
        return await self.game.step(name, args)


# MINT's own ALFWorld examples are shown verbatim (their observations come from MINT's runs of
# the real games; tests/test_alfworld.py checks the prompts equal MINT's).
@pytest.mark.parametrize("name", [n for n in EXAMPLES if not n.startswith("alfworld/")])
async def test_example_observations_are_what_the_sandbox_prints(
    name: str, sandboxes: object
) -> None:
    """A model imitates its examples: their observations must be real outputs, not invented."""
    text = template_source(f"examples/{name}.txt")
    steps = list(_STEP.finditer(text))
    assert steps, name
    tools = _GameTools() if name == "guess" else None
    if tools is not None:
        await tools.game.reset()
    async with sandboxes.session() as repl:  # type: ignore[attr-defined]
        for step in steps:
            code = parse_action(f"<execute>{step.group(1)}</execute>").content
            cell = await repl.execute(code, tools=tools)
            assert (cell.output or NO_OUTPUT).strip() == step.group(2).strip()


def test_render_states_budget_example_and_task() -> None:
    task = load_tasks("humaneval", None, None, 1)[0]
    text, digest = render_mint_prompt(task, 5, 2)
    assert "You have 5 chances to interact with the environment" in text
    assert "propose a solution 2 times" in text
    assert text.rstrip().endswith(task.prompt.rstrip())
    assert "count_vowels" in text  # the HumanEval-style example
    bare, bare_digest = render_mint_prompt(task, 5, 2, in_context_example=False)
    assert "count_vowels" not in bare and bare_digest != digest
    assert digest == template_hash("mint.j2", "examples/humaneval.txt")


def test_example_follows_task_type() -> None:
    def task(kind: str, category: str) -> Task:
        return Task(
            id="1",
            suite=kind,
            category=category,
            prompt="P",
            reference="r",
            checker="x",
            gold_solution="g",
            metadata={"mint_task_type": kind},
        )

    assert "second_largest" in render_mint_prompt(task("mbpp", "code_generation"), 3, 1)[0]
    assert "garden" in render_mint_prompt(task("reasoning", "reasoning"), 3, 1)[0]


def test_countdown_matches_mint() -> None:
    assert countdown(3, 1) == "You have 3 steps left and 1 chances to propose solution left."
    assert countdown(1, 2).endswith("You should take the last step to propose a solution.")


def test_every_template_has_a_version_header_and_a_hash() -> None:
    names = template_names()
    assert {"mint.j2", "judge.j2", "examples/mbpp.txt", "feedback/critic.j2"} <= set(names)
    for name in names:
        template = load_template(name)
        assert template.version and len(template.hash) == 16, name
        assert not template.source.startswith(template.text), name  # the header is not text


def test_plain_text_examples_are_read_without_their_header() -> None:
    example = load_template("examples/humaneval.txt")
    assert example.text.startswith("Task:")
    with pytest.raises(ValueError, match="plain text"):
        example.render()
    with pytest.raises(FileNotFoundError, match=r"known: feedback/checklist\.j2"):
        load_template("feedback/nope.j2")


def test_manifest_lists_feedback_and_judge_templates_by_file_name() -> None:
    versions = model_template_versions()
    assert {"judge.j2", "user_feedback.j2", "critic.j2"} <= set(versions)
    assert versions["judge.j2"]["hash"] == load_template("judge.j2").hash
    assert versions["critic.j2"] == {
        "version": load_template("feedback/critic.j2").version,
        "hash": load_template("feedback/critic.j2").hash,
    }


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("judge.py", "mulligan.feedback"), ("episode.py", "mulligan.metrics")],
)
def test_loop_modules_do_not_import_downstream_packages(module: str, forbidden: str) -> None:
    source = (Path(mulligan.__file__).parent / module).read_text(encoding="utf-8")
    imported = [
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.startswith(forbidden)], module
