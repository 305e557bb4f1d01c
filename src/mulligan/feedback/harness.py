"""The unit-test harness: the program the sandbox runs to load a solution and run its tests.

mulligan never imports this module. :func:`mulligan.feedback.testcases.build_program` reads it
as text and appends one line, ``_mg_main(<JSON payload>)``; the payload holds the nonce, the
solution, the test setup, the test statements (already rewritten by ``testcases``: calls of the
function under test go through ``__mg_call``, failed asserts call ``__mg_fail``) and the limits.

The program prints one JSON line per stage (``compile``, ``load``, ``setup``, each ``test``,
``stopped``), each prefixed with the nonce so the solution's own output cannot pass for a result;
the solution's and the tests' own output is swallowed. Names start with ``_mg`` so a reader of a
traceback can tell harness from solution.
"""

from __future__ import annotations

import _signal as _mg_csignal
import builtins as _mg_builtins
import contextlib as _mg_contextlib
import io as _mg_io
import json as _mg_json
import signal as _mg_signal
import sys as _mg_sys
import threading as _mg_threading
from collections.abc import Iterator
from typing import Any

_MG: dict[str, Any] = {}
"""The payload: nonce, solution, setup, functions, candidate, statements, test_timeout, limit,
details (see ``testcases.build_program``)."""
_mg_out = _mg_sys.stdout


def _mg_emit(record: dict[str, Any]) -> None:
    _mg_out.write(_MG["nonce"] + _mg_json.dumps(record) + "\n")
    _mg_out.flush()


def _mg_cut(text: str) -> str:
    limit: int = _MG["limit"]
    return text if len(text) <= limit else text[:limit] + "..."


def _mg_short(value: object) -> str:
    try:
        text = repr(value)
    except BaseException as exc:
        text = f"<repr failed: {type(exc).__name__}>"
    return _mg_cut(text)


def _mg_error(exc: BaseException) -> str:
    detail = str(exc)
    return _mg_cut(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def _mg_where(exc: BaseException) -> tuple[int | None, str]:
    """The solution's own line where it failed (the innermost frame of its code), if any."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<solution>":
            line = tb.tb_lineno
        tb = tb.tb_next
    lines = _MG["solution"].split("\n")
    text = lines[line - 1].strip() if line is not None and 0 < line <= len(lines) else ""
    return line, _mg_cut(text)


class _MgTimeout(BaseException):
    pass


class _MgFailed(BaseException):
    pass


_mg_last: dict[str, str] = {}


def __mg_call(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A call of the function under test: remembers its input and output for the report."""
    shown = [_mg_short(a) for a in args] + [f"{k}={_mg_short(v)}" for k, v in kwargs.items()]
    _mg_last.clear()
    _mg_last["input"] = f"{name}({', '.join(shown)})"
    result = fn(*args, **kwargs)
    _mg_last["output"] = _mg_short(result)
    return result


__mg_fail = _MgFailed
"""A failed assert raises ``__mg_fail(actual, expected, mode)``, its two sides evaluated apart."""

# Bound before the guard replaces signal.signal for the solution.
_mg_set_handler = _mg_csignal.signal


@_mg_contextlib.contextmanager
def _mg_limit(seconds: float) -> Iterator[None]:
    usable = (
        hasattr(_mg_signal, "setitimer")
        and _mg_threading.current_thread() is _mg_threading.main_thread()
    )
    if usable:

        def _on_alarm(signum: int, frame: object) -> None:
            raise _MgTimeout()

        previous = _mg_set_handler(_mg_signal.SIGALRM, _on_alarm)
        _mg_signal.setitimer(_mg_signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if usable:
            _mg_signal.setitimer(_mg_signal.ITIMER_REAL, 0)
            _mg_set_handler(_mg_signal.SIGALRM, previous)


def _mg_quiet() -> _mg_contextlib.ExitStack:
    sink = _mg_io.StringIO()
    stack = _mg_contextlib.ExitStack()
    stack.enter_context(_mg_contextlib.redirect_stdout(sink))
    stack.enter_context(_mg_contextlib.redirect_stderr(sink))
    return stack


def _mg_load() -> dict[str, Any] | None:
    """Compile and run the solution; its namespace, or None after reporting why it failed."""
    try:
        code = compile(_MG["solution"], "<solution>", "exec")
    except SyntaxError as exc:
        error = f"{type(exc).__name__}: {exc.msg}"
        text = (exc.text or "").rstrip("\n")
        _mg_emit({"stage": "compile", "error": error, "line": exc.lineno, "text": text})
        return None
    except Exception as exc:
        _mg_emit({"stage": "compile", "error": _mg_error(exc), "line": None, "text": ""})
        return None
    ns: dict[str, Any] = {
        "__name__": "__mulligan_solution__",
        "__builtins__": _mg_builtins,
        "__mg_call": __mg_call,
        "__mg_fail": __mg_fail,
    }
    timeout = _MG["test_timeout"]
    # Defined by the guard that the program puts after this file.
    _mulligan_guard()  # type: ignore[name-defined]  # noqa: F821
    try:
        with _mg_quiet(), _mg_limit(timeout):
            exec(code, ns)
    except KeyboardInterrupt:
        raise  # the sandbox's own time limit: let it end the program
    except _MgTimeout:
        _mg_emit({"stage": "load", "error": f"timed out after {timeout}s while running the module"})
        return None
    except BaseException as exc:
        line, text = _mg_where(exc)
        _mg_emit({"stage": "load", "error": _mg_error(exc), "line": line, "text": text})
        return None
    missing = [n for n in _MG["functions"] if not callable(ns.get(n))]
    if missing:
        _mg_emit({"stage": "load", "error": f"the function {', '.join(missing)} is not defined"})
        return None
    _mg_emit({"stage": "load", "ok": True})
    return ns


def _mg_setup(ns: dict[str, Any]) -> bool:
    """Run the tests' setup code in the solution's namespace; False after reporting a failure."""
    try:
        with _mg_quiet():
            exec(compile(_MG["setup"], "<test setup>", "exec"), ns)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _mg_emit({"stage": "setup", "error": _mg_error(exc)})
        return False
    if _MG["candidate"]:
        ns["candidate"] = ns[_MG["candidate"]]
    return True


def _mg_statement(ns: dict[str, Any], index: int, source: str) -> tuple[dict[str, Any], bool]:
    """Run one statement; its record (``passed``, or why not) and whether it timed out."""
    _mg_last.clear()
    record: dict[str, Any] = {"stage": "test", "index": index, "passed": False}
    timed_out = False
    try:
        with _mg_quiet(), _mg_limit(_MG["test_timeout"]):
            exec(compile(source, f"<test {index}>", "exec"), ns)
    except _MgFailed as failed:
        actual, expected, mode = failed.args
        record["mode"] = mode
        if mode in ("compare", "truthy", "falsy"):
            record["actual"] = _mg_short(actual)
        if mode == "compare":
            record["expected"] = _mg_short(expected)
    except KeyboardInterrupt:
        raise
    except _MgTimeout:
        record["error"] = f"timed out after {_MG['test_timeout']}s"
        timed_out = True
    except BaseException as exc:
        record["error"] = _mg_error(exc)
    else:
        record["passed"] = True
    return record, timed_out


def _mg_tests(ns: dict[str, Any]) -> bool:
    """Run the statements in order (unselected tests skipped) and report each test; True when
    every selected test passed."""
    passed_all = True
    pending = None
    details: int = _MG["details"]
    timeouts = 0
    for index, is_test, selected, source in _MG["statements"]:
        if is_test and not selected:
            continue
        record, timed_out = _mg_statement(ns, index, source)
        timeouts += timed_out
        if not is_test:
            if not record["passed"]:
                pending = record.get("error", "setup statement failed")
            continue
        if record["passed"]:
            _mg_emit({"stage": "test", "index": index, "passed": True})
            continue
        passed_all = False
        if pending is not None:
            record["error"] = pending
        details -= 1
        if details < 0:
            # Only the first failures are shown; keep the rest short so that the output stays
            # under the sandbox's output cap.
            record = {"stage": "test", "index": index, "passed": False}
        else:
            record.update({k: v for k, v in _mg_last.items() if k in ("input", "output")})
        _mg_emit(record)
        if timeouts >= 2:
            # Code that loops forever would cost a timeout per test: stop after two.
            _mg_emit({"stage": "stopped", "reason": f"after {timeouts} tests timed out"})
            return False
    return passed_all


def _mg_main(payload: str) -> None:
    """Load the solution, run the setup, then the selected tests."""
    _MG.update(_mg_json.loads(payload))
    fail = SystemExit  # bound before the solution runs
    ns = _mg_load()
    passed = ns is not None and _mg_setup(ns) and _mg_tests(ns) is True
    if not passed:
        # The exit status is what the parent trusts: lines printed by the solution are not.
        raise fail(1)
