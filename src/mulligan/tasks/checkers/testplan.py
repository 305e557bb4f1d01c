"""A code task's unit tests: read with ``ast``, split into call sides (child) and checks (parent).

Tests come from the task: HumanEval's ``check(candidate)`` function in ``task.reference`` (with
``task.metadata['entry_point']``), MBPP's ``task.metadata['test_list']`` (plus its
``test_setup_code``), or, for other code tasks, top-level ``assert`` lines in the reference.
Every top-level statement that contains an ``assert`` is one test. The test code is trusted
data and is only *parsed* here.

:func:`plan_tests` turns the tests into a :class:`TestPlan`: for the sandbox child, each test
statement with every value to judge (a *site*) wrapped in ``__mg_probe(site, lambda: ...)`` and
every assert reduced to its call side, so no expected value enters the child; for the parent,
each site's :data:`Check`. Which value is judged, and how:

- ``f(x) == L``, ``L == f(x)``, ``f(x) != L``: the side that calls the tested function (it may
  wrap the call, e.g. ``tuple(f(x))``), compared here with ``L``, a literal evaluated here by
  :func:`literal_value` (``ast.literal_eval`` plus arithmetic and ``tuple``/``list``/``set``/
  ``frozenset``/``sorted`` of literals); ``f(x) is True/False/None``; ``abs(f(x) - L) < eps``
  (or ``<=``, ``math.fabs``); ``math.isclose(f(x), L, ...)``; ``f(x)`` and ``not f(x)``.
- anything else (an expected side computed by code, e.g. from random inputs; several calls in
  one assert; a call outside an assert whose result the test uses): each value is compared with
  ``==`` against the value the task's gold solution gives at the same site and occurrence, run
  the same way (``random`` is seeded identically in both runs, and restored around each call
  so a proposal's own draws do not shift the test's). Such tests keep the rest of their code
  (loops, input generation) in the child; an assert whose tested call sits in a comprehension
  keeps its whole expression there.

:func:`judge_tests` gives each test's :class:`TestVerdict` from the child's decoded reports
(:class:`~mulligan.tasks.checkers.calls.ProbeRun`): a test passes only when every value it
needs came back and passed; missing, unserialisable, conflicting or raising values fail it.
"""

from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass, field
from typing import Any

from mulligan.tasks.base import Task
from mulligan.tasks.checkers.calls import CallResult, ProbeRun
from mulligan.tasks.checkers.safe_eval import parse_quietly

_PROBE = "__mg_probe"
_REPR_LIMIT = 240

Check = tuple[Any, ...]
"""How the parent judges a site's value: ``("eq", L)``, ``("ne", L)``, ``("is", c)``,
``("close", L, eps, inclusive)``, ``("isclose", L, rel_tol, abs_tol)``, ``("truthy",)``,
``("falsy",)`` or ``("gold",)`` (equal to the gold solution's value)."""


@dataclass(frozen=True, slots=True)
class TestStatement:
    """One top-level statement of the test code.

    Attributes:
        index: position among all statements.
        code: the statement as written in the task (it runs in the gold solution's reading).
        display: the statement as the policy may see it (``candidate`` renamed to the
            function's name).
        is_test: contains an ``assert`` (other statements, like ``import math``, always run).
    """

    __test__ = False  # not a pytest test class

    index: int
    code: str
    display: str
    is_test: bool


@dataclass(frozen=True, slots=True)
class TaskTests:
    """A task's unit tests, as written."""

    setup: str
    """Module-level code the tests need (imports, helpers, MBPP's test_setup_code)."""
    statements: tuple[TestStatement, ...]
    functions: tuple[str, ...]
    """Names the solution must define (the function under test)."""
    candidate_of: str | None = None
    """HumanEval: the function bound to ``check``'s parameter before the tests run."""
    parameter: str = "candidate"
    """HumanEval: the name of ``check``'s parameter (the tests call the function by it)."""

    @property
    def tests(self) -> tuple[TestStatement, ...]:
        return tuple(s for s in self.statements if s.is_test)


# --- reading the tests -------------------------------------------------------------------------


def _defined_functions(code: str) -> set[str]:
    try:
        tree = parse_quietly(code)
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
        tree = parse_quietly(task.reference)
    except SyntaxError:
        return None
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None
    )
    if check is not None and not (isinstance(entry, str) and entry):
        entry = _checked_name(tree)
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
        statements = _statements(check.body, rename=(param, entry))
        return (
            TaskTests(
                setup="\n".join(ast.unparse(n) for n in setup_nodes),
                statements=statements,
                functions=(entry,),
                candidate_of=entry,
                parameter=param,
            )
            if any(s.is_test for s in statements)
            else None
        )
    return _from_module(task.reference, task, "", entry if isinstance(entry, str) else None)


def _checked_name(tree: ast.Module) -> str | None:
    """The function a top-level ``check(name)`` call tests, when the task names no entry point."""
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "check"
            and len(node.value.args) == 1
            and isinstance(node.value.args[0], ast.Name)
        ):
            return node.value.args[0].id
    return None


def _from_module(code: str, task: Task, setup: str, entry: str | None) -> TaskTests | None:
    try:
        tree = parse_quietly(code)
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
    statements = _statements(tree.body, rename=None)
    if not any(s.is_test for s in statements):
        return None
    return TaskTests(setup=setup, statements=statements, functions=tuple(names))


def _statements(body: list[ast.stmt], rename: tuple[str, str] | None) -> tuple[TestStatement, ...]:
    out: list[TestStatement] = []
    for index, stmt in enumerate(body):
        # Unparsed once: the code is also what the renamed copy is parsed from, and the display
        # when nothing is renamed (planning runs once per task, but a task's first episode pays).
        code = ast.unparse(stmt)
        display = ast.unparse(_Rename(*rename).visit(_copy(code))) if rename else code
        out.append(
            TestStatement(index=index, code=code, display=display, is_test=_has_assert(stmt))
        )
    return tuple(out)


def _copy(code: str) -> ast.stmt:
    """A fresh tree of one statement's unparsed ``code`` (renaming rewrites it in place)."""
    return ast.parse(code).body[0]


# --- literals the parent evaluates -------------------------------------------------------------


class NotLiteral(ValueError):
    """An expected side that the parent does not evaluate itself."""


_CONTAINERS: dict[str, Any] = {
    "tuple": tuple,
    "list": list,
    "set": set,
    "frozenset": frozenset,
    "sorted": sorted,
}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)


def literal_value(node: ast.expr) -> Any:
    """The value of a literal expected side (trusted test code), evaluated without ``eval``.

    ``ast.literal_eval``, plus ``+ - * / // %`` and small powers of numbers and
    ``tuple``/``list``/``set``/``frozenset``/``sorted`` of one literal. :class:`NotLiteral`
    for anything else.
    """
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CONTAINERS
        and len(node.args) == 1
        and not node.keywords
    ):
        return _CONTAINERS[node.func.id](literal_value(node.args[0]))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (*_ARITHMETIC, ast.Pow)):
        left, right = literal_value(node.left), literal_value(node.right)
        numbers = (int, float)
        if type(left) not in numbers or type(right) not in numbers:
            raise NotLiteral("arithmetic on something other than numbers")
        if isinstance(node.op, ast.Pow):
            if abs(right) > 64:
                raise NotLiteral("a large power")
            return left**right
        try:
            return _apply(node.op, left, right)
        except ArithmeticError as exc:
            raise NotLiteral(str(exc)) from None
    raise NotLiteral(ast.unparse(node)[:80])


def _apply(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return a / b
    if isinstance(op, ast.FloorDiv):
        return a // b
    return a % b


# --- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    """One value the child reports and the parent judges."""

    index: int
    statement: int
    """The :class:`TestStatement` index it belongs to."""
    check: Check
    single: bool
    """A top-level assert's value: evaluated exactly once (occurrence 0). Otherwise the
    occurrences are those the gold solution's run reports."""
    shown: str
    """The value's expression as the policy may see it (e.g. ``add(2, 3)``)."""


@dataclass(frozen=True, slots=True)
class TestPlan:
    """The child's statements and the parent's checks for a task's tests."""

    __test__ = False  # not a pytest test class

    tests: TaskTests
    setup: str
    """What the child runs after the proposal (``candidate`` bound for HumanEval)."""
    child_statements: tuple[str, ...]
    """Rewritten statements, aligned with ``tests.statements``."""
    sites: tuple[Site, ...]
    unjudgeable: tuple[int, ...] = ()
    """Tests with no value to judge (no call of the tested function): they fail."""

    @property
    def needs_gold(self) -> bool:
        """Some check needs the gold solution's values (or its occurrence counts)."""
        return any(s.check[0] == "gold" or not s.single for s in self.sites)


@dataclass
class _Planner:
    functions: frozenset[str]
    rename: tuple[str, str] | None
    sites: list[Site] = field(default_factory=list)
    statement: int = 0

    def add(self, node: ast.expr, check: Check, single: bool) -> int:
        shown = _Rename(*self.rename).visit(_expr_copy(node)) if self.rename else node
        site = Site(len(self.sites), self.statement, check, single, ast.unparse(shown))
        self.sites.append(site)
        return site.index


def _expr_copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


def _tested(node: ast.AST, functions: frozenset[str]) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions
        for n in ast.walk(node)
    )


def _outermost_calls(node: ast.AST, functions: frozenset[str]) -> list[tuple[ast.Call, bool]]:
    """The tested calls not inside another tested call, each with whether it sits in a nested
    scope (lambda, comprehension) relative to ``node``."""
    found: list[tuple[ast.Call, bool]] = []

    def walk(current: ast.AST, nested: bool) -> None:
        if (
            isinstance(current, ast.Call)
            and isinstance(current.func, ast.Name)
            and current.func.id in functions
        ):
            found.append((current, nested))
            return
        scope = isinstance(current, ast.Lambda | ast.GeneratorExp | ast.ListComp | ast.SetComp)
        scope = scope or isinstance(current, ast.DictComp)
        for child in ast.iter_child_nodes(current):
            walk(child, nested or scope)

    walk(node, False)
    return found


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _pair(a: ast.expr, b: ast.expr, fs: frozenset[str]) -> tuple[ast.expr, ast.expr] | None:
    if _tested(a, fs) and not _tested(b, fs):
        return a, b
    if _tested(b, fs) and not _tested(a, fs):
        return b, a
    return None


def _classify(test: ast.expr, fs: frozenset[str]) -> tuple[ast.expr, Check] | None:
    """(call side, check) of an assert whose expected side the parent evaluates; else None."""
    try:
        return _classify_literal(test, fs)
    except NotLiteral:
        return None


def _classify_literal(test: ast.expr, fs: frozenset[str]) -> tuple[ast.expr, Check] | None:
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, left, right = test.ops[0], test.left, test.comparators[0]
        pair = _pair(left, right, fs)
        if pair is not None and isinstance(op, ast.Eq | ast.NotEq):
            return pair[0], ("eq" if isinstance(op, ast.Eq) else "ne", literal_value(pair[1]))
        if (
            pair is not None
            and isinstance(op, ast.Is)
            and pair[1] is right
            and isinstance(right, ast.Constant)
            and right.value in (True, False, None)
        ):
            return left, ("is", right.value)
        if (
            isinstance(op, ast.Lt | ast.LtE)
            and isinstance(left, ast.Call)
            and _callee(left) in ("abs", "fabs")
            and len(left.args) == 1
            and isinstance(left.args[0], ast.BinOp)
            and isinstance(left.args[0].op, ast.Sub)
            and not _tested(right, fs)
        ):
            inner = _pair(left.args[0].left, left.args[0].right, fs)
            if inner is not None:
                eps = literal_value(right)
                return inner[0], ("close", literal_value(inner[1]), eps, isinstance(op, ast.LtE))
    if isinstance(test, ast.Call) and _callee(test) == "isclose" and len(test.args) == 2:
        pair = _pair(test.args[0], test.args[1], fs)
        if pair is not None:
            options = {k.arg: literal_value(k.value) for k in test.keywords}
            if set(options) <= {"rel_tol", "abs_tol"}:
                rel, tol = options.get("rel_tol", 1e-9), options.get("abs_tol", 0.0)
                return pair[0], ("isclose", literal_value(pair[1]), rel, tol)
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id in fs:
        return test, ("truthy",)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        operand = test.operand
        if (
            isinstance(operand, ast.Call)
            and isinstance(operand.func, ast.Name)
            and operand.func.id in fs
        ):
            return operand, ("falsy",)
    return None


def _probe(site: int, value: ast.expr, lifted: bool, truth: bool = False) -> ast.Call:
    thunk = ast.Lambda(
        args=ast.arguments(
            posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=value,
    )
    args: list[ast.expr] = [ast.Constant(site), thunk]
    if lifted or truth:
        args.append(ast.Constant(lifted))
    if truth:
        args.append(ast.Constant(True))  # the child reports bool(value)
    return ast.Call(func=ast.Name(id=_PROBE, ctx=ast.Load()), args=args, keywords=[])


class _ChildRewrite(ast.NodeTransformer):
    """Asserts -> their call sides as lifted probes; other tested calls -> inline probes."""

    def __init__(self, planner: _Planner, top: ast.stmt) -> None:
        self.planner, self.top = planner, top

    def visit_Assert(self, node: ast.Assert) -> Any:
        fs = self.planner.functions
        single = node is self.top
        classified = _classify(node.test, fs)
        if classified is not None:
            value, check = classified
            site = self.planner.add(value, check, single)
            truth = check[0] in ("truthy", "falsy")
            return ast.Expr(_probe(site, value, True, truth))
        pair = None
        if isinstance(node.test, ast.Compare) and len(node.test.ops) == 1:
            pair = _pair(node.test.left, node.test.comparators[0], fs)
        calls = _outermost_calls(node.test, fs)
        if pair is not None and not any(nested for _, nested in _outermost_calls(pair[0], fs)):
            site = self.planner.add(pair[0], ("gold",), single)
            return ast.Expr(_probe(site, pair[0], True))
        if calls and not any(nested for _, nested in calls):
            return [
                ast.Expr(_probe(self.planner.add(c, ("gold",), single), c, True)) for c, _ in calls
            ]
        # Calls inside a comprehension cannot be lifted out: the expression stays (its result
        # unused), each tested call reports its value.
        return ast.Expr(_InlineProbes(self.planner, single).visit(node.test))

    def visit_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id in self.planner.functions:
            site = self.planner.add(node, ("gold",), False)
            return _probe(site, node, False)
        self.generic_visit(node)
        return node


class _InlineProbes(ast.NodeTransformer):
    def __init__(self, planner: _Planner, single: bool) -> None:
        self.planner, self.single = planner, single

    def visit_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id in self.planner.functions:
            return _probe(self.planner.add(node, ("gold",), False), node, False)
        self.generic_visit(node)
        return node


def plan_tests(tests: TaskTests) -> TestPlan:
    """The child's statements and the parent's checks (see the module docstring)."""
    rename = (tests.parameter, tests.candidate_of) if tests.candidate_of else None
    names = {tests.parameter} if tests.candidate_of else set(tests.functions)
    planner = _Planner(frozenset(names), rename)
    child: list[str] = []
    unjudgeable: list[int] = []
    for statement in tests.statements:
        if not statement.is_test:
            child.append(statement.code)
            continue
        planner.statement = statement.index
        before = len(planner.sites)
        top = ast.parse(statement.code).body[0]
        rewritten = _ChildRewrite(planner, top).visit(top)
        nodes = rewritten if isinstance(rewritten, list) else [rewritten]
        child.append("\n".join(ast.unparse(ast.fix_missing_locations(n)) for n in nodes))
        if len(planner.sites) == before:
            unjudgeable.append(statement.index)
    setup = tests.setup
    if tests.candidate_of:
        setup = f"{setup}\n{tests.parameter} = {tests.candidate_of}"
    return TestPlan(tests, setup, tuple(child), tuple(planner.sites), tuple(unjudgeable))


# --- judging -----------------------------------------------------------------------------------


@dataclass(slots=True)
class TestVerdict:
    """One test's result, decided here from the child's values."""

    __test__ = False  # not a pytest test class

    statement: TestStatement
    passed: bool
    input: str | None = None
    actual: str | None = None
    expected: str | None = None
    mode: str | None = None
    """``compare`` (expected and actual shown), ``truthy`` / ``falsy``, or None."""
    error: str | None = None
    output: str | None = None
    missing: bool = False
    """A value it needs never came back (the program stopped, timed out or ended early)."""


def short_repr(value: object, limit: int = _REPR_LIMIT) -> str:
    """``repr`` of a decoded plain value (built-in types only, so safe), clipped."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _values_equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except (RecursionError, TypeError, ValueError):
        return False


def _passes(check: Check, value: object) -> bool:
    """Whether a decoded plain value passes a literal check (as the assert would)."""
    kind = check[0]
    try:
        if kind == "eq":
            return bool(value == check[1])
        if kind == "ne":
            return bool(value != check[1])
        if kind == "is":
            return value is check[1]
        if kind == "close":
            distance = abs(value - check[1])
            return bool(distance <= check[2] if check[3] else distance < check[2])
        if kind == "isclose":
            return math.isclose(value, check[1], rel_tol=check[2], abs_tol=check[3])  # type: ignore[arg-type]
        if kind == "truthy":
            return bool(value)
        if kind == "falsy":
            return not value
    except (ArithmeticError, TypeError, ValueError, RecursionError):
        return False
    return False


def _expected_text(check: Check) -> tuple[str, str | None]:
    """(mode, expected shown) for a literal check."""
    kind = check[0]
    if kind in ("truthy", "falsy"):
        return kind, None
    if kind == "ne":
        return "compare", f"anything but {short_repr(check[1])}"
    if kind in ("close", "isclose"):
        return "compare", f"{short_repr(check[1])} (within tolerance)"
    return "compare", short_repr(check[1])


def _site_failure(
    site: Site, occurrence: int, got: CallResult, gold: ProbeRun | None
) -> TestVerdict | None:
    """The failure of one (site, occurrence), or None when its value passes."""
    check = site.check
    if check[0] == "gold":
        want = gold.result(site.index, occurrence) if gold is not None else None
        if want is None or want.status not in ("ok", "raised"):
            return _failed(site, got, error="the reference value for this test is unknown")
        if want.status == "raised":
            same = (
                got.status == "raised"
                and (got.error or "").split(":")[0] == (want.error or "").split(":")[0]
            )
            return None if same else _failed(site, got, expected=f"raises {want.error}")
        if got.ok and _values_equal(got.value, want.value):
            return None
        return _failed(site, got, expected=short_repr(want.value))
    if got.ok and _passes(check, got.value):
        return None
    mode, expected = _expected_text(check)
    return _failed(site, got, expected=expected, mode=mode)


def _failed(
    site: Site,
    got: CallResult,
    *,
    expected: str | None = None,
    mode: str = "compare",
    error: str | None = None,
) -> TestVerdict:
    verdict = TestVerdict(statement=None, passed=False, input=site.shown)  # type: ignore[arg-type]
    verdict.missing = got.status == "missing"
    if error is not None or not got.ok:
        verdict.error = error or got.error or got.status
        return verdict
    verdict.mode = mode
    verdict.expected = expected
    verdict.actual = short_repr(got.value)
    return verdict


def judge_tests(
    plan: TestPlan, run: ProbeRun, gold: ProbeRun | None, selected: set[int] | None = None
) -> list[TestVerdict]:
    """Each selected test's verdict (all tests when ``selected`` is None), in order.

    ``gold`` is the gold solution's run of the same plan (needed when ``plan.needs_gold``).
    """
    by_statement: dict[int, list[Site]] = {}
    for site in plan.sites:
        by_statement.setdefault(site.statement, []).append(site)
    verdicts = []
    for statement in plan.tests.tests:
        if selected is not None and statement.index not in selected:
            continue
        verdict = _judge_one(statement, by_statement.get(statement.index, []), plan, run, gold)
        verdict.statement = statement
        verdicts.append(verdict)
    return verdicts


def _occurrences(site: Site, gold: ProbeRun | None) -> list[int]:
    if site.single:
        return [0]
    if gold is None:
        return []
    return sorted(n for (k, n) in gold.values if k == site.index)


def _judge_one(
    statement: TestStatement,
    sites: list[Site],
    plan: TestPlan,
    run: ProbeRun,
    gold: ProbeRun | None,
) -> TestVerdict:
    if statement.index in plan.unjudgeable:
        return TestVerdict(statement, False, error="this test calls no tested function")
    for site in sites:
        if not site.single and gold is None:
            return TestVerdict(statement, False, error="the reference values are unknown")
        for occurrence in _occurrences(site, gold):
            failure = _site_failure(site, occurrence, run.result(site.index, occurrence), gold)
            if failure is not None:
                return failure
    position = plan.tests.statements.index(statement)
    error = run.statement_errors.get(position)
    if error is not None and (gold is None or position not in gold.statement_errors):
        return TestVerdict(statement, False, error=error)
    return TestVerdict(statement, True)
