"""EvalPlus's HumanEval+ (164) and MBPP+ (378): each task's function is run on EvalPlus's base
and plus inputs in the sandbox and its outputs compared with the canonical solution's.

The data is EvalPlus's release archives (``HumanEvalPlus.jsonl.gz`` v0.1.10 and
``MbppPlus.jsonl.gz`` v0.2.0, Apache-2.0), ``mulligan data pull humanevalplus`` / ``mbppplus``,
kept gzipped and pinned both as archive and as content. Expected outputs are not in the data:
the ``evalplus`` checker computes them by running the canonical solution on the same inputs
(:mod:`mulligan.tasks.checkers.evalplus`, once per task and process), then compares the
proposal's outputs with them (EvalPlus's rule: ``==``, else ``np.allclose`` with the task's ``atol``, 1e-6 for float outputs). EvalPlus's
special oracles are kept: HumanEval/32 (``find_zero``) passes when the polynomial is within
``atol`` of zero at the answer; a few MBPP+ functions compare as sets, or only by whether the
output is None. MBPP+ inputs are turned back into the tuples, sets and complex numbers that
JSON cannot hold, as EvalPlus's loader does.

Each suite has two groups: ``base`` (EvalPlus's base inputs) and ``plus`` (base and plus
inputs, EvalPlus's headline number); a run without ``--tasks`` takes ``plus``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, field_validator

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.checkers.evalplus import HUMANEVAL_PLUS, MBPP_PLUS
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint import HUMANEVAL_PREFIX
from mulligan.tasks.pinned import Dataset, PinnedFile, locate
from mulligan.tasks.records import read_records

GROUPS = ("base", "plus")

HUMANEVALPLUS_FILE = PinnedFile(
    path="humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz",
    url="https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
    sha256="272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101",
    size=925_932,
    content_sha256="42526ec0e7d5f3ee0b06d6ced98f8c8bae3d76519151bfb3d36f79010645bd7f",
)
MBPPPLUS_FILE = PinnedFile(
    path="mbppplus/MbppPlus-v0.2.0.jsonl.gz",
    url="https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
    sha256="af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63",
    size=336_032,
    content_sha256="b54e762755248ca411b523c917fa9f93c07b5ff2966bf60b3917b853926a3dad",
)
HUMANEVALPLUS_DATA = Dataset(
    name="humanevalplus",
    description="EvalPlus HumanEval+ v0.1.10 (evalplus/humanevalplus_release)",
    licence="Apache-2.0 (HumanEval: MIT)",
    files=(HUMANEVALPLUS_FILE,),
)
MBPPPLUS_DATA = Dataset(
    name="mbppplus",
    description="EvalPlus MBPP+ v0.2.0 (evalplus/mbppplus_release)",
    licence="Apache-2.0 (MBPP: CC BY 4.0)",
    files=(MBPPPLUS_FILE,),
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    task_id: StrictStr
    prompt: StrictStr
    entry_point: StrictStr
    canonical_solution: StrictStr
    base_input: list[list[Any]]
    plus_input: list[list[Any]]
    atol: StrictInt | StrictFloat
    test: StrictStr = ""
    assertion: StrictStr = ""

    @field_validator("base_input", "plus_input", mode="before")
    @classmethod
    def _no_inputs(cls, value: Any) -> Any:
        # MBPP+ v0.2.0 writes Mbpp/793's empty plus inputs as {} instead of [].
        return [] if value == {} else value


# --- MBPP+ inputs as EvalPlus's loader rebuilds them (JSON has no tuple, set or complex) -------


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _each_arg(f: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda args: [f(a) for a in args]


_INPUT_FORMS: dict[int, Callable[[list[Any]], list[Any]]] = {}
for _ids, _form in (
    # every argument a tuple
    (
        (
            2,
            116,
            132,
            143,
            222,
            261,
            273,
            394,
            399,
            421,
            424,
            429,
            470,
            560,
            579,
            596,
            616,
            630,
            726,
            740,
            744,
            809,
        ),
        _each_arg(tuple),
    ),
    # every argument a list of tuples
    (
        (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
        _each_arg(lambda a: [tuple(x) for x in a]),
    ),
    # first argument a list of tuples, the second as is
    ((75, 413, 444, 753), lambda args: [[tuple(x) for x in args[0]], args[1]]),
    ((106, 750), lambda args: [args[0], tuple(args[1])]),
    ((250, 405, 446, 617, 720, 763, 808), lambda args: [tuple(args[0]), args[1]]),
    # every argument a tuple of tuples
    ((259, 401, 445), _each_arg(lambda a: tuple(tuple(x) for x in a))),
    ((278,), lambda args: [tuple(tuple(x) if isinstance(x, list) else x for x in args[0])]),
    ((307,), lambda args: [tuple(args[0]), args[1], args[2]]),
    ((722,), lambda args: [{k: tuple(v) for k, v in args[0].items()}, *args[1:]]),
    ((252,), lambda args: [complex(args[0])]),
    ((124,), lambda args: [float(args[0]), complex(args[1])]),
    # EvalPlus's loader turns an empty list here into {} (a dict), kept for identical inputs
    ((115,), lambda args: [[set(x) if isinstance(x, list) and x else {} for x in args[0]]]),
    ((580, 615, 791), lambda args: list(_tuples(args))),
):
    for _id in _ids:
        _INPUT_FORMS[_id] = _form


def mbpp_plus_inputs(task_id: str, inputs: list[list[Any]]) -> list[tuple[Any, ...]]:
    """MBPP+ inputs with the Python types EvalPlus gives them (by task number)."""
    form = _INPUT_FORMS.get(int(task_id.rsplit("/", 1)[-1]))
    return [tuple(form(args) if form else args) for args in inputs]


# --- Loading -------------------------------------------------------------------------------


def _task(record: _Record, suite: str, group: str) -> Task:
    humaneval = suite == HUMANEVAL_PLUS
    if humaneval:
        base = [tuple(a) for a in record.base_input]
        plus = [tuple(a) for a in record.plus_input]
        canonical = record.prompt + record.canonical_solution
        prompt, reference = (
            HUMANEVAL_PREFIX + record.prompt,
            f"{record.test}\n\ncheck({record.entry_point})\n",
        )
    else:
        base = mbpp_plus_inputs(record.task_id, record.base_input)
        plus = mbpp_plus_inputs(record.task_id, record.plus_input)
        canonical = record.canonical_solution
        prompt, reference = record.prompt.replace('"""', "").strip(), record.assertion.strip()
    return Task(
        id=record.task_id,
        suite=f"{suite}/{group}",
        category="code_generation",
        prompt=prompt,
        reference=reference,
        checker="evalplus",
        gold_solution=canonical,
        metadata={
            "benchmark": suite,
            "mint_task_type": "humaneval" if humaneval else "mbpp",
            "group": group,
            "entry_point": record.entry_point,
            "atol": record.atol,
            "base_input": base,
            "plus_input": plus,
            "canonical_program": canonical,
            "stub": record.prompt if humaneval else "",
        },
    )


@lru_cache(maxsize=4)
def _records(path: Path, mtime_ns: int, size: int) -> tuple[_Record, ...]:
    """A file's records, parsed once while it is unchanged (``mulligan suites`` and a run load
    both groups; parsing the 7.7 MB of HumanEval+ takes seconds)."""
    return tuple(r for _, r in read_records(path, _Record))


def load_evalplus(suite: str, group: str | None, data_dir: Path | None = None) -> list[Task]:
    """One EvalPlus suite's tasks for one group (both groups, base first, when None)."""
    file, dataset = (
        (HUMANEVALPLUS_FILE, HUMANEVALPLUS_DATA)
        if suite == HUMANEVAL_PLUS
        else (MBPPPLUS_FILE, MBPPPLUS_DATA)
    )
    path = locate(file, dataset.name, data_dir)
    stat = path.stat()
    records = _records(path, stat.st_mtime_ns, stat.st_size)
    if not records:
        raise TaskDataError(f"{path}: no tasks; re-run `mulligan data pull {dataset.name}`")
    return [_task(r, suite, g) for g in ((group,) if group else GROUPS) for r in records]


def _load_humaneval_plus(
    group: str | None, data_dir: Path | None, checkers: CheckerMode
) -> list[Task]:
    return load_evalplus(HUMANEVAL_PLUS, group, data_dir)


def _load_mbpp_plus(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_evalplus(MBPP_PLUS, group, data_dir)


HUMANEVAL_PLUS_SUITE = SuiteDefinition(
    name=HUMANEVAL_PLUS,
    description="EvalPlus HumanEval+ v0.1.10: base and plus inputs (runs take plus unless --tasks)",
    load=_load_humaneval_plus,
    groups=GROUPS,
    default_groups=("plus",),
    data_pull=HUMANEVALPLUS_DATA.name,
)
MBPP_PLUS_SUITE = SuiteDefinition(
    name=MBPP_PLUS,
    description="EvalPlus MBPP+ v0.2.0: base and plus inputs (runs take plus unless --tasks)",
    load=_load_mbpp_plus,
    groups=GROUPS,
    default_groups=("plus",),
    data_pull=MBPPPLUS_DATA.name,
)
"""The registry's entries for EvalPlus's suites (see :mod:`mulligan.tasks.suites`)."""
