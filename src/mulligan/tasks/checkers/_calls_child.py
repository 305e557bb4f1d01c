"""The child side of judging code by its outputs (stdlib only): run a program, report values.

The sandbox runs this file's text (followed by the guard, ``_guard.py``, and one line
``_mg_main(<JSON payload>)``) in a child process that holds no protocol descriptor. The child
loads the proposed program, then evaluates only the *call side* of each test: in ``calls`` mode
the entry point on each given input (EvalPlus style), in ``tests`` mode the task's test
statements rewritten by :mod:`mulligan.tasks.checkers.testplan`, where every value to judge is
wrapped in ``__mg_probe(site, thunk)`` and every assert has lost its expected side. Each value is
written to stdout as one line, ``MARKER`` + JSON, encoded by :func:`encode_value` into plain
data with a type tag (exact built-in types only; anything else is reported as unserialisable).

Nothing here decides a verdict and no expected value is ever in this process: the parent
(:mod:`mulligan.tasks.checkers.calls`) decodes the values with :func:`decode_value` and compares
them with the expected values it holds. A proposal controls this process entirely and may print
anything; it can only make a test pass by producing the right value. mulligan also imports this
module (for the codec, which has one home here); importing it runs nothing.
"""

from __future__ import annotations

import _signal as _mg_csignal
import contextlib as _mg_contextlib
import copy as _mg_copy
import io as _mg_io
import json as _mg_json
import random as _mg_random
import signal as _mg_signal
import sys as _mg_sys
import threading as _mg_threading
from collections.abc import Iterator
from typing import Any

MARKER = "@@mulligan-value@@ "
"""Starts every line the child reports (a label for parsing, not a secret)."""

MAX_DEPTH = 64
"""Nesting levels an encoded value may have."""


class Unencodable(Exception):
    """A value that is not plain data (or too large, or too deep) to report."""


def encode_value(value: Any, budget: list[int], depth: int = 0) -> object:
    """``value`` as JSON-ready plain data with a type tag; :class:`Unencodable` otherwise.

    Built-in values are encoded as themselves; an instance of a *subclass* of a built-in
    container or scalar (``collections.Counter``, ``defaultdict``, an ``int`` subclass) as its
    base built-in value, read through the base type's own methods (``dict.items(x)``,
    ``list.__iter__(x)``, ``int.__index__(x)``), never the value's overrides. Whatever a
    hostile subclass does here only changes the plain data it reports, which the parent
    compares as built-in values; a subclass's ``__eq__`` is lost. ``budget`` holds the
    characters still allowed (shared by the parts of one value) and is decreased in place.
    Strings and small integers are written as bare JSON values, everything else as a list
    whose first element is its type's tag; large integers in hexadecimal (linear time both
    ways, any size). The budget is charged about the JSON length (escapes aside: the run's
    output cap bounds what a value's escapes add).
    """
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deeply")
    budget[0] -= 8
    if budget[0] < 0:
        raise Unencodable("too large")
    if value is None:
        return None
    kind = type(value)  # the real type (``isinstance`` would believe a forged ``__class__``)
    if kind is bool:
        return ["b", value]
    # Identity, then the real MRO (``type.__subclasscheck__``): a metaclass's ``__eq__`` is
    # never asked.
    base = next((b for b in _BASES if kind is b), None)
    if base is None:
        base = next((b for b in _BASES if issubclass(kind, b)), None)
    if base is None:
        raise Unencodable(f"a {kind.__name__} is not plain data")
    try:
        return _encode_as(base, value, budget, depth)
    except (Unencodable, RecursionError, MemoryError):
        raise
    except Exception as exc:  # a subclass's state that its base type's methods refuse
        raise Unencodable(f"a {kind.__name__} could not be read: {type(exc).__name__}") from None


def _encode_as(base: type, value: Any, budget: list[int], depth: int) -> object:
    """``value`` (an instance of ``base`` or of a subclass) encoded as a ``base`` value."""
    if base is int:
        number = int.__index__(value)
        if -SMALL_INT < number < SMALL_INT:
            _spend(budget, len(int.__repr__(number)) - 6)  # a bare JSON number
            return number
        text = int.__format__(number, "x")
        _spend(budget, len(text))
        return ["i", text]
    if base is float:
        return ["f", float.hex(value)]
    if base is complex:
        real = complex.real.__get__(value, complex)
        imag = complex.imag.__get__(value, complex)
        return ["c", float.hex(real), float.hex(imag)]
    if base is str:
        _spend(budget, str.__len__(value) - 6)  # a bare JSON string
        return str.__str__(value)
    if base is bytes:
        _spend(budget, 2 * bytes.__len__(value))
        return ["y", bytes.hex(value)]
    if base is dict:
        # A snapshot of the pairs first, no larger than the budget allows (16 chars a pair).
        if dict.__len__(value) * 16 > budget[0]:
            raise Unencodable("too large")
        return [
            "d",
            [
                [encode_value(k, budget, depth + 1), encode_value(v, budget, depth + 1)]
                for k, v in list(dict.items(value))
            ],
        ]
    # The built-in type's own iterator, never the value's.
    iterate: Any = base.__iter__  # type: ignore[attr-defined]
    items = []
    for x in iterate(value):
        items.append(encode_value(x, budget, depth + 1))  # spends the budget: bounded
    return [_SEQUENCES[base], items]  # ``base`` is one of the built-in types here


def _spend(budget: list[int], chars: int) -> None:
    budget[0] -= chars
    if budget[0] < 0:
        raise Unencodable("too large")


_SEQUENCES: dict[type, str] = {list: "l", tuple: "t", set: "S", frozenset: "F"}
_BASES: tuple[type, ...] = (int, float, complex, str, bytes, dict, list, tuple, set, frozenset)
"""The built-in types a reported value may be, or derive from (``bool`` is final)."""
_BUILD: dict[str, Any] = {"l": list, "t": tuple, "S": set, "F": frozenset}

SMALL_INT = 10**15
"""Integers smaller in magnitude are written as bare JSON numbers (compact: EvalPlus's long
lists of numbers); larger ones in hexadecimal."""

MAX_INT_DIGITS = 2_000_000
"""Hex digits a reported integer may have (more than any results stream can hold)."""


def decode_value(data: object, depth: int = 0) -> Any:
    """The plain value :func:`encode_value` encoded; ``ValueError`` for anything malformed.

    Safe on hostile input: it builds only built-in values, never calls into them beyond
    hashing built-in keys, and refuses nesting deeper than :data:`MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if data is None:
        return None
    if type(data) is str:
        return data
    if type(data) is int:  # json.loads parses at most 4,300 digits (ValueError beyond)
        return data
    if type(data) is not list or not data or type(data[0]) is not str:
        raise ValueError("not a tagged value")
    tag, rest = data[0], data[1:]
    try:
        return _decode_tagged(tag, rest, depth)
    except (TypeError, OverflowError, RecursionError) as exc:
        raise ValueError(f"malformed {tag!r} value: {type(exc).__name__}") from None


def _decode_tagged(tag: str, rest: list[Any], depth: int) -> Any:
    if tag == "b" and len(rest) == 1 and type(rest[0]) is bool:
        return rest[0]
    if tag == "i" and len(rest) == 1 and type(rest[0]) is str:
        if len(rest[0]) > MAX_INT_DIGITS:
            raise ValueError("an integer too large")
        return int(rest[0], 16)  # a power-of-two base: linear time, no digit limit
    if tag == "f" and len(rest) == 1 and type(rest[0]) is str:
        return float.fromhex(rest[0])
    if tag == "c" and len(rest) == 2 and all(type(x) is str for x in rest):
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
        return rest[0]
    if tag == "y" and len(rest) == 1 and type(rest[0]) is str:
        return bytes.fromhex(rest[0])
    if tag == "d" and len(rest) == 1 and type(rest[0]) is list:
        pairs = rest[0]
        if not all(type(p) is list and len(p) == 2 for p in pairs):
            raise ValueError("malformed dict")
        return {decode_value(k, depth + 1): decode_value(v, depth + 1) for k, v in pairs}
    if tag in _BUILD and len(rest) == 1 and type(rest[0]) is list:
        return _BUILD[tag](decode_value(x, depth + 1) for x in rest[0])
    raise ValueError(f"unknown or malformed tag {tag!r}")


# --- the child program (runs only when the sandbox appends ``_mg_main(...)``) ------------------

_MG: dict[str, Any] = {}
_mg_out = _mg_sys.stdout
# Bound before the guard replaces signal.signal for the proposal.
_mg_set_handler = _mg_csignal.signal


class _MgTimeout(BaseException):
    pass


def _mg_emit(record: dict[str, Any]) -> None:
    _mg_out.write(MARKER + _mg_json.dumps(record) + "\n")
    _mg_out.flush()


def _mg_error(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except BaseException:
        detail = ""
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text[:300]


CALL_WALL_FACTOR = 5.0
"""A call's limit is CPU time (``ITIMER_PROF``), as the sandbox's limit of the whole program;
a call that sleeps or blocks is stopped after this many times as much wall time."""


@_mg_contextlib.contextmanager
def _mg_limit(seconds: float | None) -> Iterator[None]:
    usable = (
        seconds is not None
        and hasattr(_mg_signal, "setitimer")
        and _mg_threading.current_thread() is _mg_threading.main_thread()
    )
    timers = (
        (_mg_signal.ITIMER_PROF, _mg_signal.SIGPROF),
        (_mg_signal.ITIMER_REAL, _mg_signal.SIGALRM),
    )
    if usable:

        def _on_alarm(signum: int, frame: object) -> None:
            raise _MgTimeout()

        previous = [_mg_set_handler(number, _on_alarm) for _, number in timers]
        _mg_signal.setitimer(_mg_signal.ITIMER_PROF, seconds or 0.0)
        _mg_signal.setitimer(_mg_signal.ITIMER_REAL, (seconds or 0.0) * CALL_WALL_FACTOR)
    try:
        yield
    finally:
        if usable:
            for (timer, number), handler in zip(timers, previous, strict=True):
                _mg_signal.setitimer(timer, 0)
                _mg_set_handler(number, handler)


def _mg_quiet() -> _mg_contextlib.ExitStack:
    """What the proposal and the tests print is swallowed (as in MINT)."""
    sink = _mg_io.StringIO()
    stack = _mg_contextlib.ExitStack()
    stack.enter_context(_mg_contextlib.redirect_stdout(sink))
    stack.enter_context(_mg_contextlib.redirect_stderr(sink))
    return stack


def _mg_report(site: int, occurrence: int, value: object) -> None:
    record: dict[str, Any] = {"k": site, "n": occurrence}
    try:
        record["v"] = encode_value(value, [_MG["max_value_chars"]])
    except Unencodable as exc:
        record["u"] = str(exc)
    except (ValueError, RecursionError, MemoryError) as exc:
        record["u"] = type(exc).__name__
    _mg_emit(record)


_mg_seen: dict[int, int] = {}


def __mg_probe(site: int, thunk: Any, lifted: bool = False, truth: bool = False) -> Any:
    """Evaluates one value to judge (``thunk()``) and reports it under (site, occurrence).

    The global ``random`` state is restored afterwards, so a proposal that draws random
    numbers does not change the inputs that the test code draws next. ``lifted``: the value
    was lifted out of an assert and is not used further, so an error is reported, not raised.
    ``truth``: the test only asks whether the value is true (``assert f(x)``), so ``bool()``
    of it is reported, decided by the value's own ``__bool__`` as the assert would (a
    ``re.Match`` is not plain data, its truth is).
    """
    occurrence = _mg_seen.get(site, 0)
    _mg_seen[site] = occurrence + 1
    state = _mg_random.getstate()
    try:
        value = thunk()
        if truth:
            value = bool(value)
    except (_MgTimeout, KeyboardInterrupt):
        _mg_emit({"k": site, "n": occurrence, "e": "timed out"})
        raise
    except BaseException as exc:
        _mg_emit({"k": site, "n": occurrence, "e": _mg_error(exc)})
        if lifted:
            return None
        raise
    finally:
        _mg_random.setstate(state)
    _mg_report(site, occurrence, value)
    return value


def _mg_load() -> dict[str, Any] | None:
    """Compile and run the proposal (then the setup); its namespace, or None after a report."""
    try:
        code = compile(_MG["solution"], "<solution>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = (exc.text or "").rstrip("\n")[:300]
        error = f"{type(exc).__name__}: {exc.msg}"
        _mg_emit({"stage": "compile", "error": error, "line": exc.lineno, "text": text})
        return None
    except BaseException as exc:
        _mg_emit({"stage": "compile", "error": _mg_error(exc)})
        return None
    ns: dict[str, Any] = {"__name__": "__mulligan_check__", "__mg_probe": __mg_probe}
    # Defined by the guard that the program puts after this file.
    _mulligan_guard()  # type: ignore[name-defined]  # noqa: F821
    try:
        with _mg_quiet(), _mg_limit(_MG["load_timeout"]):
            exec(code, ns)
    except KeyboardInterrupt:
        raise
    except _MgTimeout:
        _mg_emit({"stage": "load", "error": "timed out while running the module"})
        return None
    except BaseException as exc:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<solution>":
                line = tb.tb_lineno
            tb = tb.tb_next
        _mg_emit({"stage": "load", "error": _mg_error(exc), "line": line})
        return None
    missing = [n for n in _MG.get("functions", ()) if not callable(ns.get(n))]
    if missing:
        _mg_emit({"stage": "load", "error": f"the function {', '.join(missing)} is not defined"})
        return None
    try:
        with _mg_quiet():
            exec(compile(_MG["setup"], "<test setup>", "exec"), ns)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _mg_emit({"stage": "setup", "error": _mg_error(exc)})
        return None
    return ns


def _mg_calls(ns: dict[str, Any]) -> None:
    """``calls`` mode: the entry point on each input (a deep copy), one report per input."""
    function = ns.get(_MG["entry"])
    if not callable(function):
        _mg_emit({"stage": "load", "error": f"the function {_MG['entry']} is not defined"})
        return
    for index, encoded in enumerate(_MG["inputs"]):
        args = _mg_copy.deepcopy(decode_value(encoded))
        __mg_run(index, lambda: __mg_probe(index, lambda: function(*args), True))  # noqa: B023


def __mg_run(index: int, action: Any) -> bool:
    """Runs one test (or call) under its time limit; False when it timed out."""
    try:
        with _mg_quiet(), _mg_limit(_MG["call_timeout"]):
            action()
    except KeyboardInterrupt:
        raise
    except _MgTimeout:
        _mg_emit({"stage": "statement", "i": index, "error": "timed out"})
        return False
    except BaseException as exc:
        _mg_emit({"stage": "statement", "i": index, "error": _mg_error(exc)})
    return True


def _mg_tests(ns: dict[str, Any]) -> None:
    """``tests`` mode: the rewritten test statements in order, with ``random`` seeded."""
    _mg_random.seed(_MG["seed"])
    timeouts = 0
    for index, source in enumerate(_MG["statements"]):
        code = compile(source, f"<test {index}>", "exec")
        timeouts += not __mg_run(index, lambda: exec(code, ns))  # noqa: B023
        if timeouts >= 2:
            # Code that loops forever would cost a timeout per test: stop after two.
            _mg_emit({"stage": "stopped", "reason": f"after {timeouts} tests timed out"})
            return


def _mg_main(payload: str) -> None:
    """Load the proposal, then report the values the payload's mode asks for."""
    _MG.update(_mg_json.loads(payload))
    ns = _mg_load()
    if ns is None:
        return
    _mg_emit({"stage": "load", "ok": True})
    if _MG["mode"] == "calls":
        _mg_calls(ns)
    else:
        _mg_tests(ns)
    _mg_emit({"stage": "done"})
