"""The policy's prompt: MINT's first message (``mint.j2`` + an in-context example) and the lines
the environment adds to observations, in MINT's wording (kept for comparability)."""

from __future__ import annotations

from mulligan.prompts.templates import load_template, template_hash
from mulligan.tasks.base import Task
from mulligan.tasks.environment import ENVIRONMENTS, task_environment
from mulligan.tasks.wikipedia import WIKIPEDIA_TOOL

POLICY_TEMPLATE = "mint.j2"
REPLY_TEMPLATE = "refine.j2"
"""The first message under the ``reply`` answer format (no tools; the reply is the answer)."""

NO_OUTPUT = "[Executed Successfully with No Output]"
WRONG_ACTION = (
    "I don't understand your input.\n"
    "If you want to execute code, please use <execute> YOUR_CODE_HERE </execute>.\n"
    "If you want to give me an answer, please use <solution> YOUR_SOLUTION_HERE </solution>.\n"
    "For example: The answer to the question is <solution> 42 </solution>."
)

EMPTY_REPLY = "Your reply was empty. Reply with your answer to the task, written out in full."
"""The ``reply`` format's answer to an empty reply (the only reply it cannot take as answer)."""

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


def task_text(task: Task, observation: str | None = None) -> str:
    """The task as shown after 'Task:' (suites put any per-suite wording, e.g. MINT's
    'Complete the following code:', into ``task.prompt`` themselves). An environment task's
    text ends with the environment's first observation, stripped as MINT strips it."""
    if observation is None:
        return task.prompt
    return (task.prompt + observation).strip()


def revision_countdown(turns_left: int, proposals_left: int) -> str:
    """The ``reply`` format's count-down line appended to each observation."""
    left = min(turns_left, proposals_left)
    return f"You can revise your answer {left} more time{'s' if left != 1 else ''}."


EXAMPLES = (
    "reasoning",
    "humaneval",
    "mbpp",
    "guess",
    *(f"alfworld/{kind}" for kind in ("put", "clean", "heat", "cool", "examine", "puttwo")),
)


def tool_entries(task: Task) -> list[str]:
    """The prompt's tool list: an environment's tools and ``wikipedia_search`` as MINT describes
    them (signature, description, example), any other tool by its name."""
    kind = ENVIRONMENTS.get(task_environment(task) or "")
    specs = {WIKIPEDIA_TOOL.name: WIKIPEDIA_TOOL}  # stateless tools, as MINT lists them
    specs.update({spec.name: spec for spec in kind.tools} if kind is not None else {})
    return [specs[name].prompt_entry() if name in specs else name for name in task.tools]


def example_name(task: Task) -> str:
    """The in-context example for a task: one per MINT task type, as MINT does."""
    kind = str(task.metadata.get("mint_task_type", ""))
    if kind not in EXAMPLES:
        kind = "humaneval" if task.category == "code_generation" else "reasoning"
    return f"examples/{kind}.txt"


def render_mint_prompt(
    task: Task,
    max_turns: int,
    max_proposals: int,
    *,
    in_context_example: bool = True,
    observation: str | None = None,
) -> tuple[str, str]:
    """Render the first user message. Returns ``(text, template_hash)``, the hash covering the
    template and the example shown. ``observation``: an environment task's first observation
    (from ``Environment.reset``), shown after the task's text."""
    names = [POLICY_TEMPLATE]
    example = ""
    if in_context_example:
        names.append(example_name(task))
        example = load_template(example_name(task)).text.strip()
        if example_name(task).startswith("examples/alfworld/"):
            example += "\n"  # MINT's own examples, shown as MINT shows them: with a final newline
    text = load_template(POLICY_TEMPLATE).render(
        max_turns=max_turns,
        max_proposals=max_proposals,
        tools=tool_entries(task),
        example=example,
        task_text=task_text(task, observation),
    )
    return text, template_hash(*names)


def render_reply_prompt(task: Task, max_turns: int, max_proposals: int) -> tuple[str, str]:
    """Render the first user message under the ``reply`` answer format (no tools, no in-context
    example: MINT's examples teach tags). Returns ``(text, template_hash)``."""
    text = load_template(REPLY_TEMPLATE).render(
        max_turns=max_turns, max_proposals=max_proposals, task_text=task_text(task)
    )
    return text, template_hash(REPLY_TEMPLATE)
