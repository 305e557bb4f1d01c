"""Judging code by its outputs (``tasks/checkers/calls.py``): the codec, the parser of a child's
reports, EvalPlus's comparison, and ``run_calls`` on a real child process."""

from __future__ import annotations

import json
import re
from collections import Counter, OrderedDict, defaultdict

import pytest

from mulligan.tasks import ProgramResult
from mulligan.tasks.checkers._calls_child import MARKER, Unencodable, decode_value, encode_value
from mulligan.tasks.checkers.calls import CallResult, outputs_match, parse_reports, run_calls
from test_checkers_runner import code_runner

PLAIN = [
    None,
    True,
    0,
    -(10**40),
    1.5,
    float("inf"),
    complex(1, -2),
    "text \n\x00 é",
    b"\x00\xff",
    [1, [2, (3, {4})]],
    (),
    frozenset({1, 2}),
    {"a": [1], (1, 2): {"b": None}},
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_round_trip_with_their_types(value: object) -> None:
    data = json.loads(json.dumps(encode_value(value, [10_000])))
    decoded = decode_value(data)
    assert decoded == value and type(decoded) is type(value)


def test_nan_round_trips() -> None:
    decoded = decode_value(encode_value(float("nan"), [100]))
    assert decoded != decoded


class AlwaysEqual(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class LyingDict(dict):  # type: ignore[type-arg]
    def items(self):  # type: ignore[no-untyped-def, override]
        return [("forged", 1)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(["forged"])

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


class LyingList(list):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter([99])

    def __len__(self) -> int:
        return 0


class LyingStr(str):
    def __str__(self) -> str:
        return "forged"

    def __len__(self) -> int:
        return 0


class LyingInt(int):
    def __index__(self) -> int:
        return 7

    def __int__(self) -> int:
        return 7

    def __format__(self, spec: str) -> str:
        return "7"


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (AlwaysEqual(1), 1),
        ([AlwaysEqual(1)], [1]),
        (LyingDict(a=1), {"a": 1}),
        (LyingList([1, 2]), [1, 2]),
        (LyingStr("real"), "real"),
        (LyingInt(5), 5),
        (Counter("aab"), {"a": 2, "b": 1}),
        (defaultdict(list, {1: [2]}), {1: [2]}),
        (OrderedDict(b=1), {"b": 1}),
    ],
    ids=["int", "in-a-list", "dict", "list", "str", "int-methods", "counter", "defaultdict", "od"],
)
def test_a_subclass_is_reported_as_its_base_value(value: object, plain: object) -> None:
    """Read through the base type's own methods: what the subclass overrides is never asked,
    and the parent gets a built-in value, so an always-true ``__eq__`` is gone."""
    decoded = decode_value(json.loads(json.dumps(encode_value(value, [10_000]))))
    assert type(decoded) is type(plain) and decoded == plain
    if type(plain) is list:
        assert all(type(x) is int for x in decoded)
    assert decoded != 2 and decoded != "forged"


def test_integers_of_any_size_round_trip() -> None:
    for n in (10**5000, -(10**20000) - 7, 2**100_000):
        assert decode_value(json.loads(json.dumps(encode_value(n, [200_000])))) == n
    with pytest.raises(Unencodable):
        encode_value(10**5000, [100])  # the budget counts its digits


@pytest.mark.parametrize(
    "value",
    [object(), iter([1]), "x" * 200, [[[[[]]]]], re.match("a", "a")],
    ids=["object", "iterator", "too-large", "too-deep", "match"],
)
def test_anything_but_small_plain_data_is_unencodable(value: object) -> None:
    import mulligan.tasks.checkers._calls_child as child

    depth = child.MAX_DEPTH
    child.MAX_DEPTH = 3
    try:
        with pytest.raises(Unencodable):
            encode_value(value, [100])
    finally:
        child.MAX_DEPTH = depth


@pytest.mark.parametrize(
    "data",
    [["i", 5], ["x", "1"], ["S", [["l", []]]], ["f", "nonsense"], 1.5, ["d", [[1]]], []],
)
def test_malformed_data_is_a_value_error(data: object) -> None:
    with pytest.raises(ValueError):
        decode_value(data)


def _line(record: object) -> str:
    return MARKER + json.dumps(record)


def test_reports_survive_hostile_output() -> None:
    output = "\n".join(
        [
            "noise " + _line({"k": 0, "n": 0, "v": ["i", "3"]}),  # junk before the marker
            _line({"k": 1, "n": 0, "v": ["i", "4"]}),
            _line({"k": 1, "n": 0, "v": ["i", "5"]}),  # the same value reported twice
            MARKER + "{not json",
            MARKER + "[" * 100_000,
            _line({"k": "2", "n": 0, "v": ["i", "1"]}),  # a bad key
            _line({"k": 3, "n": 0, "v": ["s", 5]}),  # a malformed value
            _line({"k": 4, "n": 0, "u": "a generator is not plain data"}),
            _line({"k": 5, "n": 0, "e": "ValueError: no"}),
        ]
    )
    run = parse_reports(output)
    assert run.result(0) == CallResult("ok", 3)
    assert run.result(1).status == "conflict"
    assert run.result(2).status == "missing"
    assert run.result(3).status == "unserialisable"
    assert run.result(4).status == "unserialisable"
    assert run.result(5) == CallResult("raised", error="ValueError: no")


@pytest.mark.parametrize(
    ("got", "expected", "atol", "match"),
    [
        (3, 3, 0.0, True),
        (3.0, 3, 0.0, True),  # Python's ==, as EvalPlus's exact match
        (0.1 + 0.2, 0.3, 0.0, True),  # a float expected: atol 1e-6 by default
        (0.3001, 0.3, 0.0, False),
        ([0.1 + 0.2, 1.0], [0.3, 1.0], 0.0, True),
        ((0.1 + 0.2,), [0.3], 0.0, False),  # types must match once == failed
        ([0.3001], [0.3], 1e-3, True),
        ([0.3001], [0.3, 0.1], 1e-3, False),
        (float("nan"), float("nan"), 0.0, False),
        ("a", "b", 1.0, False),
        (CallResult("raised", error="x"), None, 0.0, False),
        (CallResult("ok", [1]), [1], 0.0, True),
    ],
)
def test_outputs_match_follows_evalplus(
    got: object, expected: object, atol: float, match: bool
) -> None:
    assert outputs_match(got, expected, atol=atol) is match


PROGRAM = """
def f(a, b):
    if a == 3:
        raise ValueError("boom")
    if a == 4:
        return object()
    if a == 5:
        while True:
            pass
    a.append(b) if isinstance(a, list) else None
    return [a, b]
"""


async def test_run_calls_reports_each_call() -> None:
    shared = [0]
    inputs = [(1, 2), (3, 0), (4, 0), (5, 0), (shared, 1), (shared, 2)]
    async with code_runner() as runner:
        results = await run_calls(runner, PROGRAM, "f", inputs, call_timeout_s=1.0)
        statuses = [r.status for r in results]
        assert statuses == ["ok", "raised", "unserialisable", "raised", "ok", "ok"]
        assert results[0].value == [1, 2] and results[1].error == "ValueError: boom"
        assert results[3].error == "timed out"
        # Each call gets a deep copy of its input.
        assert results[4].value == [[0, 1], 1] and results[5].value == [[0, 2], 2]
        early = await run_calls(
            runner, "import os\nos.write(1, b'x')\nraise SystemExit(0)", "f", inputs[:1]
        )
        assert early[0].status == "missing" and "SystemExit" in (early[0].error or "")


def test_inputs_must_be_plain_data() -> None:
    import asyncio

    with pytest.raises(ValueError, match="not plain data"):
        asyncio.run(run_calls(None, "", "f", [(object(),)]))  # type: ignore[arg-type]


class CountingRunner:
    def __init__(self, inner: object) -> None:
        self.inner, self.programs = inner, []

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        self.programs.append(code)
        return await self.inner.run_program(code, timeout_s, output_limit=output_limit)  # type: ignore[attr-defined]


async def test_computed_expected_sides_use_one_shared_gold_run() -> None:
    import asyncio

    from mulligan.tasks import Task
    from mulligan.tasks.checkers.code import PythonTestsChecker

    # `len(...)` is code, not a literal: the value is compared with the gold solution's.
    tests = ["assert mul(3, 4) == len('abcdefghijkl')", "assert mul(2, 5) == 10"]
    gold = "def mul(a, b):\n    return a * b  # gold\n"
    task = Task(
        id="gold-shared",
        suite="mbpp",
        category="code_generation",
        prompt="p",
        reference="\n".join(tests),
        checker="mbpp",
        gold_solution=gold,
        metadata={"test_list": tests},
    )
    checker = PythonTestsChecker("mbpp")
    async with code_runner() as inner:
        runner = CountingRunner(inner)
        right, wrong = await asyncio.gather(
            checker.check("def mul(a, b):\n    return b * a", task, runner),
            checker.check("def mul(a, b):\n    return 10", task, runner),
        )
    assert right.correct, right.detail
    assert not wrong.correct and "mul(3, 4) returned 10, expected 12" in wrong.detail
    assert sum("# gold" in program for program in runner.programs) == 1


async def test_check_parameter_may_have_any_name() -> None:
    from mulligan.tasks import Task
    from mulligan.tasks.checkers.code import PythonTestsChecker

    reference = "def check(fn):\n    assert fn(2) == 4\n    assert fn(3) == 9\n\ncheck(sq)"
    task = Task(
        id="param",
        suite="humaneval",
        category="code_generation",
        prompt="p",
        reference=reference,
        checker="humaneval",
        gold_solution="def sq(x):\n    return x * x\n",
        metadata={"entry_point": "sq"},
    )
    checker = PythonTestsChecker("humaneval")
    async with code_runner() as runner:
        right = await checker.check("def sq(x):\n    return x * x\n", task, runner)
        wrong = await checker.check("def sq(x):\n    return x + x\n", task, runner)
    assert right.correct, right.detail
    assert not wrong.correct and "sq(3) returned 6, expected 9" in wrong.detail
