"""Typed records of MINT's ``processed/<task>/test_prompts.json`` files, and their JSONL reader.

MINT names these files ``.json`` but writes one JSON object per line. Each suite keeps its own
fields; the models below list the ones mulligan reads and let the others through (``extra``).
Validation errors are turned into a :class:`TaskDataError` naming the file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.pinned import read_text

TheoremQAAnswerType = Literal[
    "integer", "float", "list of integer", "list of float", "bool", "option", "Option"
]

# A reference as TheoremQA stores it: the JSON value itself, not a string. Strict types keep
# 1 (int) and 1.0 (float) apart, which matters: integers are compared after rounding, floats
# with a relative tolerance.
TheoremQAReference = (
    StrictBool | StrictInt | StrictFloat | StrictStr | list[StrictInt | StrictFloat]
)


class MintRecord(BaseModel):
    """Fields every MINT record has."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: StrictInt | StrictStr
    prompt: StrictStr


class ReasoningRecord(MintRecord):
    """gsm8k, math, hotpotqa and mmlu: the reference is answer text (MINT applies ``str()``)."""

    reference: StrictStr | StrictInt | StrictFloat


class TheoremQARecord(MintRecord):
    """theoremqa: a typed reference and the answer type that selects the comparison."""

    reference: TheoremQAReference
    answer_type: TheoremQAAnswerType


class HumanEvalRecord(MintRecord):
    """MINT's HumanEval subset: ``reference`` is the test code ending in ``check(<entry_point>)``."""

    reference: StrictStr
    task_id: StrictStr
    entry_point: StrictStr
    canonical_solution: StrictStr
    test: StrictStr


class MBPPRecord(MintRecord):
    """MINT's MBPP subset: ``reference`` is the asserts joined by newlines; ``code`` the solution."""

    reference: StrictStr
    task_id: StrictInt
    code: StrictStr
    test_list: list[StrictStr]
    test_setup_code: StrictStr = ""
    challenge_test_list: list[StrictStr] = []
    text: StrictStr = ""


RecordT = TypeVar("RecordT", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(record)"


def describe_validation_error(exc: PydanticValidationError) -> str:
    """``field 'x': what is wrong (N error(s) in this line)``: the first error, named."""
    first = exc.errors()[0]
    return (
        f"field '{_field_path(first['loc'])}': {first['msg']}"
        f" ({exc.error_count()} error(s) in this line)"
    )


def read_records(
    path: Path, model: type[RecordT], defaults: Mapping[str, Any] | None = None
) -> Iterator[tuple[int, RecordT]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSONL file (gzipped or not).

    ``defaults`` fill the fields a line does not set. Raises :class:`TaskDataError` naming the
    file, the 1-based line number and the field when a line is not JSON or does not match
    ``model``.
    """
    text = read_text(path)
    # Only "\n" ends a JSONL line: str.splitlines() would also split at U+2028 and the other
    # Unicode separators, which JSON strings may hold raw (RefineBench's do).
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskDataError(
                f"{path}, line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
        if not isinstance(raw, dict):
            raise TaskDataError(
                f"{path}, line {number}: expected a JSON object, found {type(raw).__name__}"
            )
        try:
            record = model.model_validate({**defaults, **raw} if defaults else raw)
        except PydanticValidationError as exc:
            raise TaskDataError(f"{path}, line {number}, {describe_validation_error(exc)}") from exc
        yield number, record
