"""Your own tasks without a fork: a task file (``file:PATH``) or a Hugging Face dataset
(``hf:NAME[:config]:split``), named wherever a suite is (``--suite``, or ``--tasks`` alone).

A task file is JSONL, one task per line (:class:`TaskRecord`: ``prompt``, ``reference``,
``checker`` and its ``checker_options``, ``tests`` / ``entry_point`` / ``setup`` for code, an
optional ``checklist``, ``solution`` and ``metadata``), or a YAML file (:class:`SuiteFile`) that
names the suite, points at a JSONL file or a Hugging Face dataset, maps the dataset's columns to
those fields and gives defaults for every task. Every record is validated at the edge: a bad one
is one :class:`TaskSourceError` naming the file, the line (or row) and the field.

Hugging Face datasets need the ``datasets`` package (extra ``hf``). ``NAME`` may be a directory
written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, read offline with
``load_from_disk``; anything else goes to ``datasets.load_dataset`` (which reads its local cache
when ``HF_DATASETS_OFFLINE=1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task, TaskCategory
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers.options import validate_checker_options
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.records import describe_validation_error, read_records

FILE_PREFIX = "file:"
HF_PREFIX = "hf:"
YAML_SUFFIXES = (".yaml", ".yml")


class TaskSourceError(TaskDataError, ValueError):
    """A task file or dataset source that cannot be read or does not validate."""


def is_source(name: str) -> bool:
    """Whether ``name`` names a task source (``file:...`` or ``hf:...``) rather than a suite."""
    return name.startswith((FILE_PREFIX, HF_PREFIX))


class TaskRecord(BaseModel):
    """One task as a task file (or a mapped dataset row) states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr | StrictInt | None = Field(default=None, description="default: the line/row")
    prompt: StrictStr = Field(min_length=1, description="the task text shown to the policy")
    reference: StrictStr | StrictInt | StrictFloat = Field(
        default="", description="the answer (reasoning tasks); unused by code checkers"
    )
    checker: StrictStr = Field(description="a registered checker, e.g. number, python_tests")
    checker_options: dict[str, Any] = Field(default_factory=dict)
    category: TaskCategory | None = Field(default=None, description="default: code if tests")
    tests: StrictStr | list[StrictStr] | None = Field(
        default=None, description="test code, or a list of asserts (code tasks)"
    )
    entry_point: StrictStr | None = Field(
        default=None, description="the function under test; with `def check(candidate)` tests"
    )
    setup: StrictStr = Field(default="", description="code run before the tests (imports)")
    solution: StrictStr | None = Field(
        default=None, description="a solution the checker accepts (default: the reference)"
    )
    checklist: list[StrictStr] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("checker")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in CHECKERS:
            raise ValueError(
                f"unknown checker {value!r}; registered: {', '.join(sorted(CHECKERS))}"
            )
        return value

    @field_validator("checker_options")
    @classmethod
    def _options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        checker = info.data.get("checker")
        if checker is None:  # the checker itself failed validation; that error is reported
            return value
        try:
            return validate_checker_options(checker, value)
        except ValidationError as exc:
            raise ValueError(describe_validation_error(exc).split(" (")[0]) from None

    @field_validator("tests")
    @classmethod
    def _some_tests(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value if isinstance(value, list) else value.strip()):
            raise ValueError("empty tests")
        return value

    @model_validator(mode="after")
    def _complete(self) -> TaskRecord:
        if self.category == "code_generation" and self.tests is None:
            raise ValueError("field 'tests' is required for a code_generation task")
        if self.tests is None and str(self.reference).strip() == "":
            raise ValueError("field 'reference' is required for a task without 'tests'")
        return self


class HFSource(BaseModel):
    """A Hugging Face dataset split: a hub name or a ``save_to_disk`` directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: StrictStr = Field(min_length=1)
    config: StrictStr | None = None
    split: StrictStr = Field(min_length=1)
    revision: StrictStr | None = None


class SuiteFile(BaseModel):
    """A YAML suite file: the suite's name, where its tasks are, column mapping, defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr | None = Field(default=None, pattern=r"^[\w.+-]+$")
    description: StrictStr = ""
    tasks: StrictStr | None = Field(default=None, description="JSONL file, relative to the YAML")
    hf: HFSource | None = None
    fields: dict[StrictStr, StrictStr] = Field(
        default_factory=dict, description="task field -> dataset column (hf sources)"
    )
    defaults: dict[StrictStr, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> SuiteFile:
        if (self.tasks is None) == (self.hf is None):
            raise ValueError("give exactly one of 'tasks' (a JSONL file) and 'hf' (a dataset)")
        unknown = sorted(set(self.fields) - set(TaskRecord.model_fields))
        unknown += sorted(set(self.defaults) - set(TaskRecord.model_fields))
        if unknown:
            raise ValueError(
                f"unknown task field(s) {', '.join(unknown)}; task fields: "
                f"{', '.join(TaskRecord.model_fields)}"
            )
        if self.fields and self.hf is None:
            raise ValueError(
                "'fields' maps the columns of an 'hf' dataset; a JSONL file names them"
            )
        return self


def parse_hf_spec(spec: str) -> HFSource:
    """``hf:NAME[:config]:split`` as an :class:`HFSource`."""
    parts = spec.removeprefix(HF_PREFIX).split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise TaskSourceError(
            f"{spec!r}: expected hf:NAME:split or hf:NAME:config:split "
            "(e.g. hf:openai/gsm8k:main:test, or hf:/path/saved/dataset:test)"
        )
    name, *config, split = parts
    return HFSource(path=name, config=config[0] if config else None, split=split)


def normalize_source(spec: str) -> str:
    """A source spec as a run records it: a file as an absolute path (checked to exist), so
    that a resumed run from another directory reads the same file."""
    if spec.startswith(HF_PREFIX):
        parse_hf_spec(spec)
        return spec
    path = Path(spec.removeprefix(FILE_PREFIX)).expanduser()
    if not path.is_file():
        raise TaskSourceError(f"task file {path} not found ({spec!r}); fix: check the path")
    return FILE_PREFIX + str(path.resolve())


def source_path(spec: str) -> Path | None:
    """The local file or directory a ``file:`` / ``hf:`` spec reads (None for a hub name or a
    registered suite): the engine hides it from model code, as it does the data directory."""
    if spec.startswith(FILE_PREFIX):
        return Path(spec.removeprefix(FILE_PREFIX)).expanduser().resolve()
    if spec.startswith(HF_PREFIX):
        local = Path(spec.removeprefix(HF_PREFIX).split(":")[0]).expanduser()
        return local.resolve() if local.is_dir() else None
    return None


def build_task(record: TaskRecord, suite: str, position: int) -> Task:
    """The :class:`Task` a validated record describes (``position``: its 0-based place)."""
    code = record.category == "code_generation" or (
        record.category is None and record.tests is not None
    )
    metadata: dict[str, Any] = {"benchmark": suite, **record.metadata}
    if record.checker_options:
        metadata["checker_options"] = dict(record.checker_options)
    reference = str(record.reference)
    if code:
        reference = _code_reference(record, metadata)
    metadata.setdefault("mint_task_type", _example_kind(record) if code else "reasoning")
    gold = record.solution if record.solution is not None else ("" if code else reference)
    return Task(
        id=str(record.id) if record.id is not None else str(position),
        suite=suite,
        category="code_generation" if code else "reasoning",
        prompt=record.prompt,
        reference=reference,
        checker=record.checker,
        gold_solution=gold,
        metadata=metadata,
        checklist=tuple(record.checklist or ()),
    )


_CHECK_CALL = re.compile(r"^check\(", re.MULTILINE)


def _code_reference(record: TaskRecord, metadata: dict[str, Any]) -> str:
    """The test code a code checker runs after the proposal (and what ``tests`` feedback reads:
    ``test_list``, ``entry_point``, ``test_setup_code``)."""
    tests = record.tests or ""
    if isinstance(tests, list):
        metadata["test_list"] = list(tests)
        body = "\n".join(tests)
    else:
        body = tests
    if record.entry_point:
        metadata["entry_point"] = record.entry_point
        if "def check(" in body and not _CHECK_CALL.search(body):
            body = f"{body.rstrip()}\n\ncheck({record.entry_point})\n"
    if record.setup.strip():
        metadata["test_setup_code"] = record.setup
        return f"{record.setup.rstrip()}\n{body}"
    return body


def _example_kind(record: TaskRecord) -> str:
    # HumanEval's example shows a function completed against `check`; MBPP's, asserts.
    return "humaneval" if isinstance(record.tests, str) and "def check(" in record.tests else "mbpp"


def _with_ids(tasks: list[Task], origin: str) -> list[Task]:
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise TaskSourceError(f"{origin}: duplicate task id {task.id!r}; ids must be unique")
        seen.add(task.id)
    if not tasks:
        raise TaskSourceError(f"{origin}: no tasks")
    return tasks


def load_jsonl_tasks(
    path: Path, suite: str, defaults: Mapping[str, Any] | None = None
) -> list[Task]:
    """The tasks of a JSONL task file, in file order."""
    if not path.is_file():
        raise TaskSourceError(f"task file {path} not found")
    try:
        records = [r for _, r in read_records(path, TaskRecord, defaults)]
    except TaskSourceError:
        raise
    except TaskDataError as exc:
        raise TaskSourceError(str(exc)) from exc
    return _with_ids([build_task(r, suite, i) for i, r in enumerate(records)], str(path))


def read_suite_file(path: Path) -> SuiteFile:
    """A YAML suite file, validated; errors name the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TaskSourceError(f"{path}: cannot be read as YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise TaskSourceError(f"{path}: expected a mapping (name, tasks or hf, fields, defaults)")
    try:
        return SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise TaskSourceError(f"{path}, {describe_validation_error(exc)}") from exc


def load_file_source(path: Path) -> list[Task]:
    """The tasks of ``file:PATH``: a JSONL task file, or a YAML suite file."""
    if path.suffix.lower() not in YAML_SUFFIXES:
        return load_jsonl_tasks(path, path.stem)
    spec = read_suite_file(path)
    name = spec.name or path.stem
    if spec.tasks is not None:
        return load_jsonl_tasks(path.parent / spec.tasks, name, spec.defaults)
    assert spec.hf is not None  # the model's validator requires one of the two
    return load_hf_tasks(spec.hf, name, spec.fields, spec.defaults)


def _hf_rows(source: HFSource) -> Iterator[Mapping[str, Any]]:
    """The rows of a dataset split, from a ``save_to_disk`` directory or ``load_dataset``."""
    try:
        import datasets
    except ImportError as exc:
        raise TaskSourceError(
            "hf: sources need the 'datasets' package; fix: pip install -e '.[hf]'"
        ) from exc
    local = Path(source.path).expanduser()
    try:
        if local.is_dir() and any(
            (local / n).is_file() for n in ("dataset_dict.json", "dataset_info.json", "state.json")
        ):
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                if source.split not in loaded:
                    raise TaskSourceError(
                        f"{local} has no split {source.split!r}; it has {', '.join(loaded)}"
                    )
                loaded = loaded[source.split]
        else:
            loaded = datasets.load_dataset(
                source.path, source.config, split=source.split, revision=source.revision
            )
    except TaskSourceError:
        raise
    except Exception as exc:  # datasets raises many kinds (hub, offline, format, split)
        raise TaskSourceError(
            f"hf:{source.path}: cannot load split {source.split!r} ({type(exc).__name__}: "
            f"{exc}). Fix: a directory saved with save_to_disk works offline, as does a cached "
            "hub dataset with HF_DATASETS_OFFLINE=1"
        ) from exc
    yield from loaded


def load_hf_tasks(
    source: HFSource,
    suite: str,
    fields: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[Task]:
    """A dataset split's rows as tasks: ``fields`` maps task fields to columns (a field not
    mapped reads the column of its own name, when there is one); ``defaults`` fill the rest."""
    fields = dict(fields or {})
    origin = f"hf:{source.path}" + (f":{source.config}" if source.config else "")
    origin += f":{source.split}"
    tasks: list[Task] = []
    for row_number, row in enumerate(_hf_rows(source)):
        raw = dict(defaults or {})
        for name in TaskRecord.model_fields:
            column = fields.get(name, name)
            if column in row and row[column] is not None:
                raw[name] = row[column]
        missing = sorted(c for c in fields.values() if c not in row)
        if missing:
            raise TaskSourceError(
                f"{origin}: no column(s) {', '.join(missing)}; columns: {', '.join(row)}"
            )
        try:
            record = TaskRecord.model_validate(raw)
        except ValidationError as exc:
            raise TaskSourceError(
                f"{origin}, row {row_number}, {describe_validation_error(exc)}"
            ) from exc
        tasks.append(build_task(record, suite, row_number))
    return _with_ids(tasks, origin)


def load_source(spec: str) -> list[Task]:
    """The tasks a ``file:`` or ``hf:`` spec names."""
    if spec.startswith(HF_PREFIX):
        source = parse_hf_spec(spec)
        name = re.sub(r"[^\w.+-]+", "-", Path(source.path).name or source.path)
        return load_hf_tasks(source, f"hf-{name}-{source.split}")
    return load_file_source(Path(spec.removeprefix(FILE_PREFIX)).expanduser())


def _load(spec: str, group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    return load_source(spec)  # a task file names its own checkers


def source_suite(spec: str) -> SuiteDefinition:
    """A suite for a ``file:`` / ``hf:`` spec (built on demand, never registered)."""
    kind = "Hugging Face dataset" if spec.startswith(HF_PREFIX) else "task file"
    return SuiteDefinition(
        name=spec, description=f"your own tasks ({kind})", load=partial(_load, spec)
    )
