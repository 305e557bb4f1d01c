"""The sandbox worker: a standalone Python REPL that runs untrusted cells inside the box.

This file is never imported by mulligan. The parent reads its source and starts it with
``python -s -P -u -c <bootstrap> <this source> <config json>`` inside the isolation layer (the
bootstrap compiles it under the name ``<mulligan-sandbox-worker>``), so it must only use the
standard library. Everything here runs in the worker process, which is the box: running
model-written code with ``exec`` is the point.

Start-up (in this order, before any untrusted code runs):
1. file descriptors: fd 0 (the command pipe) and fd 1 (the result pipe) are moved to private
   descriptors; fd 0 becomes /dev/null (so ``input()`` fails at once) and fds 1 and 2 become an
   internal pipe read by a thread, so output of subprocesses and C code is captured as well;
2. resource limits (address space, CPU seconds, processes, file size, core dumps);
3. optionally a new network namespace (only without bubblewrap, when root);
4. privilege drop to the per-sandbox uid/gid (when started as root), no-new-privs, and a
   parent-death signal;
5. a handshake message to the parent.

Protocol (both directions): a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
Parent -> worker: ``{"code": str, "n": int, "timeout": float, "program": bool, "reuse": bool,
"limit": int, "tools": [...]}``, plus ``"wall": float`` for a program (its wall-clock backstop;
``timeout`` is then CPU seconds).
Worker -> parent: ``{"output": str, "error": str | null, "timed_out": bool, "truncated": bool,
"exit_code": int}``, plus ``"clean": bool`` after a program run with ``reuse``.

Warm program runners (``reuse``): a worker that only ever runs programs may run many, one after
another, each in its own fresh child. After each, every other process of the sandbox is killed
(as always) and the scratch directory and the private ``/tmp`` and ``/dev/shm`` are emptied, so
the next program finds nothing of the last one; ``clean`` says whether that worked (no process
had to be killed, nothing could not be removed). The parent retires a worker that is not clean.

Tools: ``tools`` (optional) lists ``{"name": str, "params": [str, ...]}``; the worker defines
each as a stub function in the session's namespace (once per worker process). A stub does not
do anything itself: it sends ``{"tool_call": {"id": int, "name": str, "args": [...]}}`` to the
parent and waits for ``{"tool_reply": id, "result": str}`` or ``{"tool_reply": id, "error":
str}`` on the command pipe, then returns the result (or raises ``ToolError``). Whatever the tool
acts on (a game, a household) lives in the parent, outside the box; only these messages cross.
The reply also carries ``host_s``, the parent's time answering: the cell's clock stops for it
(a slow game under load must not time out the model's code), the round trip still counts.
"""

from __future__ import annotations

import ast
import builtins
import codecs
import collections
import contextlib
import io
import json
import keyword
import linecache
import os
import resource
import select
import shutil
import signal
import struct
import sys
import threading
import time
import traceback
import warnings
from types import CodeType, TracebackType
from typing import Any

CO_COROUTINE = 0x0080
# A cell that keeps printing past this many characters is stopped: it would only burn its time.
HARD_OUTPUT_CEILING = 128 * 1024 * 1024
# Share of the output limit kept from the end of the output (the rest comes from the start).
TAIL_SHARE = 0.2
MAIN_PID = os.getpid()


class OutputLimit(Exception):
    """Raised inside a cell that printed far more than anyone can read."""


class ToolError(Exception):
    """Raised inside a cell when the parent refuses or fails a tool call."""


class _State:
    """Mutable worker state shared by the main thread, the watchdog and the signal handler."""

    running_user_code = False
    timed_out = False
    in_child = False
    # Set once this worker has started a process: from then on, a print first collects what
    # processes wrote to fds 1/2 (a syscall per print, skipped until it can matter).
    children_may_write = False


# Audit events of everything that starts a process (and so may write to fds 1/2).
SPAWN_EVENTS = frozenset(
    {
        "os.system",
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "pty.spawn",
    }
)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in SPAWN_EVENTS:
        STATE.children_may_write = True


STATE = _State()


# ----------------------------------------------------------------------------------------------
# Output capture
# ----------------------------------------------------------------------------------------------
class CappedText:
    """Collects text up to a limit: keeps the head and the tail, counts what was dropped.

    Memory stays bounded whatever is written: a 100 MB string costs two slices, not a copy.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.head_limit = max(self.limit - int(self.limit * TAIL_SHARE), 1)
        self.tail_limit = self.limit - self.head_limit
        # Re-entrant: a signal handler in user code may print in the middle of an add().
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.head: list[str] = []
        self.head_len = 0
        self.tail: collections.deque[str] = collections.deque()
        self.tail_len = 0
        self.total = 0
        self.last_char = "\n"

    def add(self, text: str) -> None:
        if not text:
            return
        with self.lock:
            size = len(text)
            self.total += size
            self.last_char = text[-1]
            start = 0
            room = self.head_limit - self.head_len
            if room > 0:
                piece = text[:room]
                self.head.append(piece)
                self.head_len += len(piece)
                if size <= room:
                    return
                start = room  # index, not a slice: a 100 MB string is never copied
            if self.tail_limit <= 0:
                return
            if size - start >= self.tail_limit:
                self.tail.clear()
                self.tail.append(text[-self.tail_limit :])
                self.tail_len = self.tail_limit
                return
            self.tail.append(text[start:])
            self.tail_len += size - start
            while self.tail and self.tail_len - len(self.tail[0]) >= self.tail_limit:
                self.tail_len -= len(self.tail.popleft())

    @property
    def dropped(self) -> int:
        kept = self.head_len + min(self.tail_len, self.tail_limit)
        return self.total - kept

    def text(self) -> tuple[str, bool]:
        """Returns (text, truncated); a truncated text says so where the gap is."""
        with self.lock:
            head = "".join(self.head)
            tail = "".join(self.tail)[-self.tail_limit :] if self.tail_limit else ""
            dropped = self.total - len(head) - len(tail)
            if dropped <= 0:
                return head + tail, False
            note = (
                f"\n[... output truncated: {dropped:,} characters omitted here; the cell "
                f"produced {self.total:,} characters and at most {self.limit:,} are shown ...]\n"
            )
            return head + note + tail, True


CAPTURE = CappedText(20_000)


def _add_output(text: str) -> None:
    """Adds text written by user code; in a forked child it goes to fd 1 instead."""
    if STATE.in_child:
        # A forked child's buffer is a private copy nobody reads: send it through the pipe,
        # where the parent worker picks it up.
        with contextlib.suppress(OSError):
            os.write(1, text.encode("utf-8", "replace"))
        return
    if FD_OUTPUT is not None and STATE.children_may_write:
        FD_OUTPUT.add(text)
    else:
        CAPTURE.add(text)
    if STATE.running_user_code and CAPTURE.dropped > HARD_OUTPUT_CEILING:
        raise OutputLimit(
            f"the cell printed more than {HARD_OUTPUT_CEILING:,} characters and was stopped"
        )


class CaptureBinary(io.RawIOBase):
    """``sys.stdout.buffer``: bytes written here are decoded and captured like text."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = bytes(data)
        _add_output(raw.decode("utf-8", "replace"))
        return len(raw)


class CaptureStream(io.TextIOBase):
    """Replacement for sys.stdout / sys.stderr that captures into CAPTURE (in print order)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name: str, fd: int) -> None:
        super().__init__()
        self.name = name
        self._fd = fd
        self._buffer = CaptureBinary()

    @property
    def buffer(self) -> CaptureBinary:
        return self._buffer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that passes sys.stdout to a subprocess gets the fd of the internal pipe,
        # which is captured too.
        return self._fd

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        _add_output(text)
        return len(text)

    def flush(self) -> None:
        return None


class FdOutput(threading.Thread):
    """Captures what is written to fds 1 and 2 (an internal pipe), in print order.

    Subprocesses and C code write to the pipe; ``print`` goes straight to CAPTURE. Each print
    first pulls what is waiting in the pipe, under the same lock as the thread that drains the
    pipe while the main thread is blocked (e.g. waiting for a subprocess that fills it), so
    output lands in the order it was produced.
    """

    def __init__(self, read_fd: int) -> None:
        super().__init__(name="mulligan-output", daemon=True)
        os.set_blocking(read_fd, False)
        self.read_fd = read_fd
        # Re-entrant: a signal handler in user code may print while the main thread holds it.
        self.lock = threading.RLock()
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.closed = False

    def _pull_locked(self) -> None:
        while not self.closed:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                self.closed = True
                return
            if not chunk:  # every write end is closed (model code closed fds 1 and 2)
                self.closed = True
                return
            CAPTURE.add(self.decoder.decode(chunk))

    def pull(self) -> None:
        """Moves everything waiting in the pipe into CAPTURE."""
        with self.lock:
            self._pull_locked()

    def add(self, text: str) -> None:
        """Adds text printed by Python code after what subprocesses wrote before it."""
        with self.lock:
            self._pull_locked()
            CAPTURE.add(text)

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        while not self.closed:
            try:
                poller.poll()
            except InterruptedError:
                continue
            self.pull()


FD_OUTPUT: FdOutput | None = None


# ----------------------------------------------------------------------------------------------
# Time limit
# ----------------------------------------------------------------------------------------------
class Watchdog(threading.Thread):
    """Interrupts the main thread (SIGINT -> KeyboardInterrupt) when a cell passes its deadline.

    Started once at start-up: while a fork bomb holds the process limit, no new thread could be
    started. The signal is re-sent every half second until the cell ends; code that swallows it
    is killed by the parent a little later.
    """

    def __init__(self, main_ident: int) -> None:
        super().__init__(name="mulligan-watchdog", daemon=True)
        self.main_ident = main_ident
        self.condition = threading.Condition()
        self.deadline: float | None = None

    def arm(self, timeout: float) -> None:
        with self.condition:
            STATE.timed_out = False
            self.deadline = time.monotonic() + timeout
            self.condition.notify()

    def disarm(self) -> None:
        with self.condition:
            self.deadline = None
            self.condition.notify()

    def pause(self) -> float | None:
        """Stops the clock (while the host answers a tool call: its time is not the cell's);
        returns the time that was left, for :meth:`resume`."""
        with self.condition:
            left = None if self.deadline is None else self.deadline - time.monotonic()
            self.deadline = None
            self.condition.notify()
            return left

    def resume(self, left: float | None) -> None:
        with self.condition:
            self.deadline = None if left is None else time.monotonic() + left
            self.condition.notify()

    def run(self) -> None:
        with self.condition:
            while True:
                if self.deadline is None:
                    self.condition.wait()
                    continue
                remaining = self.deadline - time.monotonic()
                if remaining > 0:
                    self.condition.wait(remaining)
                    continue
                if STATE.running_user_code:
                    STATE.timed_out = True
                    with contextlib.suppress(OSError):
                        signal.pthread_kill(self.main_ident, signal.SIGINT)
                self.deadline = time.monotonic() + 0.5


def _on_sigint(signum: int, frame: Any) -> None:
    # Only user code is interrupted; a late signal during our own bookkeeping is ignored.
    if STATE.running_user_code:
        raise KeyboardInterrupt


def _no_input(prompt: Any = "") -> str:
    raise EOFError(
        "input() is not available: this Python session has no stdin. "
        "Put the values in the code instead."
    )


# ----------------------------------------------------------------------------------------------
# Running cells
# ----------------------------------------------------------------------------------------------
WORKER_FILENAME = "<mulligan-sandbox-worker>"


def _is_user_file(filename: str) -> bool:
    return filename.startswith("<cell ") or filename == "<program>"


def _user_traceback(exc: BaseException) -> TracebackType | None:
    """Drops the worker's own frames from the front of a traceback."""
    tb = exc.__traceback__
    while tb is not None and not _is_user_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _without_worker_frames(report: traceback.TracebackException) -> None:
    """Removes the worker's frames (e.g. the input() stub) from a report and its chain."""
    seen: set[int] = set()
    pending: list[traceback.TracebackException | None] = [report]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if frame.filename != WORKER_FILENAME]
        )
        pending += [item.__cause__, item.__context__]


def _format_exception(exc: BaseException) -> str:
    tb = _user_traceback(exc)
    if tb is None and isinstance(exc, SyntaxError):
        # The cell itself did not compile: show the caret display, no traceback.
        return "".join(traceback.format_exception_only(type(exc), exc))
    report = traceback.TracebackException(type(exc), exc, tb, compact=True)
    _without_worker_frames(report)
    return "".join(report.format())


def _run_code(code: CodeType, namespace: dict[str, Any]) -> Any:
    if code.co_flags & CO_COROUTINE:
        # Top-level ``await`` (allowed like in IPython): run the coroutine on a fresh loop.
        import asyncio

        return asyncio.run(eval(code, namespace))
    return eval(code, namespace)


class Runner:
    """Runs cells in one persistent namespace, IPython-style."""

    def __init__(self, fd_output: FdOutput, watchdog: Watchdog, memory_mb: int, cpu_s: int) -> None:
        self.fd_output = fd_output
        self.watchdog = watchdog
        self.memory_mb = memory_mb
        self.cpu_s = cpu_s
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def run(
        self,
        code: str,
        n: int,
        timeout: float,
        program: bool,
        limit: int | None = None,
        reuse: bool = False,
        tools: list[dict[str, Any]] | None = None,
        wall: float | None = None,
    ) -> dict[str, Any]:
        if program:
            # Never in this process: it holds the result pipe back to the parent. A program
            # may ask for a larger output cap (results streams of code checkers).
            reply = run_program(code, timeout, limit or CAPTURE.limit, wall)
            if reuse:
                reply["clean"] = reply.pop("alone", False) and _wipe_after_program()
            reply.pop("alone", None)
            return reply
        if tools:
            TOOLS.define(self.namespace, tools)
        CAPTURE.reset()
        STATE.timed_out = False
        filename = "<program>" if program else f"<cell {n}>"
        # Registered so tracebacks can show the offending source lines.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        sys.stdout, sys.stderr = STDOUT, STDERR
        signal.signal(signal.SIGINT, _on_sigint)
        error: str | None = None
        exit_code = 0
        shown = ""  # repr of a trailing expression's value
        failure: BaseException | None = None
        try:
            body, last = self._compile(code, filename, program)
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
            failure = exc
        else:
            try:
                # A program gets a fresh namespace; cells share the session's.
                namespace = (
                    {"__name__": "__main__", "__builtins__": builtins}
                    if program
                    else self.namespace
                )
                self.watchdog.arm(timeout)
                STATE.running_user_code = True
                try:
                    _run_code(body, namespace)
                    if last is not None:
                        value = _run_code(last, namespace)
                        if value is not None:
                            namespace["_"] = value
                            # Inside the time limit: repr() of a huge object can take long.
                            shown = repr(value)
                finally:
                    STATE.running_user_code = False
                    self.watchdog.disarm()
            except BaseException as exc:
                if os.getpid() != MAIN_PID:
                    _child_exit(exc)
                failure = exc
            if os.getpid() != MAIN_PID:
                _child_exit(None)
        sys.stdout, sys.stderr = STDOUT, STDERR
        self.fd_output.pull()
        if failure is not None:
            error, exit_code = self._report_failure(failure, timeout, program)
        elif shown:
            if CAPTURE.last_char != "\n":
                CAPTURE.add("\n")
            CAPTURE.add(f"Out[{n}]: {shown}\n")
        output, truncated = CAPTURE.text()
        CAPTURE.reset()
        return {
            "output": output,
            "error": error,
            "timed_out": STATE.timed_out and error == "Timeout",
            "truncated": truncated,
            "exit_code": exit_code,
        }

    def _compile(self, code: str, filename: str, program: bool) -> tuple[CodeType, CodeType | None]:
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = ast.parse(code, filename, "exec")
        last: CodeType | None = None
        # A trailing expression is displayed like IPython's Out[n] (unless it ends with ';').
        final = tree.body[-1] if tree.body else None
        if not program and isinstance(final, ast.Expr) and not code.rstrip().endswith(";"):
            tree.body.pop()
            expression = ast.Expression(final.value)
            last = compile(expression, filename, "eval", flags=flags, dont_inherit=True)
        body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
        return body, last

    def _report_failure(
        self, exc: BaseException, timeout: float, program: bool
    ) -> tuple[str | None, int]:
        """Adds the traceback (or a short note) to the output; returns (error, exit code)."""
        if CAPTURE.last_char != "\n":
            CAPTURE.add("\n")
        if isinstance(exc, SystemExit):
            code = exc.code
            if code is None or code == 0:
                return None, 0
            CAPTURE.add(f"SystemExit: {code}\n")
            return "SystemExit", code if isinstance(code, int) else 1
        if isinstance(exc, KeyboardInterrupt) and STATE.timed_out:
            CAPTURE.add(_format_exception(exc))
            stopped = _stop_other_processes()
            if program:
                CAPTURE.add(f"Timeout: the program did not finish within {timeout:g} s.\n")
            else:
                CAPTURE.add(
                    f"Timeout: the cell did not finish within {timeout:g} s and was "
                    "interrupted. Variables, imports and definitions from earlier cells are "
                    "kept.\n"
                )
            if stopped:
                CAPTURE.add("Processes started from this session were stopped as well.\n")
            return "Timeout", 1
        try:
            text = _format_exception(exc)
        except BaseException:  # formatting can fail under memory pressure; say what we can
            text = f"{type(exc).__name__}: (traceback unavailable)\n"
        CAPTURE.add(text)
        if isinstance(exc, MemoryError):
            CAPTURE.add(f"(memory limit of this Python session: {self.memory_mb} MB)\n")
        return type(exc).__name__, 1


# ----------------------------------------------------------------------------------------------
# Tool stubs: functions whose calls are answered by the parent (see the module docstring)
# ----------------------------------------------------------------------------------------------
TOOL_ARG_TYPES = (str, int, float, bool, type(None))


def _left_after(left: float | None, asked: float, reply: dict[str, Any]) -> float | None:
    """The cell's time left after a tool call: the round trip counts, the host's own time
    answering (``host_s`` in its reply) does not."""
    if left is None:
        return None
    elapsed = time.monotonic() - asked
    try:
        host = min(max(float(reply.get("host_s", 0.0)), 0.0), elapsed)
    except (TypeError, ValueError):
        host = 0.0
    return left - (elapsed - host)


class ToolChannel:
    """The worker's side of tool calls: one request/reply at a time over the protocol pipes."""

    def __init__(self) -> None:
        self.command_fd = -1
        self.result_fd = -1
        self.lock = threading.Lock()
        self.sequence = 0
        self.defined: set[str] = set()
        self.watchdog: Watchdog | None = None

    def call(self, name: str, args: tuple[Any, ...]) -> Any:
        if os.getpid() != MAIN_PID:
            raise ToolError(f"{name}() can only be called from the session's own process")
        for value in args:
            if not isinstance(value, TOOL_ARG_TYPES):
                raise TypeError(
                    f"{name}() takes str, int, float, bool or None arguments, "
                    f"not {type(value).__name__}"
                )
        with self.lock:
            self.sequence += 1
            number = self.sequence
            # SIGINT (the cell's time limit) waits until the reply is read in full: a frame read
            # half-way would leave the next command unreadable. The parent answers every call
            # within its own time limit or kills this worker.
            is_main = threading.get_ident() == threading.main_thread().ident
            # The host's time answering is not the cell's (the parent extends its own deadline
            # the same way): a slow environment must not time out the model's code.
            if is_main:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            left = self.watchdog.pause() if is_main and self.watchdog is not None else None
            asked, reply = time.monotonic(), {}
            try:
                _send(
                    self.result_fd, {"tool_call": {"id": number, "name": name, "args": list(args)}}
                )
                reply = self._reply(number)
            finally:
                if is_main:
                    if self.watchdog is not None:
                        self.watchdog.resume(_left_after(left, asked, reply))
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if "error" in reply:
            raise ToolError(str(reply["error"]))
        return reply.get("result")

    def _reply(self, number: int) -> dict[str, Any]:
        while True:
            header = _read_exact(self.command_fd, 4)
            payload = (
                None
                if header is None
                else _read_exact(self.command_fd, struct.unpack(">I", header)[0])
            )
            if payload is None:
                os._exit(0)  # the parent is gone
            message = json.loads(payload.decode("utf-8"))
            if isinstance(message, dict) and message.get("tool_reply") == number:
                return message

    def define(self, namespace: dict[str, Any], specs: list[dict[str, Any]]) -> None:
        """Defines a stub per spec in ``namespace`` (once per worker process)."""
        for spec in specs:
            name, params = str(spec["name"]), [str(p) for p in spec.get("params", ())]
            if name in self.defined:
                continue
            if not all(p.isidentifier() and not keyword.iskeyword(p) for p in [name, *params]):
                continue  # the parent validates names; this is a second line of defence
            arguments = ", ".join(params)
            source = (
                f"def {name}({arguments}):\n"
                f"    return _call({name!r}, ({arguments}{',' if params else ''}))\n"
            )
            scope: dict[str, Any] = {"_call": self.call}
            exec(compile(source, f"<tool {name}>", "exec"), scope)
            stub = scope[name]
            stub.__doc__ = str(spec.get("doc", "")) or None
            namespace[name] = stub
            self.defined.add(name)


TOOLS = ToolChannel()


# ----------------------------------------------------------------------------------------------
# Whole programs: each runs in a child process that holds nothing of the protocol
# ----------------------------------------------------------------------------------------------
# The child reads its program from fd 0 until EOF, then fd 0 becomes /dev/null. Its fds are 0, 1
# and 2 only; fds 1 and 2 are a pipe that this worker reads. It runs the program as __main__ and
# exits with the program's status: 0 when it ends normally (or calls sys.exit(0)), 1 after an
# uncaught exception (its traceback is printed), the SystemExit code otherwise.
CHILD_BOOTSTRAP = r"""
import os, sys, resource
# The program's own CPU-time limit (argv[1] seconds): the kernel stops it, however loaded the
# machine is. SIGXCPU at the soft limit, SIGKILL a second later (a handler cannot outlast that).
_soft = int(sys.argv[1])
_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
if _hard != resource.RLIM_INFINITY:
    _soft = max(1, min(_soft, _hard - 1))
resource.setrlimit(resource.RLIMIT_CPU, (_soft, _soft + 1))
del _soft, _hard
_chunks = []
while True:
    _chunk = os.read(0, 1 << 20)
    if not _chunk:
        break
    _chunks.append(_chunk)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
_source = b"".join(_chunks).decode("utf-8", "surrogateescape")
del _chunks, _chunk, _null
sys.path.insert(0, os.getcwd())
sys.argv = ["<program>"]
import linecache, traceback
linecache.cache["<program>"] = (len(_source), None, _source.splitlines(True), "<program>")
def _run(source):
    try:
        code = compile(source, "<program>", "exec", dont_inherit=True)
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != "<program>":
            tb = tb.tb_next
        try:
            text = "".join(traceback.format_exception(type(exc), exc, tb))
        except BaseException:
            text = type(exc).__name__ + "\n"
        sys.stderr.write(text)
        sys.stderr.flush()
        raise SystemExit(1) from None
_run(_source)
"""
PROGRAM_KILL_GRACE_S = 1.0


def _child_argv(cpu_s: int) -> list[str]:
    return [sys.executable, "-s", "-u", "-c", CHILD_BOOTSTRAP, str(cpu_s)]


def _cpu_seconds(timeout: float) -> int:
    """A program's CPU-time limit, whole seconds (RLIMIT_CPU's unit), at least one."""
    return max(1, int(-(-timeout // 1)))


def _feed(fd: int, data: bytes) -> None:
    """Writes the program to the child's fd 0 (in a thread: the pipe holds only 64 KB)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass  # the child ended before reading it all: its exit status tells
    finally:
        os.close(fd)


def _collect(
    pid: int, read_fd: int, deadline: float, capture: CappedText
) -> tuple[int | None, float]:
    """Reads the child's output until it exits or the deadline passes; its wait status (None
    at the deadline) and the CPU seconds it used."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    open_pipe = True
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, 0.0
        if not open_pipe:
            time.sleep(min(remaining, 0.01))
            continue
        if poller.poll(int(min(remaining, 0.05) * 1000) + 1):
            chunk = os.read(read_fd, 65536)
            if chunk:
                capture.add(decoder.decode(chunk))
            else:
                open_pipe = False
    while open_pipe:  # what it wrote before it ended (descendants are killed, not waited for)
        if not poller.poll(0):
            break
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        capture.add(decoder.decode(chunk))
    capture.add(decoder.decode(b"", final=True))
    return status, usage.ru_utime + usage.ru_stime


def _describe_exit(
    status: int | None, cpu_limit: int, wall: float, capture: CappedText
) -> tuple[str | None, int]:
    """(error, exit code) of a child, and a note in its output when it did not exit normally.
    ``status`` None: still running at the wall-clock backstop; -1: stopped at its CPU limit."""
    if status is None:
        capture.add(f"\nTimeout: the program was still running after {wall:g} s.\n")
        return "Timeout", 1
    if status == -1:
        capture.add(f"\nTimeout: the program used its {cpu_limit} s of CPU time.\n")
        return "Timeout", 1
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        capture.add(f"\n(the program was killed by {name})\n")
        return "Killed", 128 + number
    code = os.WEXITSTATUS(status)
    if code == 0:
        return None, 0
    text, _ = capture.text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    name = last.split(":", 1)[0].strip()
    # The exception's name as the child's traceback gave it (cosmetic: the verdict is the status).
    if code == 1 and name.replace(".", "").replace("_", "").isalnum() and " " not in name:
        return name.rsplit(".", 1)[-1], 1
    capture.add(f"\n(the program exited with status {code})\n")
    return "SystemExit", code


def _stopped_at_cpu_limit(status: int, cpu_used: float, cpu_limit: int) -> bool:
    """Whether the kernel ended the child for its CPU time (SIGXCPU, or SIGKILL at the hard
    limit after a handler caught SIGXCPU)."""
    if not os.WIFSIGNALED(status):
        return False
    number = os.WTERMSIG(status)
    return number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_used >= cpu_limit)


MAX_PROGRAM_OUTPUT = 1_000_000
"""The largest output cap a program may ask for (characters): its reply (JSON, at most 12 bytes
a character) stays under the parent's 16 MiB message limit."""


def _wall(value: object) -> float | None:
    """A program's wall-clock backstop as the parent sent it; None for its CPU limit alone."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _program_limit(value: object) -> int | None:
    """The output cap a program run asked for, clamped; None for the sandbox's own."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_PROGRAM_OUTPUT)
    return None


def run_program(code: str, timeout: float, limit: int, wall: float | None = None) -> dict[str, Any]:
    """Runs ``code`` as a program in a child process; its output, status and error name.

    ``timeout`` is the child's CPU time (RLIMIT_CPU, set by the child's bootstrap): a checked
    program's verdict must not depend on how loaded the machine is. ``wall`` (default
    ``timeout``) is a wall-clock backstop, so a program that sleeps or blocks still ends; its
    subprocesses each have the same CPU limit, are bounded in number by RLIMIT_NPROC, and are
    killed when the program ends or reaches the backstop.
    """
    cpu_limit = _cpu_seconds(timeout)
    wall = max(timeout, wall or timeout)
    capture = CappedText(limit)
    source_read, source_write = os.pipe()
    output_read, output_write = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable,
            _child_argv(cpu_limit),
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, source_read, 0),
                (os.POSIX_SPAWN_DUP2, output_write, 1),
                (os.POSIX_SPAWN_DUP2, output_write, 2),
            ],
        )
    except OSError as exc:
        for fd in (source_read, source_write, output_read, output_write):
            os.close(fd)
        return _program_reply(f"the program could not be started: {exc}\n", "SpawnError", 1)
    os.close(source_read)
    os.close(output_write)
    STATE.children_may_write = True
    feeder = threading.Thread(
        target=_feed, args=(source_write, code.encode("utf-8", "surrogatepass")), daemon=True
    )
    feeder.start()
    try:
        status, cpu_used = _collect(pid, output_read, time.monotonic() + wall, capture)
        if status is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        # Nothing the program started outlives it (nor keeps the pipe open).
        left_behind = _stop_other_processes()
        feeder.join(PROGRAM_KILL_GRACE_S)
    finally:
        os.close(output_read)
    if status is not None and _stopped_at_cpu_limit(status, cpu_used, cpu_limit):
        status = -1
    error, exit_code = _describe_exit(status, cpu_limit, wall, capture)
    output, truncated = capture.text()
    timed_out = status is None or status == -1
    reply = _program_reply(output, error, exit_code, timed_out=timed_out, truncated=truncated)
    reply["alone"] = not left_behind and not feeder.is_alive()
    return reply


def _empty_dir(path: str, keep: str) -> bool:
    """Removes everything in ``path`` but ``keep`` (a mount point inside it); True if done."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return False
    for entry in entries:
        if entry.path == keep:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # e.g. made read-only by the program: the listing below tells
    try:
        return all(name == os.path.basename(keep) for name in os.listdir(path))
    except OSError:
        return False


def _wipe_after_program() -> bool:
    """Empties the scratch directory and the private temporary directories (see the module
    docstring); True when nothing is left."""
    scratch = CONFIG["scratch"]
    clean = _empty_dir(scratch, keep="")
    for tmp in CONFIG.get("private_tmp") or ():
        clean = _empty_dir(tmp, keep=scratch) and clean
    return clean


def _program_reply(
    output: str,
    error: str | None,
    exit_code: int,
    *,
    timed_out: bool = False,
    truncated: bool = False,
) -> dict[str, Any]:
    return {
        "output": output,
        "error": error,
        "timed_out": timed_out,
        "truncated": truncated,
        "exit_code": exit_code,
    }


def _other_processes() -> list[int]:
    """Live processes of this sandbox other than the worker (zombies excluded).

    Those with the worker's uid where that uid or the PID namespace is the sandbox's own,
    else those in the worker's session (processes that left it are out of reach).
    """
    me = os.getpid()
    by_uid = bool(CONFIG.get("may_kill_all"))
    uid, session = str(os.getuid()), str(os.getsid(0))
    found = []
    for name in os.listdir("/proc"):
        # pid 1 is bubblewrap's init (kill(-1) spares it) or the host's init.
        if not name.isdigit() or int(name) in (me, 1):
            continue
        try:
            if by_uid:
                with open(f"/proc/{name}/status") as file:
                    lines = file.read().split("\n")
                state = next((ln.split()[1] for ln in lines if ln.startswith("State:")), "?")
                owner = next((ln.split()[1] for ln in lines if ln.startswith("Uid:")), "")
                mine = owner == uid
            else:
                with open(f"/proc/{name}/stat") as file:
                    text = file.read()
                # After "pid (comm) ": state ppid pgrp session ...
                fields = text[text.rfind(")") + 2 :].split()
                state, mine = fields[0], fields[3] == session
        except (OSError, IndexError):
            continue
        if mine and state not in ("Z", "X"):
            found.append(int(name))
    return found


def _stop_other_processes() -> bool:
    """Kills every other process of this sandbox (after a timeout); True if there were any."""
    found = False
    for _ in range(50):
        others = _other_processes()
        if not others:
            break
        found = True
        if CONFIG.get("may_kill_all"):
            # Atomic against a fork bomb; reaches only this sandbox (own PID namespace or uid).
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
        else:
            for pid in others:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        # Reap our own killed children so they stop counting against the process limit.
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        time.sleep(0.002)
    return found


def _child_exit(exc: BaseException | None) -> None:
    """Ends a process forked by user code that ran off the end of the cell."""
    if exc is not None and not isinstance(exc, SystemExit | KeyboardInterrupt):
        with contextlib.suppress(BaseException):
            _add_output(_format_exception(exc))
    code = 0
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    elif exc is not None:
        code = 1
    os._exit(code)


def _after_fork_in_child() -> None:
    STATE.in_child = True
    STATE.running_user_code = False


# ----------------------------------------------------------------------------------------------
# Start-up
# ----------------------------------------------------------------------------------------------
def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = os.read(fd, size - len(chunks))
        except InterruptedError:
            continue
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8", "replace")
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[written:]


def _set_limit(kind: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (soft, hard))


def _libc() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except Exception:  # no ctypes / no libc: these hardening steps are best effort
        return None


def _setup(config: dict[str, Any]) -> tuple[int, int, list[str], bool]:
    """Applies fds, limits and privilege drop. Returns (command fd, result fd, problems, netns)."""
    problems: list[str] = []
    command_fd = os.dup(0)
    result_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    # Writing past RLIMIT_FSIZE should raise OSError in the cell, not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    mb = 1024 * 1024
    _set_limit(resource.RLIMIT_AS, config["memory_mb"] * mb)
    _set_limit(resource.RLIMIT_CPU, config["cpu_s"], config["cpu_s"] + 1)
    _set_limit(resource.RLIMIT_FSIZE, config["file_mb"] * mb)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NPROC, config["nproc"])
    _set_limit(resource.RLIMIT_NOFILE, 1024)

    libc = _libc()
    net_isolated = False
    if config.get("unshare_net") and libc is not None:
        # Without bubblewrap a root worker can still leave the host's network namespace.
        clone_newnet = 0x40000000
        net_isolated = libc.unshare(clone_newnet) == 0
    uid, gid = config.get("uid"), config.get("gid")
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise RuntimeError("could not drop privileges")
    if libc is not None:
        pr_set_pdeathsig, pr_set_no_new_privs, pr_set_child_subreaper = 1, 38, 36
        libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0)
        # Not dumpable: a program this worker runs (same uid) cannot open /proc/<worker>/fd/*
        # (the result pipe), /proc/<worker>/mem or /proc/<worker>/environ.
        pr_set_dumpable = 4
        libc.prctl(pr_set_dumpable, 0, 0, 0, 0)
        if config.get("subreaper"):
            # Orphans of model code become our children (bubblewrap's init does this inside
            # its namespace), so after a timeout we can reap what we killed: zombies would
            # otherwise keep counting against the process limit until the host's init reaps.
            libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
        # Die with the parent (after the uid change, which clears this setting).
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    parent = config.get("parent_pid")
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent died before the death signal was armed

    scratch = config["scratch"]
    os.chdir(scratch)
    sys.path.insert(0, scratch)
    for entry in sys.path[1:]:
        if os.path.isdir(entry) and not os.access(entry, os.R_OK | os.X_OK):
            problems.append(f"not readable after the privilege drop: {entry}")
    if config.get("probe"):
        try:
            import decimal  # noqa: F401 - loads an extension module from the standard library
        except Exception as exc:
            problems.append(f"importing the standard library failed: {exc!r}")
    global DRAIN_FD
    DRAIN_FD = read_end
    return command_fd, result_fd, problems, net_isolated


DRAIN_FD = -1
CONFIG: dict[str, Any] = {}


def _fd_text(fd: int) -> io.TextIOWrapper:
    raw = os.fdopen(fd, "wb", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", write_through=True)


STDOUT: CaptureStream
STDERR: CaptureStream


def main() -> None:
    global CAPTURE, STDOUT, STDERR
    config = json.loads(sys.argv[1])
    CONFIG.update(config)
    command_fd, result_fd, problems, net_isolated = _setup(config)
    TOOLS.command_fd, TOOLS.result_fd = command_fd, result_fd
    CAPTURE = CappedText(int(config["output_bytes"]))
    STDOUT, STDERR = CaptureStream("<stdout>", 1), CaptureStream("<stderr>", 2)
    sys.stdout, sys.stderr = STDOUT, STDERR
    # The original streams write to the captured internal pipe as well.
    sys.__stdout__ = _fd_text(1)  # type: ignore[misc]
    sys.__stderr__ = _fd_text(2)  # type: ignore[misc]
    sys.stdin = io.StringIO("")  # fd 0 is /dev/null as well
    builtins.input = _no_input
    # Python >= 3.12 warns on fork() in a threaded process; ours has two helper threads that
    # hold no locks a child needs, so the warning would only confuse the model.
    warnings.filterwarnings("ignore", message=r".*multi-threaded, use of fork\(\)")
    os.register_at_fork(after_in_child=_after_fork_in_child)
    sys.addaudithook(_audit)

    global FD_OUTPUT
    FD_OUTPUT = FdOutput(DRAIN_FD)
    FD_OUTPUT.start()
    watchdog = Watchdog(threading.get_ident())
    watchdog.start()
    TOOLS.watchdog = watchdog
    _send(
        result_fd,
        {
            "ready": True,
            "pid": os.getpid(),
            "uid": os.getuid(),
            "problems": problems,
            "net_isolated": net_isolated,
        },
    )
    if config.get("probe"):
        os._exit(0)
    runner = Runner(FD_OUTPUT, watchdog, int(config["memory_mb"]), int(config["cpu_s"]))
    while True:
        header = _read_exact(command_fd, 4)
        if header is None:
            os._exit(0)
        (size,) = struct.unpack(">I", header)
        payload = _read_exact(command_fd, size)
        if payload is None:
            os._exit(0)
        command = json.loads(payload.decode("utf-8"))
        if "tool_reply" in command:
            continue  # an answer to a tool call nobody waits for any more
        try:
            reply = runner.run(
                command["code"],
                int(command["n"]),
                float(command["timeout"]),
                command["program"],
                _program_limit(command.get("limit")),
                bool(command.get("reuse")),
                list(command.get("tools") or ()),
                _wall(command.get("wall")),
            )
        except BaseException as exc:  # our own bookkeeping failed (e.g. memory): still answer
            reply = {
                "output": f"{type(exc).__name__} while running the cell",
                "error": type(exc).__name__,
                "timed_out": False,
                "truncated": False,
                "exit_code": 1,
            }
        _send(result_fd, reply)


if __name__ == "__main__":
    main()
