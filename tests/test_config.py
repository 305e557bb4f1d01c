"""RunConfig: option names, nesting, and config hashes that existing runs resume by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mulligan.config import OPTIONS, ConfigError, RunConfig, build_config

# Hashes computed with the flat RunConfig (before it was nested by consumer): a run stored by
# that code must resume, so these must never change.
PINNED: dict[str, tuple[dict[str, Any], str]] = {
    "defaults": ({}, "5089e6e57847532f"),
    "selection": (
        {"suite": "mint", "tasks": "gsm8k, math", "limit": 3, "sample": "random",
         "checkers": "strict"},
        "9710856c6e8c34d5",
    ),
    "policy": (
        {"model": "scripted/wrong", "temperature": 0.7, "top_p": 0.9, "max_tokens": 128,
         "seed": 7, "epochs": 3},
        "b45e3467c72075fc",
    ),
    "feedback": (
        {"feedback": "tests+llm:expert", "feedback_model": "scripted/reference",
         "feedback_temperature": 0.2, "feedback_max_tokens": 64},
        "38c48f84da441e02",
    ),
    "judge": (
        {"judge_model": "scripted/reference", "judge_temperature": 0.1, "judge_max_tokens": 32},
        "a58bb83ccda89c0c",
    ),
    "episode": (
        {"turns": 3, "proposals": 1, "cell_timeout_s": 5, "in_context_example": False,
         "temperature_step": 0.1, "temperature_max": 0.8, "reject_repeats": True},
        "11f99b06506491ac",
    ),
    "sandbox": ({"memory_mb": 2048}, "1f0da317057d7c94"),
    "operational": (  # options that do not change results leave the hash alone
        {"out": "runs/x", "concurrency": 64, "sandbox_pool": 8, "cache": "off",
         "base_url": "http://h:1/v1", "feedback_concurrency": 2, "judge_concurrency": 3,
         "data_dir": "/data"},
        "5089e6e57847532f",
    ),
}  # fmt: skip

# Today's (flat) option names; config files and the CLI keep accepting every one.
FLAT_NAMES = {
    "suite", "tasks", "data_dir", "limit", "sample", "checkers", "model", "turns", "proposals",
    "epochs", "feedback", "feedback_model", "feedback_temperature", "feedback_max_tokens",
    "feedback_concurrency", "judge_model", "judge_temperature", "judge_max_tokens",
    "judge_concurrency", "temperature", "top_p", "max_tokens", "seed", "cell_timeout_s",
    "memory_mb", "in_context_example", "temperature_step", "temperature_max", "reject_repeats",
    "cache", "base_url", "out", "concurrency", "sandbox_pool", "isolation",
    "allow_weak_isolation", "fail_on_error", "model_args", "model_config", "feedback_model_args",
    "feedback_model_config", "judge_model_args", "judge_model_config",
}  # fmt: skip
# Options added since the nesting that do not change results (so are not hashed).
ADDED_SINCE = {
    "isolation", "allow_weak_isolation", "judge_reads_feedback", "wikipedia_index",
    "wikipedia_url", "shard", "executor", "ray_address",
}  # fmt: skip
# Result-defining options added since: hashed only when set (away from their default, the
# behaviour of runs stored before them), so the pinned hashes above hold.
ADDED_HASHED_WHEN_SET = {"fork_from", "at_turn", "samples", "frozen"}
ADDED_HASHED_SINCE = {"stop": "at-correct", "wikipedia": "off", "answer_format": "tagged"}


@pytest.mark.parametrize("name", sorted(ADDED_HASHED_SINCE))
def test_added_result_options_hash_only_away_from_their_default(name: str) -> None:
    default = ADDED_HASHED_SINCE[name]
    assert RunConfig.model_validate({name: default}).config_hash() == PINNED["defaults"][1]
    other = {"stop": "never", "wikipedia": "offline", "answer_format": "reply"}[name]
    assert RunConfig.model_validate({name: other}).config_hash() != PINNED["defaults"][1]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_config_hashes_of_flat_options_are_pinned(name: str) -> None:
    options, expected = PINNED[name]
    assert RunConfig.model_validate(options).config_hash() == expected


def test_result_fields_are_the_flat_result_defining_options() -> None:
    operational = {
        "data_dir", "out", "concurrency", "sandbox_pool", "cache", "base_url",
        "feedback_concurrency", "judge_concurrency", "isolation", "allow_weak_isolation",
        "fail_on_error", "model_config", "feedback_model_config", "judge_model_config",
        "judge_reads_feedback",
    }  # fmt: skip
    # Options added later are result fields only away from their default.
    assert set(RunConfig().result_fields()) == FLAT_NAMES - operational
    assert RunConfig.model_validate({"stop": "never"}).result_fields()["stop"] == "never"


def test_the_option_names_are_todays_flat_names() -> None:
    assert set(OPTIONS) == FLAT_NAMES | ADDED_SINCE | ADDED_HASHED_WHEN_SET | set(
        ADDED_HASHED_SINCE
    )
    assert all(OPTIONS[name].hashed for name in ADDED_HASHED_WHEN_SET | set(ADDED_HASHED_SINCE))
    assert not any(OPTIONS[name].hashed for name in ADDED_SINCE)
    assert all(OPTIONS[name].hashed for name in ADDED_HASHED_SINCE)
    assert (OPTIONS["turns"].section, OPTIONS["turns"].field) == ("episode", "max_turns")
    assert (OPTIONS["feedback"].section, OPTIONS["feedback"].field) == ("feedback", "spec")
    assert (OPTIONS["judge_concurrency"].section, OPTIONS["judge_concurrency"].hashed) == (
        "judge",
        False,
    )
    assert (OPTIONS["seed"].section, OPTIONS["seed"].hashed) == (None, True)


def test_flat_and_nested_options_give_the_same_config() -> None:
    flat = RunConfig(turns=3, feedback="binary", feedback_model="a/b", memory_mb=256, out="o")
    nested = RunConfig.model_validate(
        {
            "episode": {"max_turns": 3},
            "feedback": {"spec": "binary", "model": "a/b"},
            "sandbox": {"memory_mb": 256},
            "execution": {"out": "o"},
        }
    )
    assert flat == nested and flat.config_hash() == nested.config_hash()
    assert flat.episode.max_turns == 3 and str(flat.feedback.spec) == "binary"
    assert flat.feedback.model == "a/b" and flat.execution.out == Path("o")
    assert RunConfig.model_validate(flat.options()) == flat  # the flat form round-trips
    assert RunConfig.model_validate_json(flat.model_dump_json()) == flat  # so does the nested
    assert flat.with_options(turns=4).episode.max_turns == 4
    assert flat.with_options(feedback="none").feedback.model == "a/b"  # one option, not a section
    assert str(flat.with_options(feedback={"model": "c/d"}).feedback.spec) == "binary"


def test_a_nested_file_with_flat_overrides_merges_option_by_option(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "feedback:\n  spec: binary+llm\n  model: scripted/wrong\nepisode:\n  max-turns: 4\n"
    )
    config = build_config(path, {"feedback": "llm", "proposals": 1, "turns": None})
    assert str(config.feedback.spec) == "llm" and config.feedback.model == "scripted/wrong"
    assert (config.episode.max_turns, config.episode.max_proposals) == (4, 1)


def test_errors_name_options_by_their_flat_names() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(None, {"turns": 0, "episode": {"check_timeout_s": 3}, "modle": "x"})
    message = str(caught.value)
    assert "  turns: Input should be greater than or equal to 1 (got 0)" in message
    assert "episode.check_timeout_s: unknown option" in message  # not a run option
    known = ", ".join(
        sorted(FLAT_NAMES | ADDED_SINCE | ADDED_HASHED_WHEN_SET | set(ADDED_HASHED_SINCE))
    )
    assert f"  modle: unknown option; known options: {known}" in message


def test_every_run_option_of_the_cli_is_a_config_option() -> None:
    import typer

    from mulligan.cli import app

    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    cli_only = {"config", "resume", "progress", "no_fail_on_error"}
    params = {p.name for p in run.params} - cli_only
    assert params <= set(OPTIONS), params - set(OPTIONS)


@pytest.mark.parametrize("tasks", ["gsm8k, math", "mint/gsm8k,mint/math"])
def test_tasks_alone_hash_as_the_older_suite_and_tasks(tasks: str) -> None:
    """lm-eval's spelling (``--tasks gsm8k,math``, the suite following from the names) is the
    same run as the older ``--suite mint --tasks gsm8k,math``: same options, same pinned hash."""
    options, pinned = PINNED["selection"]
    newer = {k: v for k, v in options.items() if k != "suite"} | {"tasks": tasks}
    config = build_config(None, newer)
    assert config.selection.suite == "mint" and config.selection.tasks == ("gsm8k", "math")
    assert config.config_hash() == pinned
    older = build_config(None, {**options, "tasks": tasks})  # a group's prefix is optional
    assert older.config_hash() == pinned
    assert build_config(None, {"tasks": "mint"}).options() == RunConfig(suite="mint").options()


def test_fork_options_are_hashed_only_when_set() -> None:
    plain = RunConfig()
    assert not set(plain.result_fields()) & ADDED_HASHED_WHEN_SET
    fork = RunConfig(fork_from="runs/a", at_turn=1, samples=4)
    assert fork.result_fields()["samples"] == 4 and fork.config_hash() != plain.config_hash()
    assert RunConfig(fork_from="runs/a", samples=2).config_hash() != fork.config_hash()
    assert RunConfig(at_turn=0, samples=1, frozen=False).config_hash() == plain.config_hash()
    with pytest.raises(ValueError, match="need --fork-from"):
        RunConfig(samples=4)
