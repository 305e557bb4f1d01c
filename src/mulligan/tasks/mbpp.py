"""MBPP, full (974 problems) and sanitized (427, hand-verified), with the authors' split, judged
by running the asserts in the sandbox.

The data is google-research's ``mbpp/mbpp.jsonl`` and ``mbpp/sanitized-mbpp.json`` (CC BY 4.0),
``mulligan data pull mbpp``. The sanitized file is one JSON array upstream; it is stored as JSONL
(one ``json.dumps`` record per line, nothing dropped) and pinned in that form.

The split is by ``task_id``, as the MBPP paper defines it: 1-10 few-shot ``prompt``, 11-510
``test``, 511-600 ``validation``, 601-974 ``train``. Each is a group (``--tasks test,validation``);
a run without ``--tasks`` takes ``test``. The prompt is MINT's MBPP wording (the description,
then the first assert, which names the function), so MINT's in-context example fits; the
reference is the test setup (sanitized: its imports) and the three asserts; the challenge asserts
are kept in the metadata, not run. Task ids are MBPP's ``task_id``. MINT's 91 stay ``mint/mbpp``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.pinned import Dataset, PinnedFile, locate
from mulligan.tasks.records import read_records

GOOGLE_RESEARCH_COMMIT = "30adf0ec5f35f9609c2f1d896005e184195d9146"
_UPSTREAM = f"https://raw.githubusercontent.com/google-research/google-research/{GOOGLE_RESEARCH_COMMIT}/mbpp"

SPLITS: dict[str, range] = {
    "test": range(11, 511),
    "validation": range(511, 601),
    "prompt": range(1, 11),
    "train": range(601, 975),
}
"""The authors' split by ``task_id`` (the groups of both MBPP suites)."""

DEFAULT_SPLIT = ("test",)


def json_array_to_jsonl(content: bytes) -> bytes:
    """A JSON array of objects as JSONL: each record ``json.dumps``-ed on its own line."""
    records = json.loads(content.decode("utf-8"))
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("expected a JSON array of objects")
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


MBPP_FULL_FILE = PinnedFile(
    path="mbpp/mbpp.jsonl",
    url=f"{_UPSTREAM}/mbpp.jsonl",
    sha256="ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f",
    size=563_743,
)
MBPP_SANITIZED_FILE = PinnedFile(
    path="mbpp/sanitized-mbpp.jsonl",
    url=f"{_UPSTREAM}/sanitized-mbpp.json",
    sha256="502db01bcc1e911d691d5212bd3d9c60ee52bbc2bd29457a520ace424bb2709d",
    size=254_626,
    convert=json_array_to_jsonl,
)

MBPP_DATA = Dataset(
    name="mbpp",
    description="MBPP full and sanitized (google-research/google-research mbpp/)",
    licence="CC BY 4.0",
    files=(MBPP_FULL_FILE, MBPP_SANITIZED_FILE),
)


class _FullRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: StrictStr
    code: StrictStr
    task_id: StrictInt
    test_setup_code: StrictStr
    test_list: list[StrictStr]
    challenge_test_list: list[StrictStr]


class _SanitizedRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_file: StrictStr
    task_id: StrictInt
    prompt: StrictStr
    code: StrictStr
    test_imports: list[StrictStr]
    test_list: list[StrictStr]


def split_of(task_id: int) -> str | None:
    """The split a ``task_id`` belongs to, or None outside 1-974."""
    return next((name for name, ids in SPLITS.items() if task_id in ids), None)


def _task(
    suite: str,
    split: str,
    description: str,
    code: str,
    setup: str,
    tests: list[str],
    metadata: dict[str, object],
) -> Task:
    reference = "\n".join([setup, *tests]) if setup.strip() else "\n".join(tests)
    return Task(
        id=str(metadata["task_id"]),
        suite=f"{suite}/{split}",
        category="code_generation",
        prompt=f"{description.strip()}\n{tests[0]}",
        reference=reference,
        checker="mbpp",
        gold_solution=code,
        metadata={
            "benchmark": suite,
            "mint_task_type": "mbpp",
            "split": split,
            "test_list": list(tests),
            "test_setup_code": setup,
            **metadata,
        },
    )


def _check_tests(path: Path, line: int, tests: list[str]) -> None:
    if not tests:
        raise TaskDataError(f"{path}, line {line}, field 'test_list': no asserts")


def load_mbpp_full(split: str | None, data_dir: Path | None = None) -> list[Task]:
    """The full MBPP's tasks of one split (all four, in file order, when ``split`` is None)."""
    path = locate(MBPP_FULL_FILE, MBPP_DATA.name, data_dir)
    tasks = []
    for line, r in read_records(path, _FullRecord):
        where = split_of(r.task_id)
        if where is None or (split is not None and where != split):
            continue
        _check_tests(path, line, r.test_list)
        extra = {"task_id": r.task_id, "challenge_test_list": list(r.challenge_test_list)}
        tasks.append(_task(MBPP_FULL, where, r.text, r.code, r.test_setup_code, r.test_list, extra))
    return tasks


def load_mbpp_sanitized(split: str | None, data_dir: Path | None = None) -> list[Task]:
    """The sanitized MBPP's tasks of one split (all, in file order, when ``split`` is None)."""
    path = locate(MBPP_SANITIZED_FILE, MBPP_DATA.name, data_dir)
    tasks = []
    for line, r in read_records(path, _SanitizedRecord):
        where = split_of(r.task_id)
        if where is None or (split is not None and where != split):
            continue
        _check_tests(path, line, r.test_list)
        setup = "\n".join(r.test_imports)
        extra = {"task_id": r.task_id, "source_file": r.source_file}
        tasks.append(_task(MBPP_SANITIZED, where, r.prompt, r.code, setup, r.test_list, extra))
    return tasks


MBPP_FULL = "mbpp-full"
MBPP_SANITIZED = "mbpp-sanitized"


def _load_full(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_mbpp_full(group, data_dir)  # unit tests whatever --checkers says


def _load_sanitized(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_mbpp_sanitized(group, data_dir)


MBPP_FULL_SUITE = SuiteDefinition(
    name=MBPP_FULL,
    description="MBPP, all 974 by the authors' split (runs take test unless --tasks); MINT's: mint/mbpp",
    load=_load_full,
    groups=tuple(SPLITS),
    default_groups=DEFAULT_SPLIT,
    data_pull=MBPP_DATA.name,
)
MBPP_SANITIZED_SUITE = SuiteDefinition(
    name=MBPP_SANITIZED,
    description="MBPP's hand-verified 427 by the authors' split (runs take test unless --tasks)",
    load=_load_sanitized,
    groups=tuple(SPLITS),
    default_groups=DEFAULT_SPLIT,
    data_pull=MBPP_DATA.name,
)
"""The registry's entries for MBPP (see :mod:`mulligan.tasks.suites`)."""
