"""Judging code by its outputs: run a program's calls in the sandbox, compare values here.

The pass decision and the expected values never enter the process that runs model code. A
child process (the sandbox's program runner, no protocol descriptor) loads the program and
evaluates only the *call side* of each test; it reports each value as tagged plain data
(:func:`~mulligan.tasks.checkers._calls_child.encode_value`: built-in types, a subclass's
instance as its base built-in value, so an object whose ``__eq__`` is always true is judged by
its plain value, and anything else is reported as unserialisable, i.e. wrong). This module
parses those reports (bounded in size) and compares them with expected values it holds itself.
A program that exits early, crashes, times out or prints a fake stream leaves values missing
or wrong; to pass, it has to produce the right values.

Two entry points:

- :func:`run_calls` (EvalPlus style): the entry point on a list of inputs; compare each
  :class:`CallResult` with :func:`outputs_match` against expected outputs, e.g. those of the
  canonical solution run the same way.
- :func:`run_probes`: the lower level used by the unit-test checkers
  (:mod:`mulligan.tasks.checkers.testplan`): test statements rewritten into ``__mg_probe``
  calls; every report, keyed by (site, occurrence).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from mulligan.tasks.base import CodeRunner
from mulligan.tasks.checkers._calls_child import MARKER, Unencodable, decode_value, encode_value

CHILD_SOURCE = "_calls_child.py"
GUARD_SOURCE = "_guard.py"

DEFAULT_OUTPUT_LIMIT = 1_000_000
"""Characters of output a results stream may have (the sandbox's largest program cap)."""

MAX_VALUE_CHARS = 900_000
"""Characters one encoded value may take; a larger one is reported as unserialisable. Close
to the whole stream's cap (:data:`DEFAULT_OUTPUT_LIMIT`), which bounds the output in any case:
EvalPlus's largest canonical outputs (HumanEval+/14's prefixes of a long string) need several
hundred thousand characters, and a value that does not fit in its run's stream comes back
missing (:mod:`~mulligan.tasks.checkers.evalplus` then runs that input alone)."""

OUTPUT_FULL = "the results did not fit in the run's output"
"""A missing value's error when the run's output reached its cap (run fewer calls at once)."""

MAX_RECORDS = 20_000
"""Reports read from one run; a stream with more is cut there (the rest count as missing)."""

EVALPLUS_FLOAT_ATOL = 1e-6
EVALPLUS_RTOL = 1e-7
"""EvalPlus's defaults: ``atol`` 1e-6 when the expected output is a float (or a flat list or
tuple of floats) and the task sets none; ``rtol`` 1e-7, as ``np.allclose(out, exp, rtol=1e-07,
atol=atol)`` after an exact ``==`` failed and the types matched."""


@cache
def guard_source() -> str:
    """The guard's source text, installed before a proposal runs (see ``_guard.py``)."""
    return resources.files("mulligan.tasks.checkers").joinpath(GUARD_SOURCE).read_text("utf-8")


@cache
def child_source() -> str:
    """The child program's source text (see :mod:`mulligan.tasks.checkers._calls_child`)."""
    return resources.files("mulligan.tasks.checkers").joinpath(CHILD_SOURCE).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one call produced, as the parent decoded it.

    ``status``: ``ok`` (``value`` holds the decoded plain value), ``raised`` (the call raised;
    ``error`` says what), ``unserialisable`` (not plain data, too large or too deep),
    ``missing`` (no report: the program ended early, timed out, or failed to load) or
    ``conflict`` (reported more than once with different contents: a forged stream).
    """

    status: str
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(slots=True)
class ProbeRun:
    """Everything a child reported, decoded. Untrusted except as values to compare."""

    values: dict[tuple[int, int], CallResult] = field(default_factory=dict)
    compile_error: dict[str, Any] | None = None
    load_error: dict[str, Any] | None = None
    setup_error: str | None = None
    statement_errors: dict[int, str] = field(default_factory=dict)
    stopped: str | None = None
    timed_out: bool = False
    output_full: bool = False
    """The output reached the run's cap: values past it may have been cut."""
    run_error: str | None = None
    """The runner's own error name (``Timeout``, ``Killed``, ...), if the program did not end
    normally."""

    def result(self, site: int, occurrence: int = 0) -> CallResult:
        found = self.values.get((site, occurrence))
        if found is not None:
            return found
        return CallResult("missing", error=self.missing_reason())

    def missing_reason(self) -> str:
        """Why a value is missing, as well as the (untrusted) reports tell."""
        if self.compile_error is not None:
            return f"the code does not compile: {self.compile_error.get('error')}"
        if self.load_error is not None:
            return f"running the code failed: {self.load_error.get('error')}"
        if self.setup_error is not None:
            return f"the test setup failed: {self.setup_error}"
        if self.timed_out:
            return "the program timed out"
        if self.output_full:
            return OUTPUT_FULL
        if self.stopped:
            return f"the run stopped {self.stopped}"
        return "no result came back (the program ended early)"


def build_child_program(payload: dict[str, Any]) -> str:
    """The program the sandbox runs: child, guard, and the payload as one string literal."""
    return child_source() + guard_source() + f"\n_mg_main({json.dumps(payload)!r})\n"


def _payload(
    solution: str, setup: str, *, load_timeout_s: float | None, call_timeout_s: float | None
) -> dict[str, Any]:
    return {
        "solution": solution,
        "setup": setup,
        "load_timeout": load_timeout_s,
        "call_timeout": call_timeout_s,
        "max_value_chars": MAX_VALUE_CHARS,
        "seed": 0,
    }


async def run_probes(
    runner: CodeRunner,
    solution: str,
    statements: list[str],
    *,
    setup: str = "",
    functions: tuple[str, ...] = (),
    timeout_s: float = 10.0,
    statement_timeout_s: float | None = None,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> ProbeRun:
    """Runs ``solution``, ``setup``, then the rewritten test ``statements`` in a sandbox child.

    ``statements`` hold ``__mg_probe(site, lambda: ...)`` calls and no expected value
    (:mod:`~mulligan.tasks.checkers.testplan` writes them); ``random`` is seeded with 0 first.
    A name in ``functions`` that the solution leaves undefined is reported as a load error.
    """
    payload = _payload(
        solution, setup, load_timeout_s=statement_timeout_s, call_timeout_s=statement_timeout_s
    )
    payload.update(mode="tests", statements=statements, functions=list(functions))
    return await _run(runner, payload, timeout_s, output_limit)


async def run_calls(
    runner: CodeRunner,
    program: str,
    entry_point: str,
    inputs: list[tuple[Any, ...]],
    *,
    setup: str = "",
    timeout_s: float = 60.0,
    call_timeout_s: float | None = None,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> list[CallResult]:
    """``entry_point(*args)`` for each ``args`` in ``inputs``, run on ``program`` in a child.

    Each call gets a deep copy of its input and at most ``call_timeout_s`` (None: only the
    whole run's ``timeout_s``). Inputs must be plain data (``ValueError`` otherwise); they are
    the only test data that enters the child. Returns one :class:`CallResult` per input, in
    order; compare them with :func:`outputs_match`.
    """
    encoded = []
    for args in inputs:
        try:
            encoded.append(encode_value(list(args), [MAX_VALUE_CHARS * 10]))
        except (Unencodable, ValueError) as exc:
            raise ValueError(f"input {args!r:.80} is not plain data: {exc}") from None
    payload = _payload(program, setup, load_timeout_s=None, call_timeout_s=call_timeout_s)
    payload.update(mode="calls", entry=entry_point, inputs=encoded)
    run = await _run(runner, payload, timeout_s, output_limit)
    return [run.result(i) for i in range(len(inputs))]


async def _run(
    runner: CodeRunner, payload: dict[str, Any], timeout_s: float, output_limit: int
) -> ProbeRun:
    result = await runner.run_program(
        build_child_program(payload), timeout_s=timeout_s, output_limit=output_limit
    )
    run = parse_reports(result.output)
    run.timed_out = result.timed_out
    run.output_full = len(result.output) >= output_limit  # a cut output is longer than the cap
    run.run_error = None if result.ok else (result.error or "the program failed")
    return run


def parse_reports(output: str) -> ProbeRun:
    """Reads a child's reports from its output (everything else it printed is ignored).

    Hostile output is expected: malformed lines are skipped, at most :data:`MAX_RECORDS` are
    read, and a value reported twice with different contents becomes a ``conflict``.
    """
    run = ProbeRun()
    read = 0
    for line in output.split("\n"):  # not splitlines(): it also splits on \x1c-\x1e, \x85
        at = line.find(MARKER)
        if at < 0:
            continue
        read += 1
        if read > MAX_RECORDS:
            break
        try:
            record = json.loads(line[at + len(MARKER) :])
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            _take(run, record)
    return run


def _take(run: ProbeRun, record: dict[str, Any]) -> None:
    stage = record.get("stage")
    if stage is not None:
        _take_stage(run, stage, record)
        return
    site, occurrence = record.get("k"), record.get("n")
    if type(site) is not int or type(occurrence) is not int:
        return
    if "v" in record:
        try:
            found = CallResult("ok", value=decode_value(record["v"]))
        except ValueError as exc:
            found = CallResult("unserialisable", error=f"malformed value ({exc})")
    elif "u" in record:
        found = CallResult("unserialisable", error=f"not plain data: {str(record['u'])[:200]}")
    else:
        found = CallResult("raised", error=str(record.get("e", "an error"))[:300])
    key = (site, occurrence)
    before = run.values.get(key)
    if before is not None and not _same(before, found):
        found = CallResult("conflict", error="the value was reported twice, differently")
    run.values[key] = found


def _same(a: CallResult, b: CallResult) -> bool:
    if a.status != b.status or a.error != b.error:
        return False
    try:
        return type(a.value) is type(b.value) and bool(a.value == b.value)
    except (RecursionError, TypeError):
        return False


def _take_stage(run: ProbeRun, stage: object, record: dict[str, Any]) -> None:
    if stage == "compile":
        run.compile_error = record
    elif stage == "load" and not record.get("ok"):
        run.load_error = record
    elif stage == "setup":
        run.setup_error = str(record.get("error", ""))[:300]
    elif stage == "statement" and type(record.get("i")) is int:
        run.statement_errors[record["i"]] = str(record.get("error", ""))[:300]
    elif stage == "stopped":
        run.stopped = str(record.get("reason", ""))[:200]


def _is_floats(value: object) -> bool:
    if type(value) is float:
        return True
    return type(value) in (list, tuple) and all(type(x) is float for x in value)  # type: ignore[attr-defined]


def _close(got: object, expected: object, atol: float, rtol: float) -> bool:
    """``np.allclose``'s rule, element by element: ``|got - exp| <= atol + rtol * |exp|``."""
    if type(expected) in (list, tuple):
        return (
            type(got) in (list, tuple)
            and len(got) == len(expected)  # type: ignore[arg-type]
            and all(_close(g, e, atol, rtol) for g, e in zip(got, expected, strict=True))  # type: ignore[call-overload]
        )
    numbers = (int, float)
    if type(got) not in numbers or type(expected) not in numbers:
        return False
    g, e = float(got), float(expected)  # type: ignore[arg-type]
    if math.isnan(g) or math.isnan(e):
        return False
    if math.isinf(e) or math.isinf(g):
        return g == e
    return abs(g - e) <= atol + rtol * abs(e)


def outputs_match(
    got: CallResult | Any, expected: Any, *, atol: float = 0.0, rtol: float = EVALPLUS_RTOL
) -> bool:
    """EvalPlus's output comparison, on decoded plain values.

    Equal (``==``) values match. Otherwise, when ``atol`` is 0 and ``expected`` is a float or
    a flat list/tuple of floats, ``atol`` becomes 1e-6; with a non-zero ``atol`` the types
    must match (and lengths, for sequences) and every element must satisfy
    ``|got - expected| <= atol + rtol * |expected|`` (NaN never matches). A :class:`CallResult`
    that is not ``ok`` never matches.
    """
    if isinstance(got, CallResult):
        if not got.ok:
            return False
        got = got.value
    try:
        if got == expected:  # EvalPlus's exact match is Python's ``==`` (so 1 == 1.0)
            return True
    except RecursionError:
        return False
    if atol == 0 and _is_floats(expected):
        atol = EVALPLUS_FLOAT_ATOL
    if atol == 0 or type(got) is not type(expected):
        return False
    return _close(got, expected, atol, rtol)
