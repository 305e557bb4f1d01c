"""RunConfig, nested by consumer, its hash, and loading it from a YAML/TOML file plus
command-line overrides.

A run's options are grouped by what reads them: the task selection, a config per model role
(policy, feedback, judge), the episode's limits (:class:`~mulligan.episode.EpisodeLimits`,
reused as is), the sandbox's limits, and the execution options that do not change results.
Config files, the CLI and stored runs name options flat (``turns: 5``, ``feedback_model: ...``),
as before the nesting; :data:`OPTIONS` maps each flat name to its nested home, derived from the
sections' fields, and the config hash is computed over the flat names so that existing runs
still resume. Files may also use the nested form (``episode: {max_turns: 5}``).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from mulligan.episode import EpisodeLimits
from mulligan.errors import MulliganError
from mulligan.feedback.spec import FeedbackSpec
from mulligan.models.base import GenerateParams
from mulligan.models.cache import CacheMode
from mulligan.models.registry import result_args
from mulligan.sandbox.isolation import IsolationRequest
from mulligan.tasks.base import CheckerMode
from mulligan.tasks.custom import is_source, normalize_source
from mulligan.tasks.shard import Shard
from mulligan.tasks.suites import Sample, TaskSelectionError, get_suite, resolve_tasks
from mulligan.tasks.wikipedia import WIKIPEDIA_API, WikipediaMode


class ConfigError(MulliganError):
    """A config file or option is invalid; the message names the file, field and fix."""


class _NotHashed:
    """Marks a field (or a whole section) that does not change results: it is left out of the
    config hash, so a resumed run may change it."""

    def __repr__(self) -> str:
        return "NOT_HASHED"


NOT_HASHED = _NotHashed()


def _has_provider(value: str | None) -> str | None:
    if value is not None and "/" not in value:
        raise ValueError(
            f"model {value!r} has no provider; write it as provider/model, "
            "e.g. local/qwen2.5-coder-0.5b or scripted/reference"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_names(value: Any) -> Any:
    """``"gsm8k, math"`` -> ``("gsm8k", "math")`` (an empty list is None: everything)."""
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip()) or None
    return value


class TaskSelection(_Section):
    """Which tasks a run attempts (read by the task loader)."""

    # "suite" is the older word (docs/architecture.md, "Vocabulary"): a group, or a task
    # without one. Kept as the stored name, so stored runs load and hash as before.
    suite: str = Field(
        default="humaneval",
        description="the group (or task) run, see `mulligan tasks`; or file:PATH, "
        "hf:NAME[:cfg]:split",
    )
    tasks: tuple[str, ...] | None = Field(
        default=None,
        description="the tasks run, e.g. ('gsm8k', 'math'); alone, any of `mulligan tasks` "
        "(the suite follows); with a suite, its tasks (or a task's sample ids)",
    )
    # Where the data lives does not change results (its checksums do).
    data_dir: Annotated[Path | None, NOT_HASHED] = None
    limit: int | None = Field(default=None, ge=1, description="N samples of each task")
    sample: Sample = Field(
        default="first", description="which N tasks: the first in data order, or a seeded draw"
    )
    checkers: CheckerMode = Field(
        default="mint", description="MINT's answer checkers, or stricter ones (see docs)"
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        return _split_names(value)

    @model_validator(mode="before")
    @classmethod
    def _tasks_name_what_runs(cls, data: Any) -> Any:
        """``tasks`` without ``suite`` names what runs, as lm-eval's ``--tasks`` does (tasks, or
        a group): the suite follows from it, so ``--tasks gsm8k`` is stored, hashed and resumed
        exactly as the older ``--suite mint --tasks gsm8k``. With ``suite`` given (the older
        spelling, and every stored run) ``tasks`` selects within it, as before."""
        if not isinstance(data, Mapping):
            return data
        names = _split_names(data.get("tasks"))
        if not names or any(is_source(str(n)) for n in names):  # file:/hf: (_tasks_source)
            return data
        if (suite := data.get("suite")) is not None:  # ``mint/gsm8k`` within mint is gsm8k
            return {**data, "tasks": tuple(n.removeprefix(f"{suite}/") for n in names)}
        try:
            suite, tasks = resolve_tasks(names)
        except TaskSelectionError as exc:
            raise ConfigError(f"tasks: {exc}") from exc
        return {**data, "suite": suite, "tasks": tasks}

    @model_validator(mode="before")
    @classmethod
    def _tasks_source(cls, data: Any) -> Any:
        """``--tasks file:PATH`` (or ``hf:...``) alone names what is run: it becomes the suite.

        With ``--suite`` it would be ambiguous, so that is refused rather than one of them
        silently ignored."""
        if not isinstance(data, dict):
            return data
        tasks = cls._split_tasks(data.get("tasks"))
        if not tasks or not any(is_source(str(t)) for t in tasks):
            return data
        if len(tasks) > 1:
            raise ValueError("tasks: a task file or dataset (file:/hf:) must be given alone")
        if data.get("suite") not in (None, tasks[0]):
            raise ValueError(
                f"tasks: {tasks[0]} names the tasks to run; leave out --suite "
                f"{data['suite']} (or give the file as --suite)"
            )
        return {**data, "suite": tasks[0], "tasks": None}

    @field_validator("suite")
    @classmethod
    def _suite_is_registered(cls, value: str) -> str:
        if is_source(value):
            return normalize_source(value)  # the file must exist; recorded as absolute path
        get_suite(value)  # raises ValueError naming the registered suites
        return value


class _Role(_Section):
    """What every model role has: backend arguments for its model (``-M key=value`` and a file
    of them), checked against the backend when the model is built (:mod:`mulligan.models.args`,
    which also says which of them are hashed).

    The file (``model_config``) is read once, when the config is built: its arguments go under
    the role's ``model_args`` (which win, key by key) and the path is then cleared, so a run's
    manifest holds the arguments it used and a resume does not depend on the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    _option_prefix: ClassVar[str] = ""

    model_args: dict[str, Any] = Field(
        default_factory=dict,
        description="backend arguments, key=value (values parsed as JSON when they parse)",
    )
    # Merged into model_args and cleared when the config is built (see the class docstring).
    args_file: Annotated[Path | None, NOT_HASHED] = Field(
        default=None, description="a YAML, TOML or JSON file of backend arguments"
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_args_file(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("args_file") is None:
            return data
        name = f"{cls._option_prefix}model_config"
        from_file = load_model_args(Path(data["args_file"]), name)
        try:
            given = parse_model_args(data.get("model_args"))
        except ValueError as exc:
            raise ConfigError(f"{cls._option_prefix}model_args: {exc}") from exc
        return {**data, "model_args": {**from_file, **given}, "args_file": None}

    @field_validator("model_args", mode="before")
    @classmethod
    def _parse_args(cls, value: Any) -> dict[str, Any]:
        return parse_model_args(value)


class PolicyConfig(_Role):
    """The policy role: the model under test and its sampling."""

    model: str = "local/qwen2.5-coder-0.5b"
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)

    _provider = field_validator("model")(_has_provider)


class FeedbackConfig(_Role):
    """The feedback role: the spec of the feedback chain and the model that writes feedback."""

    _option_prefix: ClassVar[str] = "feedback_"

    spec: FeedbackSpec = Field(
        default=FeedbackSpec.parse("none"),
        description="feedback spec, see `mulligan feedback list`; parsed once, stored as written",
    )
    model: str | None = Field(
        default=None, description="model for llm/critic/checklist feedback, provider/model"
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="feedback role's temperature (provider default 0)"
    )
    max_tokens: int | None = Field(default=None, ge=1)
    concurrency: Annotated[int | None, NOT_HASHED] = Field(
        default=None, ge=1, description="feedback-model calls in flight (default: unlimited)"
    )

    _provider = field_validator("model")(_has_provider)


class JudgeConfig(_Role):
    """The judge role: the LLM asked about reasoning answers the checker rejected."""

    _option_prefix: ClassVar[str] = "judge_"

    model: str | None = Field(default=None, description="the judge model, provider/model")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    concurrency: Annotated[int | None, NOT_HASHED] = Field(default=None, ge=1)
    # Not hashed: the policy never sees what the judge reads; only the report's agreement does.
    reads_feedback: Annotated[bool, NOT_HASHED] = Field(
        default=False,
        description="the judge also reads what verdict each textual feedback states, for the "
        "simulated user's agreement with the checker (one judge call per such feedback)",
    )

    _provider = field_validator("model")(_has_provider)


class SandboxConfig(_Section):
    """The sandbox's resource limits that a run sets (its cell timeout is the episode's)."""

    memory_mb: int = Field(default=1024, ge=64)


class ForkConfig(_Section):
    """Branching rollouts (:mod:`mulligan.engine.fork`): replay each episode of a recorded run
    up to a turn, then sample continuations. Hashed only when used, so other runs' hashes stay
    what they were."""

    fork_from: Path | None = Field(
        default=None, description="the run directory whose episodes are replayed and branched"
    )
    at_turn: int = Field(
        default=0,
        ge=0,
        le=99,
        description="T: turns replayed from each parent; turn T+1 is sampled",
    )
    samples: int = Field(default=1, ge=1, le=1000, description="N: branches per parent episode")
    frozen: bool = Field(
        default=False,
        description="frozen history: each branch ends after its one sampled turn (T+1)",
    )

    @model_validator(mode="after")
    def _needs_source(self) -> ForkConfig:
        if self.fork_from is None and (self.at_turn, self.samples, self.frozen) != (0, 1, False):
            raise ValueError("--at-turn, --samples and --frozen need --fork-from RUN_DIR")
        return self


class ToolsConfig(_Section):
    """Tools a task's cells may call besides Python, and what backs them (MINT's
    ``wikipedia_search``: listed in reasoning prompts only when it has a backing)."""

    wikipedia: WikipediaMode = Field(
        default="off",
        description="wikipedia_search for MINT's reasoning tasks: off (not listed), offline "
        "(the searches recorded in MINT's logs, 'no result' otherwise) or live (Wikipedia's "
        "API; needs the network)",
    )
    wikipedia_index: Annotated[Path | None, NOT_HASHED] = Field(
        default=None,
        description="offline: a folder of MINT logs or the wikipedia_search.json that "
        "`mulligan import mint` writes",
    )
    wikipedia_url: Annotated[str, NOT_HASHED] = Field(
        default=WIKIPEDIA_API, description="live: the MediaWiki API endpoint"
    )


class ExecutionConfig(_Section):
    """How a run executes: none of it changes results (so none of it is hashed)."""

    out: Path | None = Field(
        default=None,
        description="run directory (default: a new runs/<time>-<model>-<suite>, see "
        "engine.rundir.default_run_dir)",
    )
    # bool first: pydantic's smart union then keeps ``false`` a bool instead of making it 0.
    fail_on_error: bool | int | float = Field(
        default=1,
        description="failed episodes that fail the run (exit 1): a count N >= 1, or a fraction "
        "0 < f < 1 of the run's episodes; default 1, any failed episode; false (the CLI's "
        "--no-fail-on-error): never, as Inspect's --no-fail-on-error",
    )
    concurrency: int = Field(default=4, ge=1, le=4096, description="episodes in flight")
    sandbox_pool: int = Field(default=2, ge=0, le=256)
    cache: CacheMode = Field(
        default="auto",
        description="response cache: auto = on for temperature 0, off otherwise",
    )
    base_url: str | None = Field(
        default=None, description="server URL(s) for openai-compatible/ models, comma-separated"
    )
    isolation: IsolationRequest = Field(
        default="auto", description="sandbox isolation: auto (bubblewrap) or a mode's name"
    )
    allow_weak_isolation: bool = Field(
        default=False,
        description="run model code under isolation weaker than bubblewrap where it does not "
        "work (unsafe; warned of loudly)",
    )

    # Beyond one machine (engine/executors, tasks/shard.py): where and which episodes run, never
    # what they produce.
    shard: str | None = Field(
        default=None,
        description="run only shard i of n (i/n, counted from 0), a partition by task key; "
        "join the shards with `mulligan merge`",
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="where episodes run: local (this process) or ray"
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join (default: start a local one)"
    )

    @field_validator("shard")
    @classmethod
    def _shard_spec(cls, value: str | None) -> str | None:
        return None if value is None else str(Shard.parse(value))

    @field_validator("fail_on_error")
    @classmethod
    def _count_or_fraction(cls, value: bool | int | float) -> bool | int | float:
        if isinstance(value, bool):  # false: never; true: any failed episode (a count of 1)
            return False if not value else 1
        if 0 < value < 1:
            return value
        if value >= 1 and float(value).is_integer():
            return int(value)
        raise ValueError(
            "must be a count of failed episodes (a whole number >= 1, e.g. 5) or a fraction "
            "of the run's episodes between 0 and 1 (e.g. 0.1); false (--no-fail-on-error): never"
        )


class RunConfig(BaseModel):
    """Everything that defines a run, grouped by consumer.

    Construct it from flat options (``RunConfig(turns=3)``, a config file, the CLI) or nested
    ones (``RunConfig(episode={"max_turns": 3})``); :meth:`options` gives the flat form back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    selection: TaskSelection = Field(default_factory=TaskSelection)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    episode: EpisodeLimits = Field(default_factory=EpisodeLimits)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    fork: ForkConfig = Field(default_factory=ForkConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    execution: Annotated[ExecutionConfig, NOT_HASHED] = Field(default_factory=ExecutionConfig)
    seed: int = 0
    epochs: int = Field(default=1, ge=1, le=100, description="attempts per sample")

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        return nest_options(flatten_options(data)) if isinstance(data, Mapping) else data

    @field_serializer("episode")
    def _episode_options(self, episode: EpisodeLimits, info: SerializationInfo) -> dict[str, Any]:
        # Fields of the reused model that are no run options stay out, so a dump validates back.
        skip = {name for section, name in _NOT_OPTIONS if section == "episode"}
        return episode.model_dump(mode=info.mode, exclude=skip)

    def options(self) -> dict[str, Any]:
        """Every option by its flat name, JSON-ready (the form stored in a run's manifest)."""
        dumped = self.model_dump(mode="json")
        return {
            name: dumped[o.section][o.field] if o.section else dumped[name]
            for name, o in OPTIONS.items()
        }

    def with_options(self, **options: Any) -> RunConfig:
        """A copy with ``options`` (flat or nested) changed, validated."""
        current = {name: self._value(option) for name, option in OPTIONS.items()}
        return RunConfig.model_validate({**current, **flatten_options(options)})

    def _value(self, option: Option) -> Any:
        holder = self if option.section is None else getattr(self, option.section)
        return getattr(holder, option.field)

    def generate_params(self) -> GenerateParams:
        return GenerateParams(
            temperature=self.policy.temperature,
            top_p=self.policy.top_p,
            max_tokens=self.policy.max_tokens,
            seed=self.seed,
        )

    def result_fields(self) -> dict[str, Any]:
        """The options that define results (hashed), by flat name; of a role's backend
        arguments, those that define results (:func:`result_options`)."""
        return result_options(self.options())

    def config_hash(self) -> str:
        # Roles without backend arguments hash as before such arguments existed.
        fields = {
            name: value
            for name, value in self.result_fields().items()
            if value or name not in _ARGS_OF_MODEL
        }
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Option:
    """One run option: its flat name (as config files, the CLI and stored runs write it) and
    its nested home, ``RunConfig.<section>.<field>`` (or ``RunConfig.<field>`` at the top).

    Attributes:
        hashed: whether it defines results (is part of the config hash).
    """

    name: str
    section: str | None
    field: str
    hashed: bool


# A role's options are prefixed by the role, except the policy's (the run's own model).
_PREFIX = {"feedback": "feedback_", "judge": "judge_"}
# Flat names that are not prefix + field: the names options had before the nesting.
_RENAMED = {
    ("feedback", "spec"): "feedback",
    ("episode", "max_turns"): "turns",
    ("episode", "max_proposals"): "proposals",
    ("policy", "args_file"): "model_config",
    ("feedback", "args_file"): "feedback_model_config",
    ("judge", "args_file"): "judge_model_config",
}
# Fields of a reused section that are not run options (episodes do not read it; the tool-call
# bounds of environment tasks keep their defaults until they are made flags).
_NOT_OPTIONS = {
    ("episode", "check_timeout_s"),
    ("episode", "tool_calls_per_cell"),
    ("episode", "tool_calls_per_episode"),
}


def _section_types() -> dict[str, type[BaseModel]]:
    return {
        name: info.annotation
        for name, info in RunConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }


def _derive_options() -> dict[str, Option]:
    """The flat option names, from the sections' fields (see ``_PREFIX`` and ``_RENAMED``)."""
    sections = _section_types()
    found: dict[str, Option] = {}
    for section, info in RunConfig.model_fields.items():
        hashed = NOT_HASHED not in info.metadata
        if section not in sections:
            found[section] = Option(section, None, section, hashed)
            continue
        for name, sub in sections[section].model_fields.items():
            if (section, name) in _NOT_OPTIONS:
                continue
            flat = _RENAMED.get((section, name), _PREFIX.get(section, "") + name)
            assert flat not in found, f"two options named {flat!r}"
            found[flat] = Option(flat, section, name, hashed and NOT_HASHED not in sub.metadata)
    return found


OPTIONS: dict[str, Option] = _derive_options()
"""Every run option by flat name: the one mapping between flat and nested form."""
_SECTIONS = _section_types()
_BY_PATH = {(o.section, o.field): o for o in OPTIONS.values() if o.section is not None}
# A role's backend-arguments option -> the option naming its model.
_ARGS_OF_MODEL = {
    o.name: _BY_PATH[(o.section, "model")].name
    for o in OPTIONS.values()
    if o.field == "model_args" and o.section is not None
}


# Result-defining options added after runs were stored: left out of the hash at their default
# (the behaviour those runs had), so existing config hashes do not change.
_HASHED_UNLESS_DEFAULT: dict[str, Any] = {
    "stop": "at-correct",
    "answer_format": "tagged",
    "wikipedia": "off",
    **{
        o.name: ForkConfig().model_dump(mode="json")[o.field]
        for o in OPTIONS.values()
        if o.section == "fork"
    },
}


def result_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The result-defining options among flat ``options`` (a config's, or a stored run's
    manifest filled in with defaults): the hashed ones, and of each role's backend arguments
    only those that change its model's results (:mod:`mulligan.models.args`)."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        option = OPTIONS.get(name)
        if option is None or not option.hashed:
            continue
        if name in _HASHED_UNLESS_DEFAULT and value == _HASHED_UNLESS_DEFAULT[name]:
            continue  # an option added later, unused: older runs keep their hashes
        if name in _ARGS_OF_MODEL:
            value = result_args(options.get(_ARGS_OF_MODEL[name]), value or {})
        out[name] = value
    return out


def flatten_options(data: Mapping[str, Any]) -> dict[str, Any]:
    """Options by flat name, from flat and/or nested form (a section given as a mapping or as
    its model). A nested key that is no option is kept as ``section.key``, so validation
    reports it as an unknown option."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        section = _SECTIONS.get(key)
        if section is not None and isinstance(value, section):
            # A section's model: its options (a field that is no option keeps its default).
            for name in section.model_fields:
                if (option := _BY_PATH.get((key, name))) is not None:
                    flat[option.name] = getattr(value, name)
        elif section is not None and isinstance(value, Mapping):
            for name, sub in value.items():
                option = _BY_PATH.get((key, str(name)))
                flat[option.name if option is not None else f"{key}.{name}"] = sub
        else:
            flat[key] = value  # a flat option (``feedback: binary`` is one), or unknown
    return flat


def nest_options(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested form of flat options (unknown names are kept, for validation to report)."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        option = OPTIONS.get(name)
        if option is None or option.section is None:
            nested[name] = value
        else:
            nested.setdefault(option.section, {})[option.field] = value
    return nested


def _underscored(data: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or TOML config file into a dict (unvalidated)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value at the top level")
    return {
        key: _underscored(value) if key in _SECTIONS and isinstance(value, dict) else value
        for key, value in _underscored(data).items()
    }


def parse_model_args(value: Any) -> dict[str, Any]:
    """Backend arguments from ``key=value`` strings (``-M``, repeatable; a value is parsed as
    JSON when it parses, else kept as a string), or from a mapping (a file's)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("backend argument names must be strings")
        return dict(value)
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected key=value strings or a mapping of backend arguments")
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not key=value (e.g. -M max_model_len=4096)")
        try:
            out[key.strip()] = json.loads(text)
        except ValueError:
            out[key.strip()] = text
    return out


def load_model_args(path: Path, option: str) -> dict[str, Any]:
    """A YAML, TOML or JSON file's mapping of backend arguments (``--model-config``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{option}: cannot read {path} ({exc.strerror})") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
        kind = path.suffix.lstrip(".").upper() or "YAML"
        raise ConfigError(f"{option}: {path} is not valid {kind}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"{option}: {path} must hold a mapping of argument: value")
    return data


def _given(value: Any) -> bool:
    # None: not given; (): a repeatable flag (-M) given no times.
    return value is not None and value != ()


def build_config(
    file: Path | None, overrides: dict[str, Any], base: Mapping[str, Any] | None = None
) -> RunConfig:
    """Merge a config file with CLI overrides (flat names; None means 'not given') and
    validate. Both are merged by flat name, so an override replaces one option of a nested
    section, not the section; a role's backend arguments are merged key by key (``-M``
    adds to or replaces the file's). ``base`` (flat options, e.g. a fork source run's) lies
    under both."""
    data: dict[str, Any] = dict(base or {})
    if file:
        data.update(flatten_options(load_config_file(file)))
    for name, value in overrides.items():
        if not _given(value):
            continue
        if name in _ARGS_OF_MODEL and name in data:
            try:
                value = {**parse_model_args(data[name]), **parse_model_args(value)}
            except ValueError as exc:
                raise ConfigError(f"invalid configuration: {name}: {exc}") from exc
        data[name] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        where = str(file) if file else "command-line options"
        raise ConfigError(format_validation_error(exc, where)) from exc


def _option_name(loc: tuple[int | str, ...]) -> str:
    """An error's location by the option's flat name (``episode.max_turns`` -> ``turns``)."""
    if len(loc) >= 2 and (option := _BY_PATH.get((str(loc[0]), str(loc[1])))) is not None:
        loc = (option.name, *loc[2:])
    return ".".join(str(p) for p in loc) or "(top level)"


def format_validation_error(exc: ValidationError, where: str) -> str:
    """Where, which option, what is wrong and what was given: on one line for one problem
    (the CLI's one ``error:`` line), one line per problem under a heading for several."""
    problems = []
    for err in exc.errors():
        field = _option_name(err["loc"])
        given = err.get("input")
        hint = "" if err["type"] == "missing" else f" (got {given!r})"
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(OPTIONS))
            problems.append(f"{field}: unknown option; known options: {known}")
        else:
            # pydantic's "Value error, " prefix says nothing to a user.
            problems.append(f"{field}: {err['msg'].removeprefix('Value error, ')}{hint}")
    if len(problems) == 1:
        return f"invalid configuration in {where}: {problems[0]}"
    return "\n".join([f"invalid configuration in {where}:", *(f"  {p}" for p in problems)])
