"""GSM8K's full test split (1,319 grade-school maths problems), judged by the strict ``number``
checker.

The data is OpenAI's ``grade_school_math/data/test.jsonl`` (openai/grade-school-math, MIT),
``mulligan data pull gsm8k``. Each record's ``answer`` is a worked solution whose last line is
``#### N``; the reference is ``N`` (commas kept: the checker reads "1,000" as 1000). Task ids are
the 0-based line numbers. MINT's 48-task subset stays ``mint/gsm8k``; this suite is
``gsm8k-test``, so the name ``gsm8k`` keeps meaning MINT's group.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictStr

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.pinned import Dataset, PinnedFile, locate
from mulligan.tasks.records import read_records

GSM8K_SUITE = "gsm8k-test"
GSM8K_COMMIT = "3101c7d5072418e28b9008a6636bde82a006892c"

GSM8K_TEST = PinnedFile(
    path="gsm8k/test.jsonl",
    url=(
        f"https://raw.githubusercontent.com/openai/grade-school-math/{GSM8K_COMMIT}/"
        "grade_school_math/data/test.jsonl"
    ),
    sha256="3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    size=749_738,
)

GSM8K_DATA = Dataset(
    name="gsm8k",
    description="GSM8K test split (openai/grade-school-math)",
    licence="MIT",
    files=(GSM8K_TEST,),
)

ANSWER_MARK = "####"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: StrictStr
    answer: StrictStr


def final_answer(solution: str) -> str | None:
    """The text after the last ``####`` of a GSM8K solution, or None without one."""
    if ANSWER_MARK not in solution:
        return None
    answer = solution.rsplit(ANSWER_MARK, 1)[1].strip()
    return answer or None


def load_gsm8k(data_dir: Path | None = None) -> list[Task]:
    """All 1,319 test problems in file order; :class:`TaskDataError` if the data is missing or
    a solution has no ``#### N`` line."""
    path = locate(GSM8K_TEST, GSM8K_DATA.name, data_dir)
    tasks: list[Task] = []
    for line, record in read_records(path, _Record):
        answer = final_answer(record.answer)
        if answer is None:
            raise TaskDataError(f"{path}, line {line}, field 'answer': no '#### N' final answer")
        tasks.append(
            Task(
                id=str(len(tasks)),
                suite=GSM8K_SUITE,
                category="reasoning",
                prompt=record.question.strip(),
                reference=answer,
                checker="number",
                gold_solution=answer,
                metadata={
                    "benchmark": "gsm8k",
                    "mint_task_type": "reasoning",
                    "line": line,
                    "solution": record.answer,
                },
            )
        )
    return tasks


def _load(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    # Always the strict checker: MINT's lenient rule exists to reproduce MINT's numbers.
    return load_gsm8k(data_dir)


GSM8K = SuiteDefinition(
    name=GSM8K_SUITE,
    description="GSM8K's full test split, strict numbers (MINT's 48: mint/gsm8k)",
    load=_load,
    data_pull=GSM8K_DATA.name,
)
"""The registry's entry for GSM8K's test split (see :mod:`mulligan.tasks.suites`)."""
