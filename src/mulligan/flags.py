"""How each run option is spelled on the command line: its flag(s), help text, metavar and the
type its value is parsed as.

:data:`FLAGS` holds one :class:`Flag` per run option (:data:`mulligan.config.OPTIONS`), keyed by
the option's flat name, in the order ``mulligan run --help`` lists them. ``mulligan run`` builds
its options from it (``cli._run_option_params``), so an option's name, type, default and
validation live in :mod:`mulligan.config`, its command-line spelling here, and nowhere else.
``tests/test_flags.py`` checks that every option has a row, so a new option cannot be left
without a flag (or an explicit ``only_in_files``).

A flag's value type is the option's field type (``None`` dropped) unless the row names another:
the command line gives ``--tasks gsm8k,math`` as one string where the config holds a tuple. The
choices of a ``Literal`` field are therefore the config's own. This module imports no typer:
:mod:`mulligan.cli` turns the rows into typer options.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from mulligan.config import OPTIONS, ConfigError, RunConfig


@dataclass(frozen=True)
class Off:
    """A second flag that sets a non-boolean option to false (``--no-fail-on-error`` for
    ``fail_on_error: false``); given together with the option's own flag it is an error."""

    spelling: str
    help: str

    @property
    def name(self) -> str:
        """Its parameter's name: ``--no-fail-on-error`` -> ``no_fail_on_error``."""
        return self.spelling.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Flag:
    """One run option on the command line.

    Attributes:
        help: what the option does, as ``--help`` shows it (its default is appended there).
        spellings: the flag and its short form (``"--model-arg", "-M"``), or a boolean's on/off
            pair (``"--frozen/--no-frozen"``); empty: ``--`` and the name with dashes.
        metavar: the value's placeholder in ``--help`` (``KEY=VALUE``); None: the type's.
        type: the value's type on the command line when it is not the field's own (a list of
            ``key=value`` strings for a dict, a string for a tuple or a parsed spec).
        off: a second flag that sets the option to false.
        only_in_files: no flag at all: only a config file sets the option.
    """

    help: str
    spellings: tuple[str, ...] = ()
    metavar: str | None = None
    type: Any = None
    off: Off | None = None
    only_in_files: bool = False


def _file_only(help: str) -> Flag:
    return Flag(help, only_in_files=True)


def _model_arg(role: str, spellings: tuple[str, ...], help: str | None = None) -> Flag:
    text = help or f"backend argument for the {role} model (repeatable)"
    return Flag(text, spellings, metavar="KEY=VALUE", type=list[str])


FLAGS: dict[str, Flag] = {
    # What runs.
    "suite": Flag(
        "older spelling: the group (or task) to run, as --tasks NAME; with it, --tasks "
        "picks its tasks (or a task's sample ids)"
    ),
    "tasks": Flag(
        "what to run, comma-separated: tasks (gsm8k,math; humaneval; mint/humaneval), "
        "a group (mint: all its tasks), or your own tasks: file:PATH (JSONL or YAML) or "
        "hf:NAME[:config]:split; see `mulligan tasks`",
        type=str,
    ),
    "data_dir": Flag("MINT data directory (none: $MULLIGAN_DATA_DIR, else ~/.cache/mulligan/data)"),
    "limit": Flag("N samples of each task (none: all)"),
    "sample": Flag("which N samples: the first, or random (seeded by --seed)"),
    "checkers": Flag("mint (MINT's lenient checkers) or strict"),
    # The policy model.
    "model": Flag("policy model, provider/model"),
    "model_args": _model_arg(
        "policy",
        ("--model-arg", "-M"),
        "backend argument for the policy model, key=value (repeatable; values parsed "
        "as JSON), e.g. -M max_model_len=8192 -M mode=completion",
    ),
    "model_config": Flag(
        "YAML, TOML or JSON file of backend arguments (-M wins key by key)", metavar="FILE"
    ),
    # The episode.
    "turns": Flag("max turns k"),
    "proposals": Flag("max solution proposals p"),
    "epochs": Flag("attempts per sample"),
    # Feedback and its model.
    "feedback": Flag("feedback spec, e.g. none, binary, tests+llm:expert", type=str),
    "feedback_model": Flag("model for llm/critic/checklist feedback"),
    "feedback_temperature": Flag("feedback model's temperature"),
    "feedback_max_tokens": Flag("feedback model's max tokens per call"),
    "feedback_concurrency": Flag("feedback-model calls in flight"),
    "feedback_model_args": _model_arg("feedback", ("--feedback-model-arg",)),
    "feedback_model_config": Flag(
        "file of backend arguments for the feedback model", metavar="FILE"
    ),
    # The judge.
    "judge_model": Flag("LLM judge for reasoning answers the checker rejected (provider/model)"),
    "judge_temperature": Flag("judge's temperature"),
    "judge_max_tokens": Flag("judge's max tokens"),
    "judge_concurrency": Flag("judge calls in flight"),
    "judge_reads_feedback": Flag(
        "the judge also reads what verdict each textual feedback states (for the "
        "simulated user's agreement with the checker in the report)",
        ("--judge-reads-feedback/--judge-ignores-feedback",),
    ),
    "judge_model_args": _model_arg("judge", ("--judge-model-arg",)),
    "judge_model_config": Flag("file of backend arguments for the judge model", metavar="FILE"),
    # Sampling, and the friction mitigations of the episode.
    "temperature": Flag("policy sampling temperature"),
    "temperature_step": Flag("friction mitigation: raise temperature by this per turn"),
    "reject_repeats": Flag(
        "friction mitigation: refuse a proposal that repeats a wrong answer",
        ("--reject-repeats/--allow-repeats",),
    ),
    "answer_format": Flag(
        "tagged: MINT's format (code in <execute>, answers in <solution>); reply: no tools, "
        "the whole reply is the answer, every turn a proposal (RefineBench, Self-Refine)"
    ),
    "stop": Flag(
        "at-correct: an episode ends at its first correct proposal (MINT); never: it "
        "goes on until turns or proposals are used up, every proposal judged (regression, "
        "flips, self-refinement without the verdict bit)"
    ),
    "max_tokens": Flag("max tokens per model turn"),
    "seed": Flag("seeds sampling of samples and of the model"),
    # How the run executes.
    "concurrency": Flag("episodes in flight"),
    "cache": Flag("response cache (auto: on at temperature 0, off otherwise)"),
    "base_url": Flag("server URL(s) for openai-compatible/ models, comma-separated"),
    "isolation": Flag("sandbox isolation (auto: bubblewrap, never weaker)"),
    "allow_weak_isolation": Flag(
        "run model code under isolation weaker than bubblewrap where bubblewrap does "
        "not work (unsafe: model code may read your files and secrets)",
        ("--allow-weak-isolation/--strong-isolation-only",),
    ),
    # Tools.
    "wikipedia": Flag(
        "wikipedia_search in MINT's reasoning prompts: off (not listed), offline (the "
        "searches MINT's logs recorded; needs --wikipedia-index) or live (Wikipedia's API)"
    ),
    "wikipedia_index": Flag("offline: a folder of MINT logs or an imported wikipedia_search.json"),
    "wikipedia_url": Flag("live: the MediaWiki API endpoint"),
    # Where results go, and when the run fails.
    "out": Flag("run directory (default: a new runs/<time>-<model>-<task>)"),
    "fail_on_error": Flag(
        "failed episodes that fail the run (exit 1): a count N, or a fraction 0-1 of "
        "the episodes (default 1: any)",
        type=float,
        off=Off(
            "--no-fail-on-error",
            "exit 0 however many episodes failed (a run that stopped early still exits 2)",
        ),
    ),
    # Branching rollouts.
    "fork_from": Flag(
        "branch the episodes of this run: replay each to --at-turn, then sample "
        "--samples continuations (options not given are the source run's)"
    ),
    "at_turn": Flag("fork: T, the recorded turns replayed; T+1 is sampled"),
    "samples": Flag("fork: N, continuations sampled per parent episode"),
    "frozen": Flag(
        "fork: frozen history, each branch ends with its one sampled turn's verdict",
        ("--frozen/--no-frozen",),
    ),
    # Beyond one machine.
    "shard": Flag(
        "run only shard I of N (from 0), a partition by task key; join the shards "
        "with `mulligan merge`",
        metavar="I/N",
    ),
    "executor": Flag("where episodes run: local, or ray (pip install -e '.\\[ray]')"),
    "ray_address": Flag("Ray cluster to join (default: start a local one)", metavar="ADDR"),
    # No flag: rarely changed, set in a config file (README, "Options can also come from ...").
    "top_p": _file_only("the policy's nucleus sampling"),
    "cell_timeout_s": _file_only("wall time of one code cell in the sandbox, in seconds"),
    "in_context_example": _file_only("whether the prompt shows the task type's worked example"),
    "temperature_max": _file_only("the ceiling of --temperature-step's progressive temperature"),
    "memory_mb": _file_only("the sandbox worker's memory limit, in MB"),
    "sandbox_pool": _file_only("sandbox workers started ahead of need"),
}
"""Every run option's command-line spelling, by flat name, in ``--help`` order."""

# The value types a flag can take without a row naming one (typer parses each of them).
_PLAIN = (str, int, float, bool, Path)


@dataclass(frozen=True)
class RunFlag:
    """A flag of ``mulligan run``: the option it sets, its spelling and its value type."""

    name: str
    flag: Flag
    type: Any


def field_type(name: str) -> Any:
    """The type of run option ``name``'s config field (``Annotated`` markers dropped)."""
    option = OPTIONS[name]
    info = RunConfig.model_fields[option.section or option.field]
    if option.section is not None:
        info = info.annotation.model_fields[option.field]  # type: ignore[union-attr]
    return info.annotation


def flag_type(name: str) -> Any:
    """The type ``--<name>``'s value is parsed as: the row's, else the field's without None.

    Raises ``TypeError`` for a field type the command line cannot spell without help (a dict,
    a model): its row must then name a ``type``."""
    flag = FLAGS[name]
    if flag.type is not None:
        return flag.type
    kind = field_type(name)
    if get_origin(kind) in (Union, types.UnionType):
        rest = [a for a in get_args(kind) if a is not type(None)]
        kind = rest[0] if len(rest) == 1 else kind
    if kind in _PLAIN or get_origin(kind) is Literal:
        return kind
    raise TypeError(f"run option {name!r}: {kind!r} has no command-line form; give its Flag a type")


def spelling(name: str) -> str:
    """Run option ``name``'s flag as messages name it: ``--model-arg`` for ``model_args``."""
    spellings = FLAGS[name].spellings or (f"--{name.replace('_', '-')}",)
    return spellings[0].split("/")[0]


def run_flags() -> Iterator[RunFlag]:
    """The flags of ``mulligan run``, in ``--help`` order (options set only in files left out)."""
    for name, flag in FLAGS.items():
        if not flag.only_in_files:
            yield RunFlag(name, flag, flag_type(name))


def options_from_flags(values: Mapping[str, Any]) -> dict[str, Any]:
    """The run options given on the command line, by flat name (None: not given), from the
    parsed flags' values: an :class:`Off` flag given sets its option to false."""
    options = {name: value for name, value in values.items() if name in FLAGS}
    for name, flag in FLAGS.items():
        if flag.off is None or not values.get(flag.off.name):
            continue
        if options.get(name) is not None:
            raise ConfigError(
                f"{spelling(name)} and {flag.off.spelling} contradict each other; pass one"
            )
        options[name] = False
    return options
