"""Unit tests of code tasks: read them with ``ast``, run them in the sandbox, read the results.

Tests come from the task: HumanEval's ``check(candidate)`` function in ``task.reference`` (with
``task.metadata['entry_point']``), MBPP's ``task.metadata['test_list']`` (plus its
``test_setup_code``), or, for other code tasks, top-level ``assert`` lines in the reference.
The task's test code is trusted data and is only *parsed* here; the policy's code and the tests
run in a fresh sandbox process through a :class:`~mulligan.tasks.base.CodeRunner`, never in our
process.

Every statement of the test code that contains an ``assert`` is one test. Before it is sent to
the sandbox it is rewritten (``ast``) so that a failure reports more than ``AssertionError``:
calls of the function under test record their input and output, and an assert of the form
``f(x) == y``, ``abs(f(x) - y) < eps`` or ``math.isclose(f(x), y)`` evaluates its two sides
separately, so the actual and expected values are printed with ``repr``. The harness
(``harness.py`` beside this module, a real source file read as text) prints one JSON line per
test, marked with a random nonce so the solution's own output cannot pass for a result.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import math
import random
import secrets
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

from mulligan.tasks.base import Task
from mulligan.tasks.checkers.code import guard_source

Coverage = Literal["none", "partial", "full"]
COVERAGES: tuple[Coverage, ...] = ("none", "partial", "full")

# Names the harness (harness.py) defines and puts in the tests' namespace.
_CALL = "__mg_call"
_FAIL = "__mg_fail"
_ACTUAL = "__mg_actual"
_EXPECTED = "__mg_expected"
_REPR_LIMIT = 240


@dataclass(frozen=True, slots=True)
class TestStatement:
    """One top-level statement of the test code.

    Attributes:
        index: position among all statements.
        code: the rewritten statement that runs in the sandbox.
        display: the original statement as the policy may see it (``candidate`` renamed to
            the function's name).
        is_test: contains an ``assert`` (other statements, like ``import math``, always run).
    """

    __test__ = False  # not a pytest test class

    index: int
    code: str
    display: str
    is_test: bool


@dataclass(frozen=True, slots=True)
class TaskTests:
    """A task's unit tests, ready to run."""

    setup: str
    """Module-level code the tests need (imports, helpers, MBPP's test_setup_code)."""
    statements: tuple[TestStatement, ...]
    functions: tuple[str, ...]
    """Names the solution must define (the function under test)."""
    candidate_of: str | None = None
    """HumanEval: the name bound to ``candidate`` before the tests run."""

    @property
    def tests(self) -> tuple[TestStatement, ...]:
        return tuple(s for s in self.statements if s.is_test)


# --- reading the tests -------------------------------------------------------------------------


def _defined_functions(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _called_names(tree: ast.AST) -> list[str]:
    return [
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]


def _is_trivial_assert(stmt: ast.stmt) -> bool:
    """``assert True, "..."`` (HumanEval's debugging markers) tests nothing."""
    return isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant)


def _has_assert(stmt: ast.stmt) -> bool:
    return not _is_trivial_assert(stmt) and any(isinstance(n, ast.Assert) for n in ast.walk(stmt))


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(id=self.new, ctx=node.ctx) if node.id == self.old else node


def extract_tests(task: Task) -> TaskTests | None:
    """The unit tests of a code task, or None when it has none that can be read."""
    if task.category != "code_generation":
        return None
    entry = task.metadata.get("entry_point")
    test_list = task.metadata.get("test_list")
    if isinstance(test_list, list | tuple) and test_list:
        setup = str(task.metadata.get("test_setup_code") or "")
        return _from_module("\n".join(str(t) for t in test_list), task, setup, None)
    try:
        tree = ast.parse(task.reference)
    except SyntaxError:
        return None
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None
    )
    if check is not None and isinstance(entry, str) and entry:
        setup_nodes = [
            n
            for n in tree.body
            if n is not check
            and not (
                isinstance(n, ast.Expr)
                and isinstance(n.value, ast.Call)
                and isinstance(n.value.func, ast.Name)
                and n.value.func.id == "check"
            )
        ]
        param = check.args.args[0].arg if check.args.args else "candidate"
        statements = _statements(check.body, {param: entry}, rename=(param, entry))
        return (
            TaskTests(
                setup="\n".join(ast.unparse(n) for n in setup_nodes),
                statements=statements,
                functions=(entry,),
                candidate_of=entry,
            )
            if any(s.is_test for s in statements)
            else None
        )
    return _from_module(task.reference, task, "", entry if isinstance(entry, str) else None)


def _from_module(code: str, task: Task, setup: str, entry: str | None) -> TaskTests | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    called = _called_names(tree)
    defined = _defined_functions(task.gold_solution)
    # The function under test is called by the tests and defined by the gold solution (MBPP's
    # task 17 calls its function `sum`, so builtins cannot simply be excluded); without a
    # parseable gold solution, fall back to called names that are not builtins.
    names = [n for n in dict.fromkeys(called) if n in defined] or [
        n for n in dict.fromkeys(called) if not hasattr(builtins, n)
    ]
    if entry and entry not in names:
        names.insert(0, entry)
    statements = _statements(tree.body, {n: n for n in names}, rename=None)
    if not any(s.is_test for s in statements):
        return None
    return TaskTests(setup=setup, statements=statements, functions=tuple(names))


def _statements(
    body: list[ast.stmt], functions: dict[str, str], rename: tuple[str, str] | None
) -> tuple[TestStatement, ...]:
    out: list[TestStatement] = []
    for index, stmt in enumerate(body):
        shown = _Rename(*rename).visit(_copy(stmt)) if rename else stmt
        display = ast.unparse(shown)
        if _has_assert(stmt):
            rewritten = _Instrument(functions).visit(_copy(stmt))
            nodes = rewritten if isinstance(rewritten, list) else [rewritten]
            code = "\n".join(ast.unparse(ast.fix_missing_locations(n)) for n in nodes)
            out.append(TestStatement(index=index, code=code, display=display, is_test=True))
        else:
            code = ast.unparse(stmt)  # runs as written: `candidate` is bound in the sandbox
            out.append(TestStatement(index=index, code=code, display=display, is_test=False))
    return tuple(out)


def _copy(node: ast.stmt) -> ast.stmt:
    copied = ast.parse(ast.unparse(node)).body[0]
    return copied


# --- rewriting asserts -------------------------------------------------------------------------


class _Instrument(ast.NodeTransformer):
    """Wraps calls of the tested function and splits asserts into actual and expected sides."""

    def __init__(self, functions: dict[str, str]) -> None:
        self.functions = functions  # name in the test code -> name to show

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.functions:
            return ast.Call(
                func=ast.Name(id=_CALL, ctx=ast.Load()),
                args=[ast.Constant(self.functions[node.func.id]), node.func, *node.args],
                keywords=node.keywords,
            )
        return node

    def visit_Assert(self, node: ast.Assert) -> list[ast.stmt]:
        self.generic_visit(node)
        actual, expected, mode = _split(node.test)
        stmts: list[ast.stmt] = []
        test = node.test
        if actual is not None:
            stmts.append(_assign(_ACTUAL, actual))
            test = cast(ast.expr, _Replace(actual, _ACTUAL).visit(test))
        if expected is not None:
            stmts.append(_assign(_EXPECTED, expected))
            test = cast(ast.expr, _Replace(expected, _EXPECTED).visit(test))
        fail_args: list[ast.expr] = [
            ast.Name(id=_ACTUAL, ctx=ast.Load()) if actual is not None else ast.Constant(None),
            ast.Name(id=_EXPECTED, ctx=ast.Load()) if expected is not None else ast.Constant(None),
            ast.Constant(mode),
        ]
        # A raise, not a call: rebinding the name in the shared namespace cannot silence it.
        fail = ast.Raise(
            exc=ast.Call(func=ast.Name(id=_FAIL, ctx=ast.Load()), args=fail_args, keywords=[]),
            cause=None,
        )
        stmts.append(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=test), body=[fail], orelse=[]))
        return stmts


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value, lineno=0)


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, name: str) -> None:
        self.target, self.name = target, name

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return ast.Name(id=self.name, ctx=ast.Load())
        return super().visit(node)


def _calls_tested(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == _CALL
        for n in ast.walk(node)
    )


def _pair(a: ast.expr, b: ast.expr) -> tuple[ast.expr | None, ast.expr | None]:
    if _calls_tested(a) and not _calls_tested(b):
        return a, b
    if _calls_tested(b) and not _calls_tested(a):
        return b, a
    return None, None


def _split(test: ast.expr) -> tuple[ast.expr | None, ast.expr | None, str]:
    """``(actual side, expected side, mode)`` of an assert's test, where recognisable.

    mode: ``compare`` (both sides known), ``truthy`` / ``falsy`` (``assert f(x)`` /
    ``assert not f(x)``) or ``other`` (only the last call's input and output are known).
    """
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, left, right = test.ops[0], test.left, test.comparators[0]
        if isinstance(op, ast.Eq | ast.Is):
            actual, expected = _pair(left, right)
            if actual is not None:
                return actual, expected, "compare"
        # abs(f(x) - y) < eps, math.fabs(f(x) - y) <= eps
        if (
            isinstance(op, ast.Lt | ast.LtE)
            and isinstance(left, ast.Call)
            and len(left.args) == 1
            and isinstance(left.args[0], ast.BinOp)
            and isinstance(left.args[0].op, ast.Sub)
            and _callee(left) in ("abs", "fabs")
        ):
            actual, expected = _pair(left.args[0].left, left.args[0].right)
            if actual is not None:
                return actual, expected, "compare"
    if (
        isinstance(test, ast.Call)
        and _callee(test) in ("isclose", "allclose")
        and len(test.args) >= 2
    ):
        actual, expected = _pair(test.args[0], test.args[1])
        if actual is not None:
            return actual, expected, "compare"
    if _is_tested_call(test):
        return test, None, "truthy"
    if (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and _is_tested_call(test.operand)
    ):
        return test.operand, None, "falsy"
    return None, None, "other"


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_tested_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _callee(node) == _CALL


# --- choosing tests ----------------------------------------------------------------------------


def select_tests(n: int, coverage: Coverage, share: float, key: str) -> list[int]:
    """Positions (among ``n`` tests) to run: all, none, or a share chosen by a hash of ``key``.

    The partial choice is stable for a task across turns, runs and processes, so the policy
    sees the same tests each turn (ConvCodeWorld's partial coverage), kept in their order.
    """
    if coverage == "none" or n == 0:
        return []
    if coverage == "full":
        return list(range(n))
    k = min(n, max(1, math.ceil(share * n)))
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    return sorted(rng.sample(range(n), k))


# --- the sandbox program -----------------------------------------------------------------------

HARNESS = "harness.py"
"""The harness program beside this module, read as text (never imported)."""


@cache
def harness_source() -> str:
    """The harness's source text (see :mod:`mulligan.feedback.harness`)."""
    return resources.files("mulligan.feedback").joinpath(HARNESS).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class TestProgram:
    """A program to run in the sandbox and the nonce that marks its result lines."""

    __test__ = False  # not a pytest test class

    code: str
    nonce: str


def build_program(
    solution: str,
    tests: TaskTests,
    selected: list[int],
    *,
    test_timeout_s: float = 5.0,
    max_details: int = 5,
) -> TestProgram:
    """The sandbox program that compiles ``solution`` and runs the selected tests.

    ``selected`` holds positions in ``tests.tests``. With no test selected it only compiles and
    loads the solution (coverage ``none``). Inputs and values are reported for the first
    ``max_details`` failing tests only (the sandbox caps output size).
    """
    nonce = "@@mulligan-" + secrets.token_hex(8) + "@@ "
    chosen = {tests.tests[i].index for i in selected}
    statements = [(s.index, s.is_test, s.index in chosen, s.code) for s in tests.statements]
    payload = {
        "nonce": nonce,
        "solution": solution,
        "setup": tests.setup,
        "functions": list(tests.functions),
        "candidate": tests.candidate_of or "",
        "statements": statements,
        "test_timeout": float(test_timeout_s),
        "limit": _REPR_LIMIT,
        "details": max_details,
    }
    # The payload travels as one string literal: no value is ever spliced into code.
    code = harness_source() + guard_source() + f"\n_mg_main({json.dumps(payload)!r})\n"
    return TestProgram(code=code, nonce=nonce)


# --- reading the results -----------------------------------------------------------------------


@dataclass(slots=True)
class TestOutcome:
    """One test's result as the harness reported it."""

    __test__ = False  # not a pytest test class

    statement: TestStatement
    passed: bool
    input: str | None = None
    output: str | None = None
    actual: str | None = None
    expected: str | None = None
    mode: str | None = None
    error: str | None = None


@dataclass(slots=True)
class TestRun:
    """What a test program reported."""

    __test__ = False  # not a pytest test class

    compile_error: dict[str, Any] | None = None
    load_error: str | None = None
    load_where: tuple[int, str] | None = None
    """The solution's line (number, text) where loading it failed, when known."""
    setup_error: str | None = None
    loaded: bool = False
    stopped: str | None = None
    """Why the harness stopped before the last selected test (repeated timeouts)."""
    outcomes: list[TestOutcome] = field(default_factory=list)
    not_run: list[TestStatement] = field(default_factory=list)


def parse_results(
    output: str, program: TestProgram, tests: TaskTests, selected: list[int]
) -> TestRun:
    """Read the harness's JSON lines (ignoring everything else the program printed)."""
    by_index = {s.index: s for s in tests.statements}
    run = TestRun()
    seen: set[int] = set()
    for line in output.split("\n"):  # not splitlines(): it also splits on \x1c-\x1e, \x85
        at = line.find(program.nonce)
        if at < 0:
            continue
        try:
            record = json.loads(line[at + len(program.nonce) :])
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        stage = record.get("stage")
        if stage == "compile":
            run.compile_error = record
        elif stage == "load":
            run.loaded = bool(record.get("ok"))
            run.load_error = None if run.loaded else str(record.get("error", ""))
            at_line = record.get("line")
            if not run.loaded and isinstance(at_line, int):
                run.load_where = (at_line, str(record.get("text") or ""))
        elif stage == "stopped":
            run.stopped = str(record.get("reason", ""))
        elif stage == "setup":
            run.setup_error = str(record.get("error", ""))
        elif stage == "test" and record.get("index") in by_index:
            index = int(record["index"])
            seen.add(index)
            run.outcomes.append(
                TestOutcome(
                    statement=by_index[index],
                    passed=bool(record.get("passed")),
                    input=_opt(record.get("input")),
                    output=_opt(record.get("output")),
                    actual=_opt(record.get("actual")),
                    expected=_opt(record.get("expected")),
                    mode=_opt(record.get("mode")),
                    error=_opt(record.get("error")),
                )
            )
    run.not_run = [tests.tests[i] for i in selected if tests.tests[i].index not in seen]
    return run


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
