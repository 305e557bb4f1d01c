"""Prompt templates: rendering, hashes, and in-context examples that tell the truth."""

from __future__ import annotations

import re

import pytest

from mulligan.actions import parse_action
from mulligan.prompts import (
    EXAMPLES,
    NO_OUTPUT,
    countdown,
    render_mint_prompt,
    template_hash,
    template_source,
)
from mulligan.tasks import Task, load_tasks

_STEP = re.compile(r"<execute>(.*?)</execute>\n\nObservation:\n(.*?)\n\nAssistant:", re.DOTALL)


@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_observations_are_what_the_sandbox_prints(
    name: str, sandboxes: object
) -> None:
    """A model imitates its examples: their observations must be real outputs, not invented."""
    text = template_source(f"examples/{name}.txt")
    steps = list(_STEP.finditer(text))
    assert steps, name
    async with sandboxes.session() as repl:  # type: ignore[attr-defined]
        for step in steps:
            code = parse_action(f"<execute>{step.group(1)}</execute>").content
            cell = await repl.execute(code)
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
