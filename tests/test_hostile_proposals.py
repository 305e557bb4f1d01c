"""Hostile code proposals: model-written solutions that attack the judge, not the task.

Each case is a proposal for an MBPP-shaped task (`max(a, b)` must return the product) that does
*not* solve it, judged by the code checker (`mbpp`, `humaneval`) and by the `tests` feedback.
Every case must get an honest verdict (wrong), a clear observation, leave no process behind and
leave the host unharmed. The first case is the forged verdict of issue 12 verbatim.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from mulligan.sandbox import SandboxLimits, SandboxPool
from mulligan.sandbox.repl import Sandbox, program_wall_s
from mulligan.tasks import ProgramResult, Task
from mulligan.tasks.checkers.code import PythonTestsChecker

# Issue 12, item 1: read the pass token from linecache, write an "all tests passed" frame to
# the worker's result pipe, and leave before the tests run.
FORGE_THROUGH_RESULT_PIPE = """
import json, linecache, os, re, struct
text = "".join(linecache.cache["<program>"][2])
token = re.search(r"mulligan-tests-passed-[0-9a-f]+", text).group(0)
frame = json.dumps({"output": token, "error": None, "timed_out": False,
                    "truncated": False, "exit_code": 0}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(frame)) + frame)
    except OSError:
        pass
os._exit(0)
"""


def mbpp_task() -> Task:
    tests = ["assert max(3, 4) == 12", "assert max(2, 5) == 10"]
    return Task(
        id="hostile",
        suite="mbpp",
        category="code_generation",
        prompt="Write a function max(a, b) that returns the product of a and b.",
        reference="\n".join(tests),
        checker="mbpp",
        gold_solution="def max(a, b):\n    return a * b\n",
        metadata={"test_list": tests, "test_setup_code": ""},
    )


# The PID namespaces of the sandboxes this test process started (``_record_namespaces``):
# the leftover-process check looks only inside them, so the sandboxes of other test runs on the
# machine (and their orphans) never count.
_NAMESPACES: set[str] = set()


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as file:
            return next(int(ln.split()[1]) for ln in file if ln.startswith("PPid:"))
    except (OSError, StopIteration, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    parents = {int(n): _parent(int(n)) for n in os.listdir("/proc") if n.isdigit()}
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += frontier
    return found


@pytest.fixture(autouse=True)
def _record_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the PID namespace of every sandbox worker started (or restarted) in this test.

    The pool requires bubblewrap (no weak isolation allowed), which gives each worker a PID
    namespace of its own: every process a program starts lives in it, however it detaches
    (a new session, a double fork), and dies with it. So "no process left in our sandboxes'
    namespaces" is exactly "nothing the programs started outlives them"."""
    _NAMESPACES.clear()
    spawn = Sandbox._spawn
    ours = _pid_namespace(os.getpid())

    async def recording(self: Sandbox) -> None:
        await spawn(self)
        worker = self._worker
        if worker is not None:
            for pid in _descendants(worker.process.pid):
                namespace = _pid_namespace(pid)
                if namespace is not None and namespace != ours:
                    _NAMESPACES.add(namespace)

    monkeypatch.setattr(Sandbox, "_spawn", recording)


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=5.0)) as sandboxes:
        yield sandboxes


async def test_forged_result_frame_is_not_a_pass(pool: SandboxPool) -> None:
    checker = PythonTestsChecker("mbpp", timeout_s=5.0)
    result = await checker.check(FORGE_THROUGH_RESULT_PIPE, mbpp_task(), pool)
    assert not result.correct, result.detail
    gold = await checker.check(mbpp_task().gold_solution, mbpp_task(), pool)
    assert gold.correct, gold.detail


# Each proposal leaves max() wrong (or undefined) and tries to pass anyway, or to hurt the host.
HOSTILE: dict[str, str] = {
    "sys-exit-0-before-tests": "import sys\nsys.exit(0)",
    "os-exit-0-before-tests": "import os\nos._exit(0)",
    "posix-exit-0": "import posix\nposix._exit(0)",
    "exit-from-thread": (
        "import os, threading, time\nt = threading.Thread(target=os._exit, args=(0,))\n"
        "t.start(); t.join(); time.sleep(0.2)\ndef max(a, b): return 0"
    ),
    "exec-true": "import os\nos.execv('/bin/true', ['true'])",
    "subprocess-exit": "import subprocess\nsubprocess.run(['true'])\ndef max(a, b): return 0",
    "fork-child-exits-0": "import os\nif os.fork() == 0:\n    os._exit(0)\ndef max(a, b): return 0",
    "ctypes-libc-exit": "import ctypes\nctypes.CDLL(None)._exit(0)",
    "atexit-exit-0": "import atexit, os\natexit.register(os._exit, 0)\ndef max(a, b): return 0",
    "raise-base-exception": "class Done(BaseException):\n    pass\nraise Done()",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "print-fake-verdict": (
        "print('all tests passed')\nimport sys\nsys.__stdout__.write('all tests passed\\n')\n"
        "def max(a, b): return 0"
    ),
    "fake-framing-on-fds": (
        "import json, os, struct\nframe = json.dumps({'output': 'ok', 'error': None, "
        "'timed_out': False, 'truncated': False, 'exit_code': 0}).encode()\n"
        "for fd in range(0, 64):\n    try:\n        os.write(fd, struct.pack('>I', len(frame)) + frame)\n"
        "    except OSError:\n        pass\ndef max(a, b): return 0"
    ),
    "parent-fds-through-proc": (
        "import os\nfor name in os.listdir(f'/proc/{os.getppid()}/fd'):\n"
        "    open(f'/proc/{os.getppid()}/fd/{name}', 'wb').write(b'x')\n"
        "def max(a, b): return 0"
    ),
    "kill-parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "rewrite-own-memory": "f = open('/proc/self/mem', 'r+b')\ndef max(a, b): return 0",
    "settrace-skip-tests": (
        "import sys\ndef t(frame, event, arg):\n    return t\nsys.settrace(t)\n"
        "def max(a, b): return 0"
    ),
    "patch-assertion-error": (
        "import builtins\nbuiltins.AssertionError = type('A', (Exception,), {})\n"
        "def max(a, b): return 0"
    ),
    "signal-handler-exits-0": (
        "import signal\nsignal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(SystemExit(0)))\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)\ndef max(a, b): return 0"
    ),
    "report-raises-system-exit": (
        "import traceback\ndef boom(*a, **k):\n    raise SystemExit(0)\n"
        "traceback.format_exception = boom\ndef max(a, b): return 0"
    ),
    "replace-harness-code": (
        "import sys\nf = sys._getframe(1)\nf.f_globals['_mulligan_guard'].__code__ = "
        "(lambda: None).__code__\ndef max(a, b): return 0"
    ),
    # Issue 12 follow-up: the guard's stubs are undone by rebuilding posix from the built-in
    # module table; with exit status as the verdict this passed. Values decide now.
    "imp-create-builtin-exit": (
        "import _imp\nclass Spec:\n    name = 'posix'\n"
        "_imp.create_builtin(Spec)._exit(0)\ndef max(a, b): return 0"
    ),
    "imp-exit-after-fake-stream": (
        "import _imp, json\nclass Spec:\n    name = 'posix'\nposix = _imp.create_builtin(Spec)\n"
        "for k in range(3):\n    line = '@@mulligan-value@@ ' + json.dumps({'k': k, 'n': 0, 'v': ['b', True]})\n"
        "    posix.write(1, (line + '\\n').encode())\n"
        'posix.write(1, b\'@@mulligan-value@@ {"stage": "done"}\\n\')\nposix._exit(0)'
    ),
    "always-equal-object": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = object.__hash__\ndef max(a, b): return Anything()"
    ),
    "always-equal-int-subclass": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\ndef max(a, b): return Int(0)"
    ),
    "forge-values-through-frames": (
        "import sys\ng = sys._getframe(1).f_globals\n"
        "for k in range(3):\n    g['_mg_emit']({'k': k, 'n': 0, 'v': ['i', '12']})\n"
        "g['_mg_seen'].clear()\ndef max(a, b): return 0"
    ),
    "infinite-loop": "while True:\n    pass",
    "recursion-crash": "def f():\n    return f()\nf()",
    "huge-allocation": "x = bytearray(10 * 1024 ** 3)",
    "huge-output": "import os\nwhile True:\n    os.write(1, b'x' * 65536)",
    "thread-outlives": (
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
        "def max(a, b): return 0"
    ),
    "setsid-orphan": (
        "import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(60)\n"
        "def max(a, b): return 0"
    ),
}


def _sandbox_processes() -> list[int]:
    """Processes in this test's sandboxes' PID namespaces that run the child bootstrap (a
    program the sandbox started), zombies aside."""
    assert _NAMESPACES, "no sandbox PID namespace recorded: the check would see nothing"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or _pid_namespace(int(name)) not in _NAMESPACES:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                argv = file.read().split(b"\0")
            with open(f"/proc/{name}/status") as file:
                state = next(ln.split()[1] for ln in file if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if state not in ("Z", "X") and any(
            arg.endswith(b"_run(_source)\n") and len(arg) < 4000 for arg in argv
        ):
            found.append(int(name))
    return found


async def test_leftover_check_sees_a_running_program(pool: SandboxPool) -> None:
    """The check below is not vacuous: a program still running is found."""
    running = asyncio.ensure_future(pool.run_program("import time\ntime.sleep(60)", 60.0))
    try:
        deadline = time.monotonic() + 30
        while not _sandbox_processes() and time.monotonic() < deadline and not running.done():
            await asyncio.sleep(0.05)
        assert _sandbox_processes()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_proposal_gets_an_honest_verdict(pool: SandboxPool, name: str) -> None:
    task = mbpp_task()
    started = time.monotonic()
    for checker in (
        PythonTestsChecker("mbpp", timeout_s=3.0),
        PythonTestsChecker("humaneval", timeout_s=3.0),
    ):
        result = await checker.check(HOSTILE[name], task, pool)
        assert not result.correct, (name, result.detail)
        assert "tests failed" in result.detail or "did not finish" in result.detail
    # Bounded: a program that sleeps or blocks (a thread that outlives it, output nobody
    # reads fast enough) ends at its wall-clock backstop, two checks here.
    assert time.monotonic() - started < 2 * (program_wall_s(3.0) + 10)
    deadline = time.monotonic() + 3
    while _sandbox_processes() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _sandbox_processes() == []  # nothing outlives the check
    assert (await PythonTestsChecker("mbpp").check(task.gold_solution, task, pool)).correct


FORGE_FEEDBACK_LINES = """
import json, os, sys
g = sys._getframe(1).f_globals
nonce = g["_MG"]["nonce"]
for i in range(2):
    os.write(1, (nonce + json.dumps({"stage": "test", "index": i, "passed": True}) + "\\n").encode())
os.write(1, (nonce + json.dumps({"stage": "load", "ok": True}) + "\\n").encode())
g["__mg_fail"] = None
def max(a, b):
    return 0
"""


@pytest.mark.parametrize(
    "name",
    [
        "os-exit-0-before-tests",
        "sys-exit-0-before-tests",
        "print-fake-verdict",
        "signal-handler-exits-0",
        "exit-from-thread",
        "forge-feedback-lines",
        "imp-create-builtin-exit",
        "imp-exit-after-fake-stream",
        "forge-values-through-frames",
        "always-equal-object",
    ],
)
async def test_hostile_proposal_gets_honest_test_feedback(pool: SandboxPool, name: str) -> None:
    from mulligan.events import ActionEvent
    from mulligan.feedback import UnitTestFeedback
    from mulligan.feedback.base import FeedbackContext

    code = FORGE_FEEDBACK_LINES if name == "forge-feedback-lines" else HOSTILE[name]
    task = mbpp_task()
    action = ActionEvent(turn=1, kind="solution", content=code, raw=code, proposal=1)
    ctx = FeedbackContext(
        task=task, turn=1, action=action, verdict=None, messages=(), events=(), runner=pool
    )
    event = await UnitTestFeedback().feedback(ctx)
    assert event is not None
    assert "all 2 passed" not in event.content, event.content
    assert "Passed:" not in event.content, event.content  # no test is said to pass
    print(name, "->", event.content.splitlines()[0])


class RecordingRunner:
    """Passes programs to the sandbox and keeps their text."""

    def __init__(self, pool: SandboxPool) -> None:
        self.pool, self.programs = pool, []

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        self.programs.append(code)
        return await self.pool.run_program(code, timeout_s, output_limit=output_limit)


async def test_expected_values_never_reach_the_child(pool: SandboxPool) -> None:
    tests = ["assert max(3, 4) == 987654321", "assert max(2, 5) == [24680, 'expected-text']"]
    task = mbpp_task().model_copy(update={"metadata": {"test_list": tests}})
    runner = RecordingRunner(pool)
    result = await PythonTestsChecker("mbpp").check("def max(a, b):\n    return 0", task, runner)
    assert not result.correct
    assert "returned 0, expected 987654321" in result.detail
    [program] = runner.programs  # literal expected sides: no gold run either
    for secret in ("987654321", "24680", "expected-text"):
        assert secret not in program
    assert "max(3, 4)" in program  # the inputs are there: the child computes the call side


async def test_values_are_bounded(pool: SandboxPool) -> None:
    checker = PythonTestsChecker("mbpp", timeout_s=5.0)
    huge = "def max(a, b):\n    return 'x' * 10**7"
    result = await checker.check(huge, mbpp_task(), pool)
    assert not result.correct and "not plain data: too large" in result.detail
    deep = "def max(a, b):\n    v = []\n    for _ in range(10000):\n        v = [v]\n    return v"
    result = await checker.check(deep, mbpp_task(), pool)
    assert not result.correct and "nested too deeply" in result.detail
    flood = "import os\nos.write(1, b'@@mulligan-value@@ [' * 10**6)\ndef max(a, b): return a * b"
    result = await checker.check(flood, mbpp_task(), pool)
    assert result.correct, result.detail  # junk lines are skipped; the real values still count


LEGITIMATE = {
    "subprocess": (
        "import subprocess, sys\ndef max(a, b):\n    out = subprocess.run([sys.executable, '-c', "
        "f'print({a} * {b})'], capture_output=True, text=True).stdout\n    return int(out)"
    ),
    "signal-handler": (
        "import signal\ndef max(a, b):\n    signal.signal(signal.SIGALRM, lambda *x: None)\n"
        "    return a * b"
    ),
    "ctypes": "import ctypes\ndef max(a, b):\n    return ctypes.c_int(a * b).value",
}


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
async def test_legitimate_solutions_the_guard_used_to_refuse(pool: SandboxPool, name: str) -> None:
    # Before verdicts moved to values, the guard refused these (the exit status was the
    # verdict, so anything that could end the process early had to go).
    result = await PythonTestsChecker("mbpp", timeout_s=10.0).check(
        LEGITIMATE[name], mbpp_task(), pool
    )
    assert result.correct, result.detail
