"""MINT's seven text suites, loaded from its ``processed/<task>/test_prompts.json`` files.

Each task's ``prompt`` is exactly what MINT put after ``Task:`` in its prompt (checked against
MINT's own logs in ``tests/test_mint_conformance.py``). MINT does transform a few prompts:

- gsm8k, math, hotpotqa: surrounding whitespace stripped;
- theoremqa: prefixed with "Answer the following question with a number, a list of numbers or
  True or False. ";
- humaneval: prefixed with "Complete the following code:\\n\\n";
- mbpp: the triple quotes around the description removed, then stripped;
- mmlu: unchanged.

``metadata["mint_task_type"]`` names the in-context example MINT shows with the task
(``reasoning``, ``humaneval`` or ``mbpp``). MINT's reasoning tasks also list a
``wikipedia_search`` tool; the loader lists none (a prompt may list a tool only if a call can be
answered): a run that gives the tool a backing (``--wikipedia offline|live``,
``mulligan.tasks.wikipedia``) adds it to the reasoning tasks.

:data:`MINT` is the registry's entry: one suite whose groups are the seven text suites.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.records import (
    HumanEvalRecord,
    MBPPRecord,
    MintRecord,
    ReasoningRecord,
    TheoremQARecord,
    read_records,
)

MINT_SUITES: tuple[str, ...] = (
    "gsm8k",
    "math",
    "theoremqa",
    "mmlu",
    "hotpotqa",
    "humaneval",
    "mbpp",
)
"""MINT's seven text suites, in the order MINT's paper lists them (reasoning, then code)."""

DATA_FILE_NAME = "test_prompts.json"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "mulligan" / "data"
"""Where ``mulligan data pull mint`` writes, unless ``MULLIGAN_DATA_DIR`` says otherwise."""

DATA_DIR_ENV = "MULLIGAN_DATA_DIR"

THEOREMQA_PREFIX = (
    "Answer the following question with a number, a list of numbers or True or False. "
)
HUMANEVAL_PREFIX = "Complete the following code:\n\n"

_REASONING_TOOLS: tuple[str, ...] = ()
"""Tools the prompt lists as already imported: none by default. MINT's ``wikipedia_search`` is
added by the run when it has a backing (``mulligan.tasks.wikipedia.offer_tool``);
``tests/test_prompt_tools.py`` checks every suite both ways."""


def default_data_dir() -> Path:
    """The data directory to use when none is given: ``$MULLIGAN_DATA_DIR`` or the default."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def candidate_paths(data_dir: Path, suite: str) -> list[Path]:
    """Where a suite's file may lie under ``data_dir``, in the order they are tried.

    Accepted layouts: a mulligan data dir (``processed/<suite>``), MINT's ``data/processed`` dir
    itself (``<suite>``), a dir holding ``mint/processed`` (like the project's shared data), and a
    MINT repository checkout (``data/processed/<suite>``).
    """
    return [
        data_dir / "processed" / suite / DATA_FILE_NAME,
        data_dir / suite / DATA_FILE_NAME,
        data_dir / "mint" / "processed" / suite / DATA_FILE_NAME,
        data_dir / "data" / "processed" / suite / DATA_FILE_NAME,
    ]


def find_suite_file(suite: str, data_dir: Path | None = None) -> Path:
    """Return the path of a MINT suite's ``test_prompts.json``, or raise :class:`TaskDataError`."""
    if suite not in MINT_SUITES:
        raise ValueError(f"unknown MINT suite {suite!r}; expected one of {', '.join(MINT_SUITES)}")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    candidates = candidate_paths(root, suite)
    for path in candidates:
        if path.is_file():
            return path
    raise TaskDataError(
        f"MINT data for '{suite}' not found: expected {candidates[0]}"
        f" (also looked for {', '.join(str(p) for p in candidates[1:])}). "
        f"Fix: run `mulligan data pull mint` (writes to {root}), or pass --data-dir pointing at "
        f"a directory that holds processed/{suite}/{DATA_FILE_NAME}."
    )


def _checker_name(suite: str, mode: CheckerMode) -> str:
    return STRICT_CHECKERS[suite] if mode == "strict" else suite


# Which registered checker judges each suite in "strict" mode. In "mint" mode the checker is
# registered under the suite's own name and reproduces MINT's criterion.
STRICT_CHECKERS: dict[str, str] = {
    "gsm8k": "number",
    "math": "math_equiv",
    "theoremqa": "theoremqa",
    "mmlu": "multiple_choice",
    "hotpotqa": "exact_match",
    "humaneval": "humaneval",
    "mbpp": "mbpp",
}


def parse_mint_options(prompt: str) -> dict[str, str]:
    """The options of a MINT multiple-choice prompt as MINT reads them: ``{'a': '6', ...}``.

    MINT splits the text after "Options: " on " , ", then each option on ")" and keeps the part
    between the first and second ")". An option containing ")" is therefore cut short (e.g.
    "(-\\infty,-1)\\cup (1,\\infty)" becomes "(-\\infty,-1"); this is reproduced on purpose,
    because MINT's checker compares answers with these truncated texts.
    """
    tail = prompt.split("Options: ")[-1]
    options: dict[str, str] = {}
    for chunk in tail.split(" , "):
        parts = chunk.strip("[]' ").split(")")
        if len(parts) < 2:
            continue  # MINT would raise here; no MINT prompt has such an option
        letter = parts[0].lower().strip()
        content = (
            parts[1]
            .lower()
            .strip(".")
            .replace(". Which option is correct?", "")
            .replace(". Which one is correct?", "")
            .strip()
        )
        options[letter] = content
    return options


@dataclass(frozen=True)
class _SuiteSpec:
    record: type[MintRecord]
    build: Callable[[MintRecord, str, str], Task]


def _reasoning_task(record: MintRecord, suite: str, checker: str) -> Task:
    assert isinstance(record, ReasoningRecord)
    reference = str(record.reference)
    # MINT's ReasoningTask strips the prompt; its MultipleChoiceTask (mmlu) does not.
    prompt = record.prompt if suite == "mmlu" else record.prompt.strip()
    metadata: dict[str, object] = {"benchmark": "mint", "mint_task_type": "reasoning"}
    if suite == "mmlu":
        metadata["options"] = parse_mint_options(record.prompt)
    return Task(
        id=str(record.id),
        suite=suite,
        category="reasoning",
        prompt=prompt,
        reference=reference,
        checker=checker,
        gold_solution=reference.strip(),
        metadata=metadata,
        tools=_REASONING_TOOLS,
    )


def _theoremqa_task(record: MintRecord, suite: str, checker: str) -> Task:
    assert isinstance(record, TheoremQARecord)
    # str() of the JSON value reads as Python ("[0, 5]", "False", "1.28e-06"), which is what
    # the TheoremQA checker parses back; the typed value stays in the metadata.
    reference = str(record.reference)
    return Task(
        id=str(record.id),
        suite=suite,
        category="reasoning",
        prompt=THEOREMQA_PREFIX + record.prompt.strip(),
        reference=reference,
        checker=checker,
        gold_solution=reference,
        metadata={
            "benchmark": "mint",
            "mint_task_type": "reasoning",
            "answer_type": record.answer_type,
            "reference_value": record.reference,
        },
        tools=_REASONING_TOOLS,
    )


def _humaneval_task(record: MintRecord, suite: str, checker: str) -> Task:
    assert isinstance(record, HumanEvalRecord)
    return Task(
        id=str(record.id),
        suite=suite,
        category="code_generation",
        prompt=HUMANEVAL_PREFIX + record.prompt,
        reference=record.reference,
        checker=checker,
        # MINT runs only the proposal + tests, so a gold solution must carry the prompt's
        # imports: prompt + canonical body is a complete module. MINT's copy of the prompt
        # lost its final newline, so the body is put back on a line of its own.
        gold_solution=record.prompt.rstrip("\n") + "\n" + record.canonical_solution,
        metadata={
            "benchmark": "mint",
            "mint_task_type": "humaneval",
            "task_id": record.task_id,
            "entry_point": record.entry_point,
        },
    )


def _mbpp_task(record: MintRecord, suite: str, checker: str) -> Task:
    assert isinstance(record, MBPPRecord)
    return Task(
        id=str(record.id),
        suite=suite,
        category="code_generation",
        prompt=record.prompt.replace('"""', "").strip(),
        reference=record.reference,
        checker=checker,
        gold_solution=record.code,
        metadata={
            "benchmark": "mint",
            "mint_task_type": "mbpp",
            "task_id": record.task_id,
            "test_list": list(record.test_list),
            "test_setup_code": record.test_setup_code,
            "challenge_test_list": list(record.challenge_test_list),
        },
    )


_SPECS: dict[str, _SuiteSpec] = {
    "gsm8k": _SuiteSpec(ReasoningRecord, _reasoning_task),
    "math": _SuiteSpec(ReasoningRecord, _reasoning_task),
    "hotpotqa": _SuiteSpec(ReasoningRecord, _reasoning_task),
    "mmlu": _SuiteSpec(ReasoningRecord, _reasoning_task),
    "theoremqa": _SuiteSpec(TheoremQARecord, _theoremqa_task),
    "humaneval": _SuiteSpec(HumanEvalRecord, _humaneval_task),
    "mbpp": _SuiteSpec(MBPPRecord, _mbpp_task),
}


def load_mint_suite(
    suite: str, data_dir: Path | None = None, checkers: CheckerMode = "mint"
) -> list[Task]:
    """Load one MINT suite in file order.

    Args:
        suite: one of :data:`MINT_SUITES`.
        data_dir: directory holding the data (see :func:`candidate_paths`); default
            :func:`default_data_dir`.
        checkers: ``"mint"`` (MINT's criteria) or ``"strict"``; see :data:`CheckerMode`.

    Returns the tasks; raises :class:`TaskDataError` when the file is missing or malformed.
    """
    path = find_suite_file(suite, data_dir)
    spec = _SPECS[suite]
    checker = _checker_name(suite, checkers)
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for line, record in read_records(path, spec.record):
        task = spec.build(record, suite, checker)
        if task.id in seen:
            raise TaskDataError(
                f"{path}, line {line}, field 'id': duplicate id {task.id!r} "
                f"(first on line {seen[task.id]})"
            )
        seen[task.id] = line
        tasks.append(task)
    if not tasks:
        raise TaskDataError(f"{path}: no tasks in the file; re-run `mulligan data pull mint`")
    return tasks


def load_mint(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    """One MINT suite's tasks, or all seven in :data:`MINT_SUITES` order when ``group`` is None."""
    groups = MINT_SUITES if group is None else (group,)
    return [task for name in groups for task in load_mint_suite(name, data_dir, checkers)]


MINT = SuiteDefinition(
    name="mint",
    description="MINT's seven text suites, from MINT's data files",
    load=load_mint,
    groups=MINT_SUITES,
    data_pull="mint",
)
"""The registry's entry for MINT (see :mod:`mulligan.tasks.suites`)."""
