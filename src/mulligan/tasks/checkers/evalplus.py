"""The ``evalplus`` checker: a proposal's function is run on a task's inputs in the sandbox
(:func:`~mulligan.tasks.checkers.calls.run_calls`, a chunk of inputs per run) and each output is
compared here with the canonical solution's output on the same input, computed the same way once
per task and process. EvalPlus's rule: ``==``, else ``np.allclose`` with the task's ``atol``
(1e-6 for float outputs), via :func:`~mulligan.tasks.checkers.calls.outputs_match`; and its
special oracles (HumanEval/32 ``find_zero`` by the polynomial's value at the answer; a few MBPP+
functions compared as sets, or only by being None). An input on which the canonical solution
gives no comparable value (it raises, or its output exceeds the sandbox's reporting limits of
900,000 characters per value) is left out of the judgement, and the verdict's detail says how
many were. A task carries what it needs in its metadata
(``benchmark``, ``group``, ``entry_point``, ``atol``, ``base_input``, ``plus_input``,
``canonical_program``, ``stub``); :mod:`mulligan.tasks.evalplus` loads them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from mulligan.tasks.base import CheckResult, CodeRunner, Task
from mulligan.tasks.checkers.calls import OUTPUT_FULL, CallResult, outputs_match, run_calls
from mulligan.tasks.checkers.verdicts import MAX_CODE_ANSWER_CHARS, shorten, too_long, verdict

HUMANEVAL_PLUS = "humaneval+"
MBPP_PLUS = "mbpp+"

SET_EQUAL = frozenset(
    {
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    }
)
"""MBPP+ functions whose output EvalPlus compares as a set."""
NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
"""MBPP+ functions whose output EvalPlus judges only by being None or not."""

CHUNK_INPUTS = 200
CHUNK_CHARS = 150_000
"""Inputs per sandbox run (a run reports at most 20,000 values in at most 1 MB of output)."""
CALL_TIMEOUT_S = 10.0
"""Per call (CPU time), for a proposal. EvalPlus allows twice the canonical solution's time (at
least a second); a fixed limit is kept here instead, generous because a shared machine slowed
both while the limit was wall time: at 5 s the canonical Mbpp/583 timed out under load."""
CHUNK_TIMEOUT_S = 30.0
GOLD_CALL_TIMEOUT_S = 20.0
GOLD_CHUNK_TIMEOUT_S = 30.0
"""Limits are CPU time (the sandbox's ``run_program``); a chunk that sleeps or blocks ends at
five times as much wall time. 30 s is also the sandbox's CPU limit per process
(``SandboxLimits.cpu_s``), which capped the earlier wall-clock chunk limits of 120 and 300 s."""


def _chunks(inputs: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    chunks: list[list[tuple[Any, ...]]] = [[]]
    size = 0
    for args in inputs:
        length = len(repr(args))
        if chunks[-1] and (len(chunks[-1]) >= CHUNK_INPUTS or size + length > CHUNK_CHARS):
            chunks.append([])
            size = 0
        chunks[-1].append(args)
        size += length
    return [c for c in chunks if c]


async def call_all(
    runner: CodeRunner,
    program: str,
    entry: str,
    inputs: list[tuple[Any, ...]],
    *,
    call_timeout_s: float = CALL_TIMEOUT_S,
    chunk_timeout_s: float = CHUNK_TIMEOUT_S,
    stop_on_failure: Callable[[int, CallResult], bool] | None = None,
) -> list[CallResult]:
    """``entry(*args)`` for every input, a chunk of inputs per sandbox run; after a chunk in
    which ``stop_on_failure`` flags a result, the remaining inputs count as not run."""
    results: list[CallResult] = []
    for chunk in _chunks(inputs):
        got = await _run_chunk(runner, program, entry, chunk, call_timeout_s, chunk_timeout_s)
        results.extend(got)
        start = len(results) - len(got)
        if stop_on_failure and any(stop_on_failure(start + i, r) for i, r in enumerate(got)):
            missing = CallResult("missing", error="not run: an earlier input failed")
            results.extend([missing] * (len(inputs) - len(results)))
            break
    return results


async def _run_chunk(
    runner: CodeRunner,
    program: str,
    entry: str,
    chunk: list[tuple[Any, ...]],
    call_timeout_s: float,
    chunk_timeout_s: float,
) -> list[CallResult]:
    """One chunk's results; inputs whose results did not come back from a run that did return
    others, or whose output hit its size cap (long outputs, as HumanEval/14's or HumanEval/83's
    large integers), run again in halves, down to one input per run. A program that returns
    nothing and does not fill its output is not retried."""
    got = await run_calls(
        runner, program, entry, chunk, timeout_s=chunk_timeout_s, call_timeout_s=call_timeout_s
    )
    lost = [i for i, r in enumerate(got) if r.status == "missing"]
    full = any(got[i].error == OUTPUT_FULL for i in lost)
    if len(chunk) == 1 or not lost or (len(lost) == len(chunk) and not full):
        return got
    half = max(1, (len(lost) + 1) // 2)
    for part in (lost[:half], lost[half:]):
        if part:
            again = await _run_chunk(
                runner, program, entry, [chunk[i] for i in part], call_timeout_s, chunk_timeout_s
            )
            for i, result in zip(part, again, strict=True):
                got[i] = result
    return got


def _poly(coefficients: Any, x: float) -> float:
    return float(sum(c * math.pow(x, i) for i, c in enumerate(coefficients)))


def not_none_only(task: Task) -> bool:
    """Whether EvalPlus judges this task's output only by being None or not (its ground truth
    is ``out is not None``; a ``re.Match``, not comparable as a value, then counts as not None)."""
    return task.metadata["entry_point"] in NOT_NONE and task.metadata["benchmark"] == MBPP_PLUS


def _present(result: CallResult) -> bool:
    return result.status == "unserialisable" or (result.ok and result.value is not None)


def output_matches(task: Task, args: tuple[Any, ...], got: CallResult, expected: Any) -> bool:
    """EvalPlus's judgement of one output (see the module docstring). For a
    :func:`not_none_only` task, ``expected`` is the canonical output's ``is not None``."""
    if not_none_only(task):
        if got.ok and isinstance(got.value, bool):
            return bool(got.value == expected)
        return got.status in ("ok", "unserialisable") and _present(got) == expected
    if not got.ok:
        return False
    entry, atol = task.metadata["entry_point"], float(task.metadata["atol"])
    value = got.value
    try:
        if entry == "find_zero" and task.metadata["benchmark"] == HUMANEVAL_PLUS:
            return type(value) in (int, float) and abs(_poly(args[0], value)) <= atol
        if entry in SET_EQUAL and task.metadata["benchmark"] == MBPP_PLUS:
            return bool(set(value) == set(expected))
    except (TypeError, ValueError, OverflowError, RecursionError):
        return False
    return outputs_match(got, expected, atol=atol)


def task_inputs(task: Task) -> list[tuple[Any, ...]]:
    """The inputs a task's group judges on: base, then plus for the ``plus`` group."""
    inputs: list[tuple[Any, ...]] = list(task.metadata["base_input"])
    if task.metadata["group"] == "plus":
        inputs += task.metadata["plus_input"]
    return inputs


_expected: dict[tuple[str, str], list[CallResult]] = {}
_locks: dict[tuple[str, str], asyncio.Lock] = {}


async def expected_outputs(task: Task, runner: CodeRunner) -> list[CallResult]:
    """The canonical solution's outputs on the task's inputs, run once per task and process."""
    key = (task.suite, task.id)
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        if key not in _expected:
            _expected[key] = await call_all(
                runner,
                str(task.metadata["canonical_program"]),
                str(task.metadata["entry_point"]),
                task_inputs(task),
                call_timeout_s=GOLD_CALL_TIMEOUT_S,
                chunk_timeout_s=GOLD_CHUNK_TIMEOUT_S,
            )
        return _expected[key]


def _describe(args: tuple[Any, ...], got: CallResult, expected: Any) -> str:
    shown = got.value if got.ok else f"{got.status}: {got.error}"
    return f"input {shorten(repr(args), 200)}: expected {shorten(repr(expected), 200)}, got {shorten(repr(shown), 200)}"


class EvalPlusChecker:
    """Correct iff the proposal's function gives the canonical solution's output on every input
    of the task's group (EvalPlus's rule; see the module docstring)."""

    name = "evalplus"

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult:
        rejected = too_long(answer, MAX_CODE_ANSWER_CHARS)
        if rejected is not None:
            return rejected
        every = task_inputs(task)
        expected_all = await expected_outputs(task, runner)
        # Inputs whose expected value is not there (the canonical solution raised, or its
        # output is too large to report) cannot be compared: judged on the rest, and said.
        if not_none_only(task):
            expected_all = [CallResult("ok", value=_present(e)) for e in expected_all]
        usable = [i for i, e in enumerate(expected_all) if e.ok]
        if not usable:
            return verdict(False, "the canonical solution gives no comparable output; not judged")
        inputs = [every[i] for i in usable]
        expected = [expected_all[i] for i in usable]
        skipped = len(every) - len(usable)
        note = f" ({skipped} inputs without a comparable expected value skipped)" if skipped else ""
        stub = str(task.metadata.get("stub", ""))
        program = f"{stub}\n\n{answer}" if stub else answer

        def wrong(i: int, got: CallResult) -> bool:
            return not output_matches(task, inputs[i], got, expected[i].value)

        got = await call_all(
            runner, program, str(task.metadata["entry_point"]), inputs, stop_on_failure=wrong
        )
        failed = [i for i, g in enumerate(got) if wrong(i, g)]
        if not failed:
            return verdict(True, f"all {len(inputs)} inputs give the expected output{note}")
        first = failed[0]
        return verdict(
            False,
            f"wrong on input {first + 1} of {len(inputs)}; "
            + _describe(inputs[first], got[first], expected[first].value)
            + note,
        )
