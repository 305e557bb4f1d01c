"""MATH-500, the 500-problem test subset of MATH from "Let's Verify Step by Step", judged by
LaTeX equivalence (``math_equiv``, math-verify in a worker process).

The data is OpenAI's ``prm800k/math_splits/test.jsonl`` (openai/prm800k, MIT; the repository
keeps it in Git LFS, so the pull reads GitHub's LFS media URL), ``mulligan data pull math500``.
Task ids are MATH's own file names (``test/precalculus/807.json``); subject and level go in the
metadata. MINT's 100 MATH problems stay ``mint/math``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.pinned import Dataset, PinnedFile, locate
from mulligan.tasks.records import read_records

MATH500_SUITE = "math500"
PRM800K_COMMIT = "7ecc794703b2877f63226f2477a49b34f9b25163"

MATH500_TEST = PinnedFile(
    path="math500/test.jsonl",
    url=(
        f"https://media.githubusercontent.com/media/openai/prm800k/{PRM800K_COMMIT}/"
        "prm800k/math_splits/test.jsonl"
    ),
    sha256="35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
    size=446_564,
)

MATH500_DATA = Dataset(
    name="math500",
    description="MATH-500 (openai/prm800k's math_splits/test.jsonl)",
    licence="MIT",
    files=(MATH500_TEST,),
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    problem: StrictStr
    solution: StrictStr
    answer: StrictStr
    subject: StrictStr
    level: StrictInt
    unique_id: StrictStr


def load_math500(data_dir: Path | None = None) -> list[Task]:
    """The 500 problems in file order; :class:`TaskDataError` if the data is missing or bad."""
    path = locate(MATH500_TEST, MATH500_DATA.name, data_dir)
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for line, record in read_records(path, _Record):
        if record.unique_id in seen:
            raise TaskDataError(
                f"{path}, line {line}, field 'unique_id': duplicate {record.unique_id!r} "
                f"(first on line {seen[record.unique_id]})"
            )
        seen[record.unique_id] = line
        tasks.append(
            Task(
                id=record.unique_id,
                suite=MATH500_SUITE,
                category="reasoning",
                prompt=record.problem.strip(),
                reference=record.answer,
                checker="math_equiv",
                gold_solution=record.answer,
                metadata={
                    "benchmark": "math500",
                    "mint_task_type": "reasoning",
                    "subject": record.subject,
                    "level": record.level,
                    "solution": record.solution,
                },
            )
        )
    return tasks


def _load(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_math500(data_dir)  # math_equiv whatever --checkers says: no MINT rule to mirror


MATH500 = SuiteDefinition(
    name=MATH500_SUITE,
    description="MATH-500, LaTeX equivalence via math-verify (MINT's 100: mint/math)",
    load=_load,
    data_pull=MATH500_DATA.name,
)
"""The registry's entry for MATH-500 (see :mod:`mulligan.tasks.suites`)."""
