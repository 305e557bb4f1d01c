"""The judge's guard: what a checked program installs before a proposal runs (stdlib only).

mulligan never imports this module. The code checkers and the ``tests`` feedback read it as text
and put it into the program the sandbox runs in a child process (after the child's own code,
``_calls_child.py``, which calls ``_mulligan_guard()`` after compiling the proposal).

Verdicts no longer depend on how the child ends: the child only reports the values the tests
check, and mulligan compares them with expected values the child never sees
(:mod:`mulligan.tasks.checkers.calls`). So this guard is defence in depth, kept only where it
costs legitimate solutions nothing:

- ``os._exit`` / ``posix._exit`` raise ``SystemExit`` (an early exit is then reported as the
  proposal's own error rather than as missing values);
- an audit hook (which Python code cannot remove) refuses signals to other processes, trace
  and profile functions, the garbage collector's object lists, replacing a function's code, and
  opening ``/proc/*/mem``.

Relaxed when verdicts moved to values (they refused legitimate solutions and protected nothing
the verdict still needs): starting or replacing processes (``subprocess``, fork, exec, spawn,
``os.system``), ``ctypes``, installing signal handlers, and ``open()`` of a path object
(``pathlib``). A proposal that uses them still cannot pass without producing the right values.
"""

from typing import Any

_BLOCKED_EVENTS = frozenset(
    {
        "sys.settrace",
        "sys.setprofile",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "signal.pthread_kill",
    }
)


def _mulligan_guard() -> None:
    """Installs the guard. Everything the hook uses is bound here, before the proposal runs:
    rebinding a builtin or a global later does not change what it checks."""
    import os
    import posix
    import sys

    me, blocked = os.getpid(), _BLOCKED_EVENTS
    is_a, refuse, fspath = isinstance, PermissionError, os.fspath
    as_str, as_bytes, decode = str.__str__, bytes, bytes.decode

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in blocked:
            raise refuse(f"{event} is not allowed while a proposal is judged")
        if event in ("os.kill", "os.killpg") and args[0] not in (me, 0):
            raise refuse(f"{event} is not allowed while a proposal is judged")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise refuse("replacing a function's code is not allowed while a proposal is judged")
        if event != "open" or is_a(args[0], int) or args[0] is None:
            return
        path = args[0] if is_a(args[0], str | bytes) else fspath(args[0])
        text = decode(as_bytes(path), "utf-8", "replace") if is_a(path, bytes) else as_str(path)
        name = text.rstrip("/").rsplit("/", 1)[-1]
        if name in ("mem", "pagemap") or "map_files" in text:
            raise refuse(f"opening {text!r} is not allowed while a proposal is judged")

    def no_exit(*args: object) -> None:
        raise SystemExit("os._exit() is not allowed while a proposal is judged")

    sys.addaudithook(hook)
    os._exit = posix._exit = no_exit  # type: ignore[assignment]
