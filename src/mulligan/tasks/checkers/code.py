"""Code checkers: a proposed program passes when it runs its task's tests without error.

As in MINT (``CodeGenTask.success``), the program run is the proposal followed by the task's
test code (``reference``): HumanEval's ``check`` function and its ``check(<entry_point>)`` call,
MBPP's asserts. The task's prompt is *not* prepended, so a HumanEval proposal must bring its
own imports (``from typing import List``); MINT judged such proposals wrong too.

The program runs through the :class:`~mulligan.tasks.base.CodeRunner` (a sandbox process),
never here. It is wrapped in a small harness that reproduces the rest of MINT's execution:
one namespace whose ``__name__`` is not ``"__main__"`` (so ``if __name__ == "__main__":``
blocks do not run), printed output swallowed, and every exception a failure, ``SystemExit``
included: a program calling ``exit(0)`` before its tests must not pass.

The verdict is the exit status of the child process the sandbox worker runs the program in (the
child holds no protocol descriptor and the program no secret): 0 only when the tests ran to the
end. The guard (``_guard.py``) refuses the ordinary ways to end the process with 0 early
(``os._exit``, exec, fork, ``ctypes``, trace functions, signal handlers, ``/proc/*/mem``).

Known limit, as in MINT: a proposal that games Python itself passes, e.g. a function returning
an object whose ``__eq__`` is always true, a rebound builtin the tests rely on, or deliberate
interpreter introspection (frames, ``_imp``) that rebuilds what the guard removed.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from mulligan.tasks.base import CheckResult, CodeRunner, ProgramResult, Task
from mulligan.tasks.checkers.options import CodeOptions, options_of
from mulligan.tasks.checkers.verdicts import MAX_CODE_ANSWER_CHARS, too_long, verdict

DEFAULT_TIMEOUT_S = 10.0
"""MINT's limit for one test run."""

MAX_DETAIL_CHARS = 1_500
FAILURE_BEGIN = "--- mulligan: tests failed ---"
FAILURE_END = "--- mulligan: end of failure ---"

GUARD_SOURCE = "_guard.py"
"""The guard beside this module, read as text (see :mod:`mulligan.tasks.checkers._guard`)."""


@cache
def guard_source() -> str:
    """The guard's source text: the top of every program that judges a proposal."""
    return resources.files("mulligan.tasks.checkers").joinpath(GUARD_SOURCE).read_text("utf-8")


_HARNESS = """
# mulligan test harness: runs a proposed solution followed by its tests (see
# mulligan.tasks.checkers.code). Output is swallowed; any exception is a failure; the process
# exits with status 0 only when the tests ran to the end.
def _mulligan_check(source):
    import io
    import sys
    import traceback

    # Bound before the proposal runs: it may rebind builtins and globals, not these locals.
    run, fail, everything = exec, SystemExit, BaseException
    stdout, sink = sys.stdout, io.StringIO()
    failure = None
    try:
        code = compile(source, "<solution+tests>", "exec", dont_inherit=True)
    except everything as error:
        failure = error
    else:
        _mulligan_guard()
        sys.stdout = sys.stderr = sink
        try:
            run(code, {{"__name__": "__mulligan_check__"}})
        except everything as error:
            failure = error
        else:
            return  # the tests ran to the end: the interpreter exits with status 0
    try:
        sink.seek(0)
        sink.truncate(0)  # what the program printed is discarded, as in MINT
        trace = traceback.format_exception(type(failure), failure, failure.__traceback__)
        stdout.write({begin} + "\\n" + "".join(trace).rstrip()[-3000:] + "\\n" + {end} + "\\n")
        stdout.flush()
    except everything:
        pass  # a proposal that broke the report still fails
    raise fail(1)


_mulligan_check({source})
"""


def build_test_program(solution: str, tests: str) -> str:
    """The program the sandbox runs: the guard and harness around ``solution + "\\n" + tests``.

    The source is embedded as a string literal (``repr``), so nothing in it can break out of
    the harness. The program holds no secret: the verdict is its exit status.
    """
    return guard_source() + _HARNESS.format(
        source=repr(solution + "\n" + tests),
        begin=repr(FAILURE_BEGIN),
        end=repr(FAILURE_END),
    )


def _failure_detail(result: ProgramResult, timeout_s: float) -> str:
    if result.timed_out:
        return f"tests did not finish within {timeout_s:g} s"
    output = result.output
    begin, end = output.find(FAILURE_BEGIN), output.find(FAILURE_END)
    if begin != -1 and end > begin:
        # The harness's own report: the program's traceback, without runner noise.
        trace = output[begin + len(FAILURE_BEGIN) : end].strip()
        lines = trace.splitlines()
        return "tests failed:\n" + "\n".join(lines[-12:])[-MAX_DETAIL_CHARS:]
    tail = "\n".join(output.strip().splitlines()[-12:])[-MAX_DETAIL_CHARS:]
    reason = result.error or "the program failed"
    return f"tests failed: {reason}" + (f"\n{tail}" if tail else "")


class PythonTestsChecker:
    """Runs ``answer + "\\n" + task.reference`` in the sandbox; correct iff it completes.

    With ``with_stub`` the task's function stub (``metadata["stub"]``: imports, signature and
    docstring) runs first, as in OpenAI's HumanEval harness: a proposal may then rely on the
    stub's imports, or be just the function body. MINT runs the proposal alone (a correct
    function that lacks ``from typing import List`` fails there), so its suites do not use it.
    """

    def __init__(
        self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, with_stub: bool = False
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.with_stub = with_stub

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult:
        """Judge a proposed program. ``runner`` executes it in a separate sandbox process."""
        rejected = too_long(answer, MAX_CODE_ANSWER_CHARS)
        if rejected is not None:
            return rejected
        stub = str(task.metadata.get("stub", "")) if self.with_stub else ""
        # A body-only answer continues the stub's function; a full definition replaces it.
        source = (
            f"{stub.rstrip()}\n{answer}"
            if stub and answer.startswith((" ", "\t"))
            else (f"{stub}\n\n{answer}" if stub else answer)
        )
        program = build_test_program(source, task.reference)
        timeout_s = self.timeout_s
        if "checker_options" in task.metadata:  # a task file's own limit
            timeout_s = options_of(task.metadata, CodeOptions).timeout_s
        result = await runner.run_program(program, timeout_s=timeout_s)
        # The exit status alone: nothing the program prints can pass for a result.
        if result.ok and not result.timed_out:
            return verdict(True, "all tests passed")
        return verdict(False, _failure_detail(result, timeout_s))
