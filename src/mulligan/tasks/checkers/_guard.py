"""The judge's guard: what a checked program installs before a proposal runs (stdlib only).

mulligan never imports this module. The code checker and the unit-test harness read it as text
and put it at the top of the program the sandbox runs in a child process; the harness calls
``_mulligan_guard()`` after compiling the proposal and before running it. The verdict is the
child's exit status (0 only when the tests ran to the end), so the guard closes every ordinary
way for a proposal to end the process with status 0 early or to change how it ends:

- ``os._exit`` / ``posix._exit`` raise ``SystemExit`` (which the harness counts as a failure);
- starting or replacing processes (fork, exec, spawn, ``subprocess``, ``os.system``), ``ctypes``,
  trace and profile functions, the garbage collector's object lists, replacing a function's
  code, signal handlers, signals to other processes and ``/proc/*/mem`` are refused by an audit
  hook (which Python code cannot remove) or by stubs.

What remains is gaming Python itself (an object whose ``__eq__`` is always true, rebinding
builtins the tests use, re-creating a built-in module through ``_imp``): the known limit,
documented in :mod:`mulligan.tasks.checkers.code`.
"""

from typing import Any

_BLOCKED_EVENTS = frozenset(
    {
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.symlink",
        "os.link",
        "pty.spawn",
        "subprocess.Popen",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.addressof",
        "ctypes.call_function",
        "ctypes.PyObj_FromPtr",
        "ctypes.string_at",
        "ctypes.wstring_at",
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
    import _signal
    import os
    import posix
    import signal
    import sys

    me, blocked = os.getpid(), _BLOCKED_EVENTS
    is_a, refuse = isinstance, PermissionError
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
        # /proc/<pid>/mem rewrites the interpreter; a path object's __fspath__ could name
        # another file when open() asks again.
        if is_a(args[0], bytes):
            text = decode(as_bytes(args[0]), "utf-8", "replace")
        elif is_a(args[0], str):
            text = as_str(args[0])
        else:
            raise refuse("open() takes a str path while a proposal is judged")
        name = text.rstrip("/").rsplit("/", 1)[-1]
        if name in ("mem", "pagemap") or "map_files" in text:
            raise refuse(f"opening {text!r} is not allowed while a proposal is judged")

    def no_exit(*args: object) -> None:
        raise SystemExit("os._exit() is not allowed while a proposal is judged")

    def no_handlers(*args: object) -> None:
        raise refuse("installing signal handlers is not allowed while a proposal is judged")

    sys.addaudithook(hook)
    os._exit = posix._exit = no_exit  # type: ignore[assignment]
    signal.signal = _signal.signal = no_handlers  # type: ignore[assignment]
