"""Reading an answer as a Python literal or small arithmetic expression, without ``eval``.

TheoremQA's scorer (and MINT's copy of it) turns an answer into a value with ``eval``. Here the
text is parsed with :mod:`ast` and only a closed set of nodes is interpreted: number, string and
boolean constants, lists / tuples / sets, unary and binary arithmetic, and calls to ``abs``,
``round``, ``pow``, ``min``, ``max``, ``sum``, ``int``, ``float`` and ``math.pow`` (the last
because MINT rewrites "10^k" as ``math.pow(10, k)`` before evaluating). Names, attributes,
subscripts, comprehensions and everything else are refused.

Every operation's cost is bounded before it runs, so any accepted expression evaluates in
milliseconds: integers stay under :data:`MAX_INT_BITS` (checked before a power or product is
computed, not after), ``round``'s digits under :data:`MAX_ROUND_DIGITS` (``round(1, -10**7)``
would compute ``10**(10**7)``), modular powers under :data:`MAX_MODPOW_BITS`, nesting under
:data:`MAX_DEPTH`, and strings and lists cannot be repeated. Callers still run it in a worker
process under a time limit (``TextChecker``): the bounds keep it cheap, the limit is the
backstop.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 2_000
MAX_NODES = 400
MAX_INT_BITS = 10_000
"""Bound on the bits of any integer computed (about 3,000 decimal digits): below Python's
4,300-digit limit on int-to-text conversion, so every value can also be shown."""
MAX_ROUND_DIGITS = 1_000
"""Bound on ``round``'s digits, either sign (a float has at most 324 meaningful digits)."""
MAX_MODPOW_BITS = 2_048
"""Bound on each operand of a three-argument ``pow`` (its cost is bits(exponent) products)."""
MAX_DEPTH = 40
"""Bound on the nesting of the expression tree (the evaluator recurses once per level)."""

Number = int | float | complex


class ExpressionError(ValueError):
    """The text is not a supported literal or expression, or evaluating it failed."""


def parse_quietly(source: str) -> ast.Module:
    """``ast.parse`` without the warnings that compiling some text emits (an invalid escape
    sequence in a string): text from a model or a data file must not write to our warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def _parse_expression_quietly(source: str) -> ast.Expression:
    with warnings.catch_warnings():  # as parse_quietly
        warnings.simplefilter("ignore")
        return ast.parse(source, mode="eval")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | complex)


def _check_int(value: object) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError("integer too large")


def _safe_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    if modulus is not None:
        if not all(isinstance(v, int) for v in (base, exponent, modulus)):
            raise ExpressionError("pow() with a modulus needs integers")
        if max(abs(v).bit_length() for v in (base, exponent, modulus)) > MAX_MODPOW_BITS:
            raise ExpressionError("pow() operands too large")
        return pow(base, exponent, modulus)
    if not (_is_number(base) and _is_number(exponent)):
        raise ExpressionError("pow() needs numbers")
    # Estimate the result's size before computing it: an integer power grows by
    # bit_length(base) bits per unit of exponent.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and base.bit_length() * exponent > MAX_INT_BITS
    ):
        raise ExpressionError("power too large")
    if (
        isinstance(exponent, int | float)
        and abs(exponent) > 100_000
        and _is_number(base)
        and (isinstance(base, complex) or abs(base) not in (0, 1))
    ):
        raise ExpressionError("exponent too large")
    return operator.pow(base, exponent)


def _safe_mul(left: Any, right: Any) -> Any:
    if not (_is_number(left) and _is_number(right)):
        # Python would repeat a string or list; an answer has no business doing that.
        raise ExpressionError("only numbers can be multiplied")
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise ExpressionError("product too large")
    return operator.mul(left, right)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _safe_mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _safe_pow,
}

_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}


def _numbers(values: Any) -> list[Any]:
    items = list(values) if isinstance(values, list | tuple | set) else [values]
    if len(items) > 10_000 or not all(_is_number(v) for v in items):
        raise ExpressionError("expected numbers")
    return items


def _call_min(*args: Any) -> Any:
    return min(_numbers(args[0]) if len(args) == 1 else _numbers(args))


def _call_max(*args: Any) -> Any:
    return max(_numbers(args[0]) if len(args) == 1 else _numbers(args))


def _call_sum(values: Any, start: Any = 0) -> Any:
    return sum(_numbers(values), start)


def _call_round(value: Any, ndigits: Any = None) -> Any:
    if not isinstance(value, int | float):
        raise ExpressionError("round() needs a real number")
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() digits must be an integer within ±{MAX_ROUND_DIGITS}")
    return round(value, ndigits)


def _call_abs(value: Any) -> Any:
    if not _is_number(value):
        raise ExpressionError("abs() needs a number")
    return abs(value)


def _call_int(value: Any) -> int:
    if not isinstance(value, int | float):
        raise ExpressionError("int() needs a real number")
    return int(value)


def _call_float(value: Any) -> float:
    if not isinstance(value, int | float):
        raise ExpressionError("float() needs a real number")
    return float(value)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": _call_abs,
    "round": _call_round,
    "pow": _safe_pow,
    "min": _call_min,
    "max": _call_max,
    "sum": _call_sum,
    "int": _call_int,
    "float": _call_float,
}


def _math_pow(base: Any, exponent: Any) -> float:
    if not (isinstance(base, int | float) and isinstance(exponent, int | float)):
        raise ExpressionError("math.pow() needs real numbers")
    return math.pow(base, exponent)  # floats: overflow raises, it never grows


_MATH_FUNCTIONS: dict[str, Callable[..., Any]] = {"pow": _math_pow}


def _function(node: ast.expr) -> Callable[..., Any]:
    if isinstance(node, ast.Name) and node.id in _FUNCTIONS:
        return _FUNCTIONS[node.id]
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "math"
        and node.attr in _MATH_FUNCTIONS
    ):
        return _MATH_FUNCTIONS[node.attr]
    raise ExpressionError(f"call to {ast.unparse(node)!r} is not allowed")


def _evaluate(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_evaluate(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_evaluate(e) for e in node.elts}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _evaluate(node.operand)
        if not _is_number(operand):
            raise ExpressionError("unary operator on a non-number")
        return _UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if not (_is_number(left) and _is_number(right)):
            raise ExpressionError("arithmetic on a non-number")
        result = _BINARY[type(node.op)](left, right)
        _check_int(result)
        return result
    if isinstance(node, ast.Call):
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError("only positional arguments are allowed")
        function = _function(node.func)
        result = function(*(_evaluate(a) for a in node.args))
        _check_int(result)
        return result
    raise ExpressionError(f"{type(node).__name__} is not allowed in an answer")


def _depth(tree: ast.AST) -> int:
    """The nesting depth of ``tree``, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def evaluate_expression(text: str) -> Any:
    """The value of ``text`` read as a literal or small arithmetic expression.

    Mirrors what ``eval`` would return for the supported forms ("1/2" -> 0.5, "[1, 2]" ->
    list, "1, 2" -> tuple, "True" -> bool, '"(a)"' -> str). Raises :class:`ExpressionError` for
    anything else, including text that ``eval`` would reject.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        # eval() ignores leading spaces and tabs; ast.parse would call them an indent.
        tree = _parse_expression_quietly(text.lstrip(" \t"))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"not an expression: {exc.__class__.__name__}") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES or _depth(tree) > MAX_DEPTH:
        raise ExpressionError("expression too complex")
    try:
        return _evaluate(tree.body)
    except ExpressionError:
        raise
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        raise ExpressionError(f"evaluation failed: {exc.__class__.__name__}: {exc}") from exc
