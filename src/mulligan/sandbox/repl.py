"""One persistent Python REPL (``Sandbox``) backed by an isolated worker process.

The parent talks to the worker over three pipes it creates itself (commands, results, the
worker's stderr), so waiting for the worker never depends on pipes that processes spawned by
model code may keep open. A cell that overruns its time limit is interrupted inside the worker
(state kept); one that ignores the interrupt is killed with all its processes and the worker is
restarted (state lost, files in the scratch directory kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import struct
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

from mulligan.sandbox.isolation import (
    IsolationMode,
    IsolationRequest,
    WorkerIdentity,
    detect_isolation,
    kill_worker_processes,
    new_identity,
    release_identity,
    rotate_uid,
    worker_command,
    worker_env,
)
from mulligan.sandbox.limits import CellResult, SandboxError, SandboxLimits
from mulligan.tasks.environment import ToolCallError, ToolSpec

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
_KILL_WAIT_S = 5.0
# The worker caps its output; anything near this size means the channel was abused.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_STDERR_TAIL_BYTES = 8192
_LOST_STATE = (
    "All variables, imports and definitions were lost; files in the working directory were kept."
)

Status = Literal["ok", "died", "hung"]


class ToolHost(Protocol):
    """What answers a cell's tool calls (an environment adapter): the tools to define in the
    worker, and one call at a time. ``call_tool`` raises ``ToolCallError`` for a call it
    refuses; its message is raised in the cell as ``ToolError``."""

    @property
    def tool_specs(self) -> Sequence[ToolSpec]: ...

    async def call_tool(self, name: str, args: list[Any]) -> str: ...


PROGRAM_WALL_FACTOR = 5.0
"""A program's ``timeout_s`` is CPU time; it is stopped after this many times as much wall
time (a program that sleeps or blocks must still end). CPU time, so that a checked program's
verdict does not depend on the machine's load: under load a program gets its CPU seconds,
just later."""


def program_wall_s(timeout_s: float) -> float:
    """The wall-clock backstop of a program whose CPU-time limit is ``timeout_s``."""
    return timeout_s * PROGRAM_WALL_FACTOR


def _grace_s(timeout_s: float) -> float:
    """Extra wall time after a cell's limit before the parent kills an unresponsive worker."""
    return 1.0 + 0.1 * timeout_s


class _StderrTail(asyncio.Protocol):
    """Keeps the last few KB of the worker's own stderr (start-up and bubblewrap errors)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > _STDERR_TAIL_BYTES:
            del self.data[:-_STDERR_TAIL_BYTES]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace").strip()


class _ProtocolError(Exception):
    """The worker sent something that is not a well-formed message."""


@dataclass(repr=False)
class _Worker:
    """One worker process and the parent's ends of its pipes."""

    process: asyncio.subprocess.Process
    results: asyncio.StreamReader
    transports: list[asyncio.BaseTransport]
    commands: asyncio.WriteTransport
    stderr: _StderrTail

    @classmethod
    async def spawn(cls, argv: Sequence[str], env: dict[str, str], cwd: str) -> _Worker:
        loop = asyncio.get_running_loop()
        command_read, command_write = os.pipe()
        result_read, result_write = os.pipe()
        error_read, error_write = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=command_read,
                stdout=result_write,
                stderr=error_write,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except BaseException:
            for fd in (command_write, result_read, error_read):
                os.close(fd)
            raise
        finally:
            for fd in (command_read, result_write, error_write):
                os.close(fd)
        files = [
            os.fdopen(result_read, "rb", 0),
            os.fdopen(command_write, "wb", 0),
            os.fdopen(error_read, "rb", 0),
        ]
        results = asyncio.StreamReader(limit=2**16)
        stderr = _StderrTail()
        transports: list[asyncio.BaseTransport] = []
        try:
            result_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(results), files[0]
            )
            transports.append(result_transport)
            commands, _ = await loop.connect_write_pipe(asyncio.Protocol, files[1])
            transports.append(commands)
            error_transport, _ = await loop.connect_read_pipe(lambda: stderr, files[2])
            transports.append(error_transport)
        except BaseException:
            # Cancelled (e.g. the pool is closing) before anyone holds this worker: end it.
            for transport in transports:
                transport.close()
            for file in files:
                file.close()
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
        return cls(
            process=process,
            results=results,
            transports=transports,
            commands=commands,
            stderr=stderr,
        )

    def __repr__(self) -> str:
        return f"<sandbox worker pid={self.process.pid}>"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8", "surrogatepass")
        self.commands.write(struct.pack(">I", len(data)) + data)

    async def _read_message(self) -> dict[str, Any]:
        header = await self.results.readexactly(4)
        (size,) = struct.unpack(">I", header)
        if size > _MAX_MESSAGE_BYTES:
            raise _ProtocolError(f"message of {size} bytes")
        payload = await self.results.readexactly(size)
        try:
            message = json.loads(payload.decode("utf-8", "replace"))
        except ValueError as exc:
            raise _ProtocolError(str(exc)) from exc
        if not isinstance(message, dict):
            raise _ProtocolError("message is not an object")
        return message

    async def receive(self, timeout_s: float) -> tuple[Status, dict[str, Any] | None]:
        """Waits for the next message, the worker's exit, or the timeout (whichever first)."""
        reading = asyncio.ensure_future(self._read_message())
        exiting = asyncio.ensure_future(self.process.wait())
        try:
            done, _ = await asyncio.wait(
                {reading, exiting}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            exiting.cancel()
            if not reading.done():
                reading.cancel()
        if reading in done:
            if reading.exception() is None:
                return "ok", reading.result()
            logger.debug("sandbox worker channel failed: %r", reading.exception())
            return "died", None
        if exiting in done:
            return "died", None
        return "hung", None

    def close_pipes(self) -> None:
        for transport in self.transports:
            transport.close()


def _exit_reason(returncode: int | None, mode: IsolationMode, limits: SandboxLimits) -> str:
    if returncode is None:
        return "it stopped answering"
    number: int | None = None
    if returncode < 0:
        number = -returncode
    elif mode.use_bwrap and returncode > 128:
        number = returncode - 128  # bubblewrap reports a signal as 128 + its number
    if number == signal.SIGXCPU:
        return f"its CPU time limit of {limits.cpu_s} s was used up"
    if number == signal.SIGKILL:
        return "it was killed (SIGKILL), possibly for using too much memory"
    if number == signal.SIGSEGV:
        return "it crashed with a segmentation fault"
    if number is not None:
        try:
            return f"it was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"it was killed by signal {number}"
    return f"it exited with status {returncode}"


async def _answer_tool_call(tools: ToolHost | None, call: Any) -> dict[str, Any]:
    """The reply to one tool-call message: the host's result, or an error the stub raises.
    The message comes from model-controlled code, so its shape is checked, not trusted."""
    number = call.get("id") if isinstance(call, dict) else None
    name = call.get("name") if isinstance(call, dict) else None
    args = call.get("args") if isinstance(call, dict) else None
    if not isinstance(name, str) or not isinstance(args, list):
        return {"tool_reply": number, "error": "malformed tool call"}
    if tools is None or name not in {spec.name for spec in tools.tool_specs}:
        return {"tool_reply": number, "error": f"no tool named {name!r} in this session"}
    try:
        result = await tools.call_tool(name, args)
    except ToolCallError as exc:
        return {"tool_reply": number, "error": str(exc)}
    return {"tool_reply": number, "result": result}


@dataclass(frozen=True)
class _Outcome:
    """A cell's result plus the exit code (used for whole-program runs)."""

    cell: CellResult
    exit_code: int
    clean: bool = False  # a warm program runner may run the next program (see run_program)


def _command(
    code: str,
    n: int,
    timeout_s: float,
    program: bool,
    output_limit: int | None,
    reuse: bool,
    tools: ToolHost | None,
) -> dict[str, Any]:
    """The worker's command for one cell or program (the protocol in ``_worker.py``): a
    program's ``timeout`` is CPU seconds, with its wall-clock backstop in ``wall``."""
    command: dict[str, Any] = {
        "code": code,
        "n": n,
        "timeout": timeout_s,
        "program": program,
        "reuse": reuse,
    }
    if output_limit is not None:
        command["limit"] = output_limit
    if program:
        command["wall"] = program_wall_s(timeout_s)
    elif tools is not None:
        command["tools"] = [spec.wire() for spec in tools.tool_specs]
    return command


class Sandbox:
    """One live Python REPL for one episode, running model-written code in its own worker.

    Create with ``await Sandbox.create(limits)`` or take one from a ``SandboxPool``. Cells run
    one at a time (concurrent calls queue up). ``close()`` kills the worker and every process it
    started and removes the scratch directory.
    """

    def __init__(
        self,
        limits: SandboxLimits,
        mode: IsolationMode,
        *,
        hide_paths: Sequence[str] = (),
    ) -> None:
        """Prefer ``Sandbox.create``. ``mode`` comes from ``detect_isolation``; ``hide_paths``
        are host paths covered with an empty directory inside bubblewrap."""
        self.limits = limits
        self._mode = mode
        self._hide_paths = tuple(hide_paths)
        self._identity: WorkerIdentity | None = None
        self._worker: _Worker | None = None
        self._count = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._started = False
        self._net_namespace = False
        # Why the worker is gone when the next cell must start a new one (told to the model).
        self._lost_reason: str | None = None
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    async def create(
        cls,
        limits: SandboxLimits | None = None,
        *,
        isolation: IsolationRequest = "auto",
        hide_paths: Sequence[str] = (),
        allow_weak: bool = False,
    ) -> Sandbox:
        """Starts a sandbox with the strongest isolation available (see ``detect_isolation``;
        ``allow_weak`` is the opt-in to a mode weaker than bubblewrap)."""
        mode = await asyncio.to_thread(detect_isolation, isolation, allow_weak=allow_weak)
        sandbox = cls(limits or SandboxLimits(), mode, hide_paths=hide_paths)
        await sandbox.start()
        return sandbox

    async def __aenter__(self) -> Sandbox:
        if not self._started:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def isolation(self) -> str:
        """The isolation mode's name, e.g. 'bwrap' or 'rlimits-only'."""
        return self._mode.name

    @property
    def alive(self) -> bool:
        """True while the worker process is running (a dead one is restarted on next use)."""
        return not self._closed and self._worker is not None and self._worker.alive

    @property
    def network_isolated(self) -> bool:
        """True when the worker has no network (bubblewrap, or its own network namespace)."""
        if self.limits.network:
            return False
        return self._mode.use_bwrap or self._net_namespace

    @property
    def scratch_dir(self) -> str | None:
        """The worker's private working directory (deleted on close)."""
        return self._identity.scratch if self._identity else None

    async def start(self) -> None:
        """Creates the scratch directory and starts the worker (idempotent)."""
        if self._started:
            return
        if self._closed:
            raise SandboxError("this sandbox is closed")
        self._started = True
        try:
            await self._make_identity()
            await self._spawn()
        except BaseException:
            await self.close()
            raise

    async def _make_identity(self) -> None:
        making = asyncio.ensure_future(asyncio.to_thread(new_identity, self._mode))
        try:
            self._identity = await asyncio.shield(making)
        except asyncio.CancelledError:
            # Cancelled (Ctrl-C, SIGTERM) while the thread makes the scratch directory: it
            # makes it anyway, so keep it for close() to remove.
            with contextlib.suppress(Exception):
                self._identity = await making
            raise

    async def _restart(self) -> None:
        """Starts a new worker after the old one died or was killed (state is lost)."""
        if self._identity is not None:
            await asyncio.to_thread(rotate_uid, self._identity)
        await self._spawn()

    async def _spawn(self) -> None:
        if self._closed or self._identity is None:
            raise SandboxError("this sandbox is closed")
        identity = self._identity
        argv = worker_command(self._mode, self.limits, identity, hide=self._hide_paths)
        worker = await _Worker.spawn(argv, worker_env(self._mode, identity), identity.scratch)
        try:
            status, hello = await worker.receive(_START_TIMEOUT_S)
        except BaseException:
            await self._kill(worker)
            raise
        if status != "ok" or not hello or not hello.get("ready"):
            detail = worker.stderr.text()[-2000:] or "no error output"
            await self._kill(worker)
            raise SandboxError(f"sandbox worker ({self._mode.name}) failed to start: {detail}")
        if self._closed:  # close() ran while we were starting: it could not see this worker
            await self._kill(worker)
            raise SandboxError("this sandbox is closed")
        self._net_namespace = bool(hello.get("net_isolated"))
        self._worker = worker

    async def _kill(self, worker: _Worker) -> None:
        """Kills the worker and all its processes, and reaps it."""
        if self._identity is not None:
            await asyncio.to_thread(
                kill_worker_processes, self._mode, self._identity, worker.process.pid
            )
        try:
            await asyncio.wait_for(worker.process.wait(), _KILL_WAIT_S)
        except TimeoutError:
            logger.warning("sandbox worker %d did not exit after SIGKILL", worker.process.pid)
        worker.close_pipes()

    async def execute(
        self, code: str, timeout_s: float | None = None, *, tools: ToolHost | None = None
    ) -> CellResult:
        """Runs one cell in the persistent namespace and returns what the model should see.

        ``timeout_s`` overrides ``limits.cell_timeout_s`` for this cell (the time ``tools``
        take to answer does not count in it). ``tools``: the worker defines a stub per tool, and each
        call the cell makes is answered by ``tools.call_tool`` here, outside the box. Never
        raises for anything the code does; raises SandboxError only if the sandbox is closed or
        a worker cannot be started at all.
        """
        timeout = self.limits.cell_timeout_s if timeout_s is None else timeout_s
        outcome = await self._run(code, timeout, program=False, tools=tools)
        return outcome.cell

    async def _run(
        self,
        code: str,
        timeout_s: float,
        *,
        program: bool,
        output_limit: int | None = None,
        reuse: bool = False,
        tools: ToolHost | None = None,
    ) -> _Outcome:
        async with self._lock:
            if self._closed:
                raise SandboxError("this sandbox is closed")
            if not self._started:
                await self.start()
            started = time.monotonic()
            if not program and not code.strip():
                return _Outcome(CellResult(output="", error=None, duration_s=0.0), 0)
            notes = ""
            restarted = False
            if self._worker is None or not self._worker.alive:
                reason, self._lost_reason = self._lost_reason, None
                if self._worker is not None:
                    # It ended between cells (e.g. a background thread exited the process).
                    dead = self._worker
                    reason = _exit_reason(dead.process.returncode, self._mode, self.limits)
                    self._worker = None
                    await self._kill(dead)
                if reason is not None:
                    notes = (
                        f"[The Python process had ended since the last cell ({reason}) and was "
                        f"restarted. {_LOST_STATE}]\n"
                    )
                    restarted = True
                if self._count > 0:
                    await self._restart()
                else:
                    await self._spawn()
            worker = self._worker
            assert worker is not None
            self._count += 1
            command = _command(code, self._count, timeout_s, program, output_limit, reuse, tools)
            wait_s = float(command.get("wall", timeout_s))
            worker.send(command)
            try:
                status, reply = await self._receive_reply(worker, wait_s, tools)
            except (asyncio.CancelledError, Exception) as exc:
                # Cancelled, or the tool host failed mid-cell: the reply would arrive as the
                # answer to the next cell (or never): drop this worker.
                self._worker = None
                self._lost_reason = (
                    "the previous cell was cancelled"
                    if isinstance(exc, asyncio.CancelledError)
                    else f"a tool call failed outside the sandbox ({type(exc).__name__})"
                )
                self._in_background(self._kill(worker))
                raise
            duration = time.monotonic() - started
            if status == "ok" and reply is not None:
                output = notes + str(reply.get("output", ""))
                cell = CellResult(
                    output=output.rstrip("\n"),
                    error=reply.get("error"),
                    timed_out=bool(reply.get("timed_out")),
                    truncated=bool(reply.get("truncated")),
                    duration_s=duration,
                    restarted=restarted,
                )
                clean = reuse and not restarted and reply.get("clean") is True
                return _Outcome(cell, int(reply.get("exit_code", 0)), clean)
            return await self._recover(worker, status, timeout_s, notes, duration, program)

    async def _receive_reply(
        self, worker: _Worker, timeout_s: float, tools: ToolHost | None
    ) -> tuple[Status, dict[str, Any] | None]:
        """The cell's reply, answering its tool calls on the way. The time the host takes to
        answer is not the cell's (the worker's watchdog pauses too); each tool bounds its own
        calls, and the episode's tool budget their number."""
        deadline = time.monotonic() + timeout_s + _grace_s(timeout_s)
        while True:
            status, reply = await worker.receive(max(deadline - time.monotonic(), 0.0))
            if status != "ok" or reply is None or "tool_call" not in reply:
                return status, reply
            asked = time.monotonic()
            answer = await _answer_tool_call(tools, reply["tool_call"])
            host_s = time.monotonic() - asked
            deadline += host_s
            worker.send({**answer, "host_s": host_s})

    async def _recover(
        self,
        worker: _Worker,
        status: Status,
        timeout_s: float,
        notes: str,
        duration: float,
        program: bool,
    ) -> _Outcome:
        """Kills a hung or dead worker, restarts it (for REPLs), and explains what happened."""
        if status == "died" and worker.process.returncode is None:
            # The channel closed first; give the exit status a moment to arrive.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.process.wait(), 1.0)
        returncode = worker.process.returncode
        self._worker = None
        await self._kill(worker)
        if status == "hung":
            error, timed_out = "Timeout", True
            message = (
                f"Timeout: the cell was still running after {timeout_s:g} s and did not stop "
                f"when interrupted, so the Python process was killed"
            )
            exit_code = 1
        elif self._closed:
            message = "WorkerDied: the sandbox was closed while the cell was running."
            cell = CellResult(output=notes + message, error="WorkerDied", restarted=True)
            return _Outcome(cell, 1)
        else:
            error, timed_out = "WorkerDied", False
            reason = _exit_reason(returncode, self._mode, self.limits)
            message = f"WorkerDied: the Python process ended while running the cell ({reason})"
            exit_code = 1 if returncode is None else returncode
        if program and exit_code == 0 and not timed_out:
            # os._exit(0): a successful exit, though what it printed was not collected.
            message = "(the program ended with exit status 0 before its output was collected)"
            return _Outcome(CellResult(output=message, error=None, duration_s=duration), 0)
        if program:
            output = f"{message}."
        else:
            output = f"{message} and was restarted. {_LOST_STATE}"
            if not self._closed:
                try:
                    await self._restart()
                except SandboxError as exc:  # the next execute() tries again
                    logger.warning("sandbox worker restart failed: %s", exc)
        cell = CellResult(
            output=notes + output,
            error=error,
            timed_out=timed_out,
            truncated=False,
            duration_s=duration,
            restarted=True,
        )
        return _Outcome(cell, exit_code)

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Kills the worker and all its descendants and deletes the scratch directory.

        Safe to call twice, and while a cell runs (that cell then reports WorkerDied).
        """
        if self._closed:
            return
        self._closed = True
        worker, self._worker = self._worker, None
        try:
            if worker is not None:
                await self._kill(worker)
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            identity = self._identity
            if identity is not None:
                if worker is None:
                    # No worker to kill, but processes of this uid could still be around.
                    await asyncio.to_thread(kill_worker_processes, self._mode, identity, None)
                await asyncio.to_thread(release_identity, identity)
        except asyncio.CancelledError:
            # Cancelled half-way (a shutdown cancels every task left, shielded ones included):
            # finish here, blocking, rather than leave processes or the directory behind.
            self._finish_close_now(worker)
            raise
        finally:
            self._identity = None

    def _finish_close_now(self, worker: _Worker | None) -> None:
        identity = self._identity
        if identity is None:
            return
        kill_worker_processes(self._mode, identity, worker.process.pid if worker else None)
        if worker is not None:
            worker.close_pipes()
        release_identity(identity)

    async def run_program(
        self, code: str, timeout_s: float = 10.0, output_limit: int | None = None
    ) -> tuple[CellResult, int]:
        """Runs ``code`` as a whole program (``__name__ == '__main__'``, fresh namespace).

        Returns the result and the exit status (0 = success). Meant for a fresh sandbox that
        is closed afterwards; ``SandboxPool.run_program`` does exactly that.
        """
        outcome = await self._run(code, timeout_s, program=True, output_limit=output_limit)
        return outcome.cell, outcome.exit_code

    async def run_program_warm(
        self, code: str, timeout_s: float = 10.0, output_limit: int | None = None
    ) -> tuple[CellResult, int, bool]:
        """:meth:`run_program` for a warm program runner: a sandbox that runs only programs,
        one after another, each in a fresh child of the worker. Also returns whether the worker
        came back clean (every process the program started had ended by itself; the scratch
        directory and the private ``/tmp`` and ``/dev/shm`` were emptied): only then may it run
        the next program. Never mix with :meth:`execute` on one sandbox."""
        outcome = await self._run(
            code, timeout_s, program=True, output_limit=output_limit, reuse=True
        )
        return outcome.cell, outcome.exit_code, outcome.clean

    @property
    def runs(self) -> int:
        """Cells and programs this sandbox has run."""
        return self._count
