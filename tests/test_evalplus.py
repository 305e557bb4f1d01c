"""HumanEval+ and MBPP+ (EvalPlus): loading, MBPP+ input types, EvalPlus's output rule and
special oracles, and a few tasks judged in the sandbox (every task's canonical solution is
checked by ``benchmarks/standard_suites.py``). Skipped, naming the file, without the data."""

from __future__ import annotations

from pathlib import Path

from conftest import require_shared
from mulligan.tasks import get_checker, load_tasks
from mulligan.tasks.checkers.calls import CallResult
from mulligan.tasks.checkers.evalplus import output_matches
from mulligan.tasks.evalplus import HUMANEVALPLUS_FILE, MBPPPLUS_FILE
from test_checkers_runner import code_runner


def _data() -> Path:
    return require_shared(HUMANEVALPLUS_FILE.path, MBPPPLUS_FILE.path)


def test_counts_groups_and_inputs() -> None:
    data = _data()
    he = load_tasks("humaneval+", data_dir=data)  # a run takes the plus group
    assert len(he) == 164 and {t.suite for t in he} == {"humaneval+/plus"}
    assert sum(len(t.metadata["base_input"]) for t in he) == 1570
    assert sum(len(t.metadata["plus_input"]) for t in he) == 122_683
    mbpp = load_tasks("mbpp+", ["base"], data_dir=data)
    assert len(mbpp) == 378 and {t.suite for t in mbpp} == {"mbpp+/base"}
    assert sum(len(t.metadata["base_input"]) for t in mbpp) == 1174
    assert sum(len(t.metadata["plus_input"]) for t in mbpp) == 39_841


def test_mbpp_plus_inputs_get_evalplus_types() -> None:
    tasks = {t.id: t for t in load_tasks("mbpp+", ["base"], data_dir=_data())}
    assert tasks["Mbpp/2"].metadata["base_input"][0] == ((3, 4, 5, 6), (5, 7, 4, 10))
    first = tasks["Mbpp/124"].metadata["base_input"][0]
    assert type(first[0]) is float and type(first[1]) is complex
    assert tasks["Mbpp/2"].prompt.startswith("Write a function to find the shared elements")


def _task(benchmark: str, entry: str, atol: float = 0.0) -> object:
    from mulligan.tasks import Task

    return Task(
        id="t",
        suite=f"{benchmark}/plus",
        category="code_generation",
        prompt="p",
        reference="",
        checker="evalplus",
        gold_solution="",
        metadata={"benchmark": benchmark, "entry_point": entry, "atol": atol},
    )


def test_evalplus_output_rule_and_special_oracles() -> None:
    ok = lambda v: CallResult("ok", value=v)  # noqa: E731
    plain = _task("humaneval+", "f")
    assert output_matches(plain, (), ok([1, 2]), [1, 2])  # type: ignore[arg-type]
    assert not output_matches(plain, (), ok((1, 2)), [1, 2])  # type: ignore[arg-type]
    assert output_matches(plain, (), ok(0.1 + 0.2), 0.3)  # type: ignore[arg-type]  # 1e-6 for floats
    assert not output_matches(plain, (), ok(0.3001), 0.3)  # type: ignore[arg-type]
    assert not output_matches(plain, (), CallResult("raised", error="x"), None)  # type: ignore[arg-type]
    zero = _task("humaneval+", "find_zero", atol=1e-4)
    assert output_matches(zero, ([-6, 11, -6, 1],), ok(3.00001), 1.0)  # type: ignore[arg-type]
    assert not output_matches(zero, ([-6, 11, -6, 1],), ok(2.5), 1.0)  # type: ignore[arg-type]
    sets = _task("mbpp+", "similar_elements")
    assert output_matches(sets, (), ok((5, 4)), (4, 5))  # type: ignore[arg-type]
    assert not output_matches(sets, (), ok([[1]]), (4, 5))  # type: ignore[arg-type]  # unhashable
    not_none = _task("mbpp+", "check_str")
    assert output_matches(not_none, (), ok("match"), True)  # type: ignore[arg-type]
    assert not output_matches(not_none, (), ok(None), True)  # type: ignore[arg-type]
    assert output_matches(not_none, (), ok(None), False)  # type: ignore[arg-type]
    a_match = CallResult("unserialisable", error="not plain data: a Match is not plain data")
    assert output_matches(not_none, (), a_match, True)  # type: ignore[arg-type]
    assert not output_matches(not_none, (), CallResult("raised", error="x"), False)  # type: ignore[arg-type]


async def test_canonical_passes_and_wrong_fails_in_the_sandbox() -> None:
    data = _data()
    wanted = {"HumanEval/0", "HumanEval/32", "Mbpp/2", "Mbpp/124", "Mbpp/737"}
    tasks = [
        t
        for suite in ("humaneval+", "mbpp+")
        for t in load_tasks(suite, ["base"], data_dir=data)
        if t.id in wanted
    ]
    checker = get_checker("evalplus")
    off_by_one = "def similar_elements(a, b):\n    return tuple(set(a) & set(b))[1:]\n"
    async with code_runner() as runner:
        for task in tasks:
            gold = await checker.check(task.gold_solution, task, runner)
            assert gold.correct, (task.id, gold.detail)
            assert not (await checker.check("xyzzy", task, runner)).correct
        mbpp2 = next(t for t in tasks if t.id == "Mbpp/2")
        wrong = await checker.check(off_by_one, mbpp2, runner)
    assert not wrong.correct and "expected" in wrong.detail


async def test_results_over_a_runs_output_cap_are_fetched_in_smaller_runs() -> None:
    """60 outputs of 30,000 characters overflow one run's 1 MB report: the inputs whose
    results did not come back run again in halves, and every result arrives."""
    from mulligan.tasks.checkers.evalplus import call_all

    program = "def big(n):\n    return 'x' * 30000 + str(n)\n"
    inputs = [(n,) for n in range(60)]
    async with code_runner() as runner:
        results = await call_all(runner, program, "big", inputs)
    assert [r.status for r in results] == ["ok"] * 60
    assert results[59].value.endswith("59")
