"""Short answers judged in-process give the verdict a check worker gives (issue 17, item 2).

``TextChecker.judge_inline`` skips the worker's round trip for answers a checker's judge is
bounded for by construction. These tests run both paths on the same inputs: adversarial answers
at each checker's size limit (``check_inputs.adversarial_answers``) and a realistic corpus
(MINT's reasoning references and GSM8K's, with mutations, and every answer gpt-3.5-turbo
proposed in MINT's published logs), and compare the results (a judge's
own error counts as a result: the same type and message on both paths). The worst judge time
over the adversarial answers is measured, not asserted, by ``benchmarks/check_latency.py
--adversarial``.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from check_inputs import (
    BOMBS,
    SAMPLE_TASKS,
    adversarial_answers,
    inline_checkers,
    inline_size,
    judge_each,
    judge_inline_each,
)
from conftest import require_shared
from fuzz_strategies import ADVERSARIAL_TEXT
from mulligan.tasks import load_tasks
from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers import CHECKERS
from mulligan.tasks.checkers import verdicts as verdicts_module
from mulligan.tasks.checkers.mint_reasoning import MintNumericChecker
from mulligan.tasks.checkers.verdicts import TextChecker, _task_payload, declares_inline
from mulligan.tasks.checkers.workers import check_workers
from mulligan.tasks.mint_log import mint_solution_text, read_results

INLINE = {checker.name: checker for checker in inline_checkers()}


async def _same_on_both_paths(checker: TextChecker, task: Task, answers: list[str]) -> int:
    """Judge ``answers`` in-process and in a check worker; assert equal results wherever the
    in-process path decided. Returns how many it decided."""
    inline = judge_inline_each(checker, task, answers)
    worker = await check_workers().call(
        60.0, judge_each, pickle.dumps(checker), _task_payload(task), answers
    )
    decided = 0
    for answer, here, there in zip(answers, inline, worker, strict=True):
        if here is None:
            continue
        decided += 1
        assert here == there, (checker.name, task.reference, answer[:60])
    return decided


def test_the_fast_checkers_have_an_inline_path() -> None:
    # What the reasoning suites use, MINT's criteria and the strict ones (math_equiv is no
    # TextChecker: it decides plain numbers in-process itself and sends LaTeX to sympy).
    assert set(INLINE) == {
        "gsm8k", "math", "hotpotqa", "mmlu", "theoremqa", "number", "exact_match",
        "multiple_choice",
    }  # fmt: skip
    long_match = CHECKERS["exact_match_long"]
    assert isinstance(long_match, TextChecker)
    assert long_match.judge_inline("5", SAMPLE_TASKS["exact_match"][0]) is None


@pytest.mark.parametrize("name", sorted(INLINE))
async def test_adversarial_answers_at_the_limit_get_the_workers_verdict(name: str) -> None:
    checker = INLINE[name]
    size = inline_size(checker)
    answers = list(adversarial_answers(max(size, 16)).values())
    answers += [answer[: size // 2] for answer in adversarial_answers(max(size, 16)).values()]
    for task in SAMPLE_TASKS[name]:
        decided = await _same_on_both_paths(checker, task, answers)
        if name == "theoremqa":
            # A pre-decision: plain decimals only; the rest goes to a worker.
            plain = _plain_decimals()
            assert await _same_on_both_paths(checker, task, plain) == len(plain)
            for bomb in ("10**10**10", "9e999999999", "1" * 16, "round(1, -10**7)", " 5"):
                assert checker.judge_inline(bomb, task) is None
        else:
            assert decided == sum(len(answer) <= size for answer in answers)
        too_long = "9" * (size + 1)
        assert checker.judge_inline(too_long, task) is None


def _plain_decimals() -> list[str]:
    """theoremqa's in-process answers at their limit: 15 + 15 digits, signs, leading zeros."""
    return [
        "9" * 15, "-" + "9" * 15, "+" + "9" * 15, "9" * 15 + "." + "9" * 15,
        "-" + "0" * 15 + "." + "0" * 15, "0" * 15, "007", "00", "0", "-0", "5", "5.0", "4.9",
        "5.2", "-0.125", "-0.12", "1", "2", "0.0000000000001", "123456789012345",
    ]  # fmt: skip


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(st.sampled_from(sorted(INLINE)), ADVERSARIAL_TEXT)
def test_fuzzed_answers_get_the_workers_verdict(name: str, text: str) -> None:
    # The fuzz suite's adversarial text (tests/fuzz_strategies.py), cut to the inline limit.
    checker = INLINE[name]
    answers = [text[: inline_size(checker)], text[: inline_size(checker) // 3]]

    async def compare() -> None:
        for task in SAMPLE_TASKS[name]:
            await _same_on_both_paths(checker, task, answers)

    asyncio.run(compare())


async def test_check_judges_short_answers_without_a_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    class RecordingPool:
        async def call(self, timeout_s: float, function: object, *args: object) -> CheckResult:
            calls.append(args[-1])  # type: ignore[arg-type]
            return CheckResult(correct=False, score=0.0, detail="from the worker")

    monkeypatch.setattr(verdicts_module, "check_workers", RecordingPool)
    gsm8k = CHECKERS["gsm8k"]
    task = SAMPLE_TASKS["gsm8k"][0]
    assert (await gsm8k.check("18", task, None)).correct  # type: ignore[arg-type]
    assert calls == []
    long_answer = "18 " + "x" * 2_000
    assert (await gsm8k.check(long_answer, task, None)).detail == "from the worker"  # type: ignore[arg-type]
    assert calls == [long_answer]
    theoremqa = CHECKERS["theoremqa"]
    tq_task = SAMPLE_TASKS["theoremqa"][0]
    assert (await theoremqa.check("5", tq_task, None)).correct  # type: ignore[arg-type]
    assert (await theoremqa.check("2 + 3", tq_task, None)).detail == "from the worker"  # type: ignore[arg-type]
    assert calls == [long_answer, "2 + 3"]


class _OwnJudge(MintNumericChecker):
    """A plug-in's subclass with a judge of its own: not covered by its parent's bound."""

    def judge(self, answer: str, task: Task) -> CheckResult:
        return CheckResult(correct=True, score=1.0, detail=f"own judge: {len(answer)}")


class _SameJudge(MintNumericChecker):
    """A subclass that keeps its parent's judge keeps its parent's inline path."""


def test_a_subclass_with_its_own_judge_goes_to_a_worker() -> None:
    task = SAMPLE_TASKS["gsm8k"][0]
    assert not declares_inline(_OwnJudge)
    assert declares_inline(_SameJudge)
    assert declares_inline(MintNumericChecker)
    assert _SameJudge("x").judge_inline("18", task) is not None


async def test_a_judges_own_error_is_the_same_on_both_paths() -> None:
    # A task whose reference is not a number: the strict checker raises ValueError on both.
    task = SAMPLE_TASKS["number"][0].model_copy(update={"reference": "eighteen"})
    number = INLINE["number"]
    with pytest.raises(ValueError, match="is not a number"):
        await number.check("18", task)
    inline = judge_inline_each(number, task, ["18"])
    worker = await check_workers().call(
        60.0, judge_each, pickle.dumps(number), _task_payload(task), ["18"]
    )
    assert inline == worker
    assert inline[0] is not None and inline[0][0] == "raised"


# ------------------------------------------------------------------ realistic corpus


def _mutations(reference: str) -> Iterator[str]:
    """Answers a model might give for ``reference``: itself, dressed up, near misses."""
    ref = reference.strip()
    yield from (
        ref, f" {ref} ", ref.upper(), ref.lower(), f"The answer is {ref}.", f"${ref}",
        f"{ref}%", f"({ref})", f"{ref}.0", ref[:-1], f"{ref}0", f"-{ref}", f"\\boxed{{{ref}}}",
        f"x = {ref}", f"{ref} or 5", f"{ref} m", ref.replace(".", ","), ref.replace(",", ""),
        f"{ref} {ref}", f"approximately {ref}", f"{ref}°", f"a) {ref}", ref * 3,
    )  # fmt: skip
    try:
        value = float(ref)
    except ValueError:
        return
    for factor in (0.95, 0.96, 1.04, 1.05, 1.06, 10.0):
        yield repr(value * factor)
        yield f"{value * factor:,.2f}"
    if value.is_integer():
        yield str(int(value))
        yield f"{int(value):,}"


def _corpus() -> list[tuple[str, Task]]:
    data = require_shared("mint/processed/gsm8k/test_prompts.json", "gsm8k/test.jsonl")
    mint_dir = data / "mint"
    suites = ["gsm8k", "math", "theoremqa", "mmlu", "hotpotqa"]
    pairs: list[tuple[str, Task]] = []
    for mode in ("mint", "strict"):
        for task in load_tasks("mint", suites, data_dir=mint_dir, checkers=mode):
            pairs.append((task.checker, task))
    gsm8k_test = load_tasks("gsm8k", None, data_dir=data)
    pairs += [(task.checker, task) for task in gsm8k_test[::7]]
    return [(name, task) for name, task in pairs if name in INLINE]


async def test_realistic_answers_get_the_workers_verdict() -> None:
    decided = total = 0
    for name, task in _corpus():
        checker = INLINE[name]
        answers = list(dict.fromkeys(_mutations(task.reference)))
        for option in task.metadata.get("options", {}).values():  # mmlu: the option texts
            answers += [str(option), f"({option})"]
        answers += list(BOMBS[:8])
        decided += await _same_on_both_paths(checker, task, answers)
        total += len(answers)
    # Nearly every realistic answer is decided in-process (theoremqa's expressions are not).
    assert decided > 0.8 * total, (decided, total)


def _logged_answers(mint_dir: Path) -> dict[tuple[str, str], set[str]]:
    """Every answer gpt-3.5-turbo proposed in MINT's published logs of the reasoning suites,
    by (suite, task id): what a real model writes inside ``<solution>``."""
    answers: dict[tuple[str, str], set[str]] = {}
    for results in sorted((mint_dir / "outputs").rglob("reasoning/*/results.jsonl")):
        suite = results.parent.name
        for _, line in read_results(results):
            for message in line.state.history:
                if message.role != "assistant" or "<solution>" not in message.content:
                    continue
                answer = mint_solution_text(message.content)
                if answer is not None:
                    answers.setdefault((suite, str(line.task.task_id)), set()).add(answer)
    return answers


async def test_mint_logged_proposals_get_the_workers_verdict() -> None:
    data = require_shared("mint/processed/gsm8k/test_prompts.json")
    answers = _logged_answers(data / "mint")
    if not answers:
        pytest.skip(f"no MINT logs under {data / 'mint' / 'outputs'}")
    decided = total = 0
    suites = sorted({suite for suite, _ in answers})
    for mode in ("mint", "strict"):
        for task in load_tasks("mint", suites, data_dir=data / "mint", checkers=mode):
            logged = sorted(answers.get((task.suite, task.id), ()))
            if task.checker in INLINE and logged:
                decided += await _same_on_both_paths(INLINE[task.checker], task, logged)
                total += len(logged)
    assert total > 1_000 and decided > 0.5 * total, (decided, total)
