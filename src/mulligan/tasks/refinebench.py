"""RefineBench's published sample: 109 problems in 11 fields, each with a checklist of yes/no
evaluation questions (1,016 in all) for checklist scoring.

The data is ``static/data/refinebench_samples.json`` of the paper's project page
(passing2961/refinebench-page, CC BY 4.0), ``mulligan data pull refinebench``. Upstream it is
one JSON object of problem lists keyed by field; it is stored as JSONL (one problem per line, in
upstream's order, ``ensure_ascii=False``) and pinned in that form.

Each task carries its checklist in ``Task.checklist`` (where the ``checklist`` feedback and the
judge's checklist scoring read it). Groups follow RefineBench's exam types:
``exact-match`` (80: the reference's final ``<answer>...</answer>`` is the reference, judged by
normalised exact match) and ``free-form`` (29: the reference answer itself, judged the same way,
which only an identical text passes; their real score is the checklist's, or a ``--judge-model``
verdict). Task ids are RefineBench's ``index``.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.pinned import Dataset, PinnedFile, locate
from mulligan.tasks.records import read_records

REFINEBENCH_SUITE = "refinebench"
REFINEBENCH_PAGE_COMMIT = "bab3dd6"
"""The page repository's commit (abbreviated as recorded; the stored form's hash pins the data)."""

EXAM_TYPES: dict[str, str] = {"exact-match": "Exact Match", "free-form": "Free Form"}
"""Group name -> RefineBench's ``exam_type``."""

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def grouped_json_to_jsonl(content: bytes) -> bytes:
    """An object of record lists (``{"field": [record, ...], ...}``) as JSONL, in order."""
    grouped = json.loads(content.decode("utf-8"))
    if not isinstance(grouped, dict) or not all(isinstance(v, list) for v in grouped.values()):
        raise ValueError("expected a JSON object of lists of problems")
    lines = [
        json.dumps(record, ensure_ascii=False) + "\n" for v in grouped.values() for record in v
    ]
    return "".join(lines).encode("utf-8")


REFINEBENCH_SAMPLES = PinnedFile(
    path="refinebench/refinebench_samples.jsonl",
    url=(
        f"https://raw.githubusercontent.com/passing2961/refinebench-page/{REFINEBENCH_PAGE_COMMIT}/"
        "static/data/refinebench_samples.json"
    ),
    sha256="9755bc6a3908903924dad580e75c3cd8acaa5a6001bca828d6f2bb6105430916",
    size=937_682,
    convert=grouped_json_to_jsonl,
)

REFINEBENCH_DATA = Dataset(
    name="refinebench",
    description="RefineBench's 109-problem sample with checklists (passing2961/refinebench-page)",
    licence="CC BY 4.0",
    files=(REFINEBENCH_SAMPLES,),
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    index: StrictStr
    field: StrictStr
    subject: StrictStr
    question: StrictStr
    reference_answer: list[StrictStr]
    materials: list[StrictStr]
    checklist: list[StrictStr]
    exam_type: StrictStr


def _material_text(material: str) -> str:
    """A material's text: RefineBench stores each as the ``repr`` of ``{'content': ..., 'type':
    [...]}``; read with ``literal_eval`` (data, never model text), else kept as written."""
    try:
        value: Any = ast.literal_eval(material)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return material
    return str(value["content"]) if isinstance(value, dict) and "content" in value else material


def _prompt(record: _Record) -> str:
    prompt = record.question.strip()
    if record.materials:
        prompt += "\n\nMaterials:\n" + "\n\n".join(_material_text(m) for m in record.materials)
    return prompt


def _reference(record: _Record, group: str, where: str) -> str:
    if group == "free-form":
        return "\n\n".join(a.strip() for a in record.reference_answer)
    answers = _ANSWER.findall(record.reference_answer[-1]) if record.reference_answer else []
    if not answers or not answers[-1].strip():
        raise TaskDataError(f"{where}, field 'reference_answer': no <answer>...</answer>")
    return str(answers[-1]).strip()


def load_refinebench(group: str | None, data_dir: Path | None = None) -> list[Task]:
    """The sample's problems of one exam type (both, in file order, when ``group`` is None)."""
    path = locate(REFINEBENCH_SAMPLES, REFINEBENCH_DATA.name, data_dir)
    by_type = {exam: name for name, exam in EXAM_TYPES.items()}
    tasks: list[Task] = []
    for line, record in read_records(path, _Record):
        kind = by_type.get(record.exam_type)
        if kind is None:
            raise TaskDataError(
                f"{path}, line {line}, field 'exam_type': {record.exam_type!r} is not one of "
                f"{', '.join(map(repr, by_type))}"
            )
        if group is not None and kind != group:
            continue
        reference = _reference(record, kind, f"{path}, line {line}")
        tasks.append(
            Task(
                id=record.index,
                suite=f"{REFINEBENCH_SUITE}/{kind}",
                category="reasoning",
                prompt=_prompt(record),
                reference=reference,
                checker="exact_match" if kind == "exact-match" else "exact_match_long",
                gold_solution=reference,
                checklist=tuple(record.checklist),
                metadata={
                    "benchmark": REFINEBENCH_SUITE,
                    "mint_task_type": "reasoning",
                    "field": record.field,
                    "subject": record.subject,
                    "exam_type": record.exam_type,
                    "reference_answer": list(record.reference_answer),
                },
            )
        )
    return tasks


def _load(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_refinebench(group, data_dir)


REFINEBENCH = SuiteDefinition(
    name=REFINEBENCH_SUITE,
    description="RefineBench's 109-problem sample, each task with its checklist",
    load=_load,
    groups=tuple(EXAM_TYPES),
    data_pull=REFINEBENCH_DATA.name,
)
"""The registry's entry for RefineBench's sample (see :mod:`mulligan.tasks.suites`)."""
