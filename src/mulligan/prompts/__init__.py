"""Versioned prompt templates (Jinja2 files beside this module) and their content hashes."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

import jinja2

from mulligan.tasks.base import Task

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mulligan", "prompts"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,  # plain-text prompts, never HTML
)

# Lines the environment adds to every observation (MINT's wording, kept for comparability).
NO_OUTPUT = "[Executed Successfully with No Output]"
WRONG_ACTION = (
    "I don't understand your input.\n"
    "If you want to execute code, please use <execute> YOUR_CODE_HERE </execute>.\n"
    "If you want to give me an answer, please use <solution> YOUR_SOLUTION_HERE </solution>.\n"
    "For example: The answer to the question is <solution> 42 </solution>."
)

REPEATED_ANSWER = (
    "You already proposed this answer (proposal {proposal}) and it was not accepted. "
    "This attempt does not count as a proposal; propose a different answer."
)


def countdown(turns_left: int, proposals_left: int) -> str:
    """MINT's count-down line appended to each observation."""
    line = (
        f"You have {turns_left} steps left and {proposals_left} chances to propose solution left."
    )
    if turns_left == 1:
        line += "\nYou should take the last step to propose a solution."
    return line


@cache
def template_source(name: str) -> str:
    """The raw text of a template file (e.g. ``mint.j2``) or in-context example."""
    return resources.files("mulligan.prompts").joinpath(name).read_text(encoding="utf-8")


def template_hash(*names: str) -> str:
    """First 16 hex digits of the sha256 of the named files' contents, in order."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(template_source(name).encode())
    return digest.hexdigest()[:16]


def task_text(task: Task) -> str:
    """The task as shown after 'Task:' (suites put any per-suite wording, e.g. MINT's
    'Complete the following code:', into ``task.prompt`` themselves)."""
    return task.prompt


EXAMPLES = ("reasoning", "humaneval", "mbpp")


def example_name(task: Task) -> str:
    """The in-context example for a task: one per MINT task type, as MINT does."""
    kind = str(task.metadata.get("mint_task_type", ""))
    if kind not in EXAMPLES:
        kind = "humaneval" if task.category == "code_generation" else "reasoning"
    return f"examples/{kind}.txt"


def render_mint_prompt(
    task: Task, max_turns: int, max_proposals: int, *, in_context_example: bool = True
) -> tuple[str, str]:
    """Render the first user message. Returns ``(text, template_hash)``."""
    names = ["mint.j2"]
    example = ""
    if in_context_example:
        names.append(example_name(task))
        example = template_source(example_name(task)).strip()
    text = _ENV.get_template("mint.j2").render(
        max_turns=max_turns,
        max_proposals=max_proposals,
        tools=list(task.tools),
        example=example,
        task_text=task_text(task),
    )
    return text, template_hash(*names)
