"""The standard suites (GSM8K test, MATH-500, MBPP full and sanitized, RefineBench's sample)
against the shared data: counts, splits, fields, and that every task's gold answer passes its
checker and a wrong one fails (a fixed spread of each suite; every task in
``benchmarks/standard_suites.py``). Skipped, naming the file, without ``../shared/data``."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_shared
from mulligan.tasks import SUITES, load_suite, load_tasks
from mulligan.tasks.data import DATASETS
from test_checkers_gold import WRONG, NoCodeRunner, failures, judge_all
from test_checkers_runner import code_runner

COUNTS = {
    ("gsm8k-test", None): 1319,
    ("math500", None): 500,
    ("mbpp-full", "test"): 500,
    ("mbpp-full", "validation"): 90,
    ("mbpp-full", "prompt"): 10,
    ("mbpp-full", "train"): 374,
    ("mbpp-sanitized", "test"): 257,
    ("mbpp-sanitized", "validation"): 43,
    ("mbpp-sanitized", "prompt"): 7,
    ("mbpp-sanitized", "train"): 120,
    ("refinebench", "exact-match"): 80,
    ("refinebench", "free-form"): 29,
}


def _data(suite: str) -> Path:
    return require_shared(*(f.path for f in DATASETS[str(SUITES[suite].data_pull)].files))


@pytest.mark.parametrize(("suite", "group"), list(COUNTS))
def test_counts_match_the_published_sizes(suite: str, group: str | None) -> None:
    assert SUITES[suite].count(group, _data(suite)) == COUNTS[suite, group]


def test_mbpp_groups_follow_the_authors_split_and_runs_take_test() -> None:
    data = _data("mbpp-full")
    test = load_tasks("mbpp-full", data_dir=data)
    assert [t.id for t in test] == [str(i) for i in range(11, 511)]
    assert {t.suite for t in test} == {"mbpp-full/test"}
    validation = load_tasks("mbpp-full", ["validation"], data_dir=data)
    assert [int(t.id) for t in validation] == list(range(511, 601))
    sanitized = load_tasks("mbpp-sanitized", ["test", "validation"], data_dir=data)
    assert len(sanitized) == 257 + 43
    assert all(11 <= int(t.id) <= 600 for t in sanitized)
    # the prompt names the function through the first assert, as MINT's MBPP prompts do
    first = test[0]
    assert first.prompt.endswith(first.metadata["test_list"][0])
    assert first.checker == "mbpp" and first.metadata["mint_task_type"] == "mbpp"


def test_gsm8k_reference_is_the_final_answer() -> None:
    tasks = load_suite("gsm8k-test", _data("gsm8k-test"))
    first = tasks[0]
    assert first.metadata["solution"].rstrip().endswith(f"#### {first.reference}")
    assert {t.checker for t in tasks} == {"number"}
    assert "1,450,000" in {t.reference for t in tasks}  # commas kept, read by the checker


def test_refinebench_carries_its_checklists() -> None:
    tasks = load_suite("refinebench", _data("refinebench"))
    assert sum(len(t.checklist) for t in tasks) == 1016
    assert len({t.id for t in tasks}) == 109
    exact = [t for t in tasks if t.suite == "refinebench/exact-match"]
    assert exact[0].reference == "46.24"  # the final <answer>, not the worked reference
    with_materials = [t for t in tasks if "\n\nMaterials:\n" in t.prompt]
    assert with_materials and "{'content'" not in with_materials[0].prompt


def test_standard_suites_ignore_mint_checker_mode() -> None:
    """Strict checkers whatever --checkers says: MINT's lenient rules reproduce MINT only."""
    data = _data("gsm8k-test")
    lenient = load_tasks("gsm8k-test", limit=3, data_dir=data, checkers="mint")
    assert [t.checker for t in lenient] == ["number"] * 3


# Every task's gold is judged by benchmarks/standard_suites.py; here a fixed spread of them
# (math-verify's worker takes about 0.1 s a comparison on a busy machine).
@pytest.mark.parametrize(
    ("suite", "step"), [("gsm8k-test", 20), ("math500", 25), ("refinebench", 1)]
)
async def test_reasoning_gold_passes_and_wrong_fails(suite: str, step: int) -> None:
    tasks = load_suite(suite, _data(suite))[::step]
    runner = NoCodeRunner()
    gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
    wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert failures(tasks, gold, True) == []
    assert failures(tasks, wrong, False) == []


async def test_sampled_mbpp_gold_passes_and_wrong_fails() -> None:
    data = _data("mbpp-full")
    tasks = [
        t
        for suite in ("mbpp-full", "mbpp-sanitized")
        for group in SUITES[suite].groups
        for t in load_tasks(suite, [group], data_dir=data)[::60]
    ]
    assert len(tasks) >= 16
    async with code_runner() as runner:
        gold = await judge_all(tasks, [t.gold_solution for t in tasks], runner)
        wrong = await judge_all(tasks, [WRONG] * len(tasks), runner)
    assert failures(tasks, gold, True) == []
    assert failures(tasks, wrong, False) == []
