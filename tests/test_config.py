"""RunConfig: option names, nesting, and config hashes that existing runs resume by."""

from __future__ import annotations

from typing import Any

import pytest

from mulligan.config import RunConfig

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
OPTIONS = {
    "suite", "tasks", "data_dir", "limit", "sample", "checkers", "model", "turns", "proposals",
    "epochs", "feedback", "feedback_model", "feedback_temperature", "feedback_max_tokens",
    "feedback_concurrency", "judge_model", "judge_temperature", "judge_max_tokens",
    "judge_concurrency", "temperature", "top_p", "max_tokens", "seed", "cell_timeout_s",
    "memory_mb", "in_context_example", "temperature_step", "temperature_max", "reject_repeats",
    "cache", "base_url", "out", "concurrency", "sandbox_pool",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PINNED))
def test_config_hashes_of_flat_options_are_pinned(name: str) -> None:
    options, expected = PINNED[name]
    assert RunConfig.model_validate(options).config_hash() == expected


def test_result_fields_are_the_flat_result_defining_options() -> None:
    operational = {
        "data_dir", "out", "concurrency", "sandbox_pool", "cache", "base_url",
        "feedback_concurrency", "judge_concurrency",
    }  # fmt: skip
    assert set(RunConfig().result_fields()) == OPTIONS - operational
