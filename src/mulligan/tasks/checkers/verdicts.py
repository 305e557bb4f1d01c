"""What every checker builds its verdicts with: answer-size limits, ``CheckResult`` constructors
and ``TextChecker``, the base of the checkers that judge text with pure functions, in a worker
process under a time limit (or, for short answers to a judge bounded by construction, in this
process: ``TextChecker.judge_inline``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import pickle
from abc import ABC, abstractmethod
from typing import Any

from mulligan.tasks.base import CheckResult, CodeRunner, Task
from mulligan.tasks.checkers.workers import CallTimedOut, WorkerDied, check_workers

MAX_TEXT_ANSWER_CHARS = 10_000
"""Longest text answer judged. MINT capped a turn at 512 tokens (about 2,000 characters), so
anything longer is not an answer; refusing it also bounds the time spent on regexes."""

MAX_CODE_ANSWER_CHARS = 200_000
"""Longest program judged; far beyond any real solution, small enough to ship to the sandbox."""

TEXT_CHECK_TIMEOUT_S = 5.0
"""Limit for judging one text answer. Every judge is bounded to milliseconds by construction;
this is the backstop against a case nobody foresaw, and it ends in a wrong verdict."""


def verdict(correct: bool, detail: str, score: float | None = None) -> CheckResult:
    """A :class:`CheckResult` whose score is 1.0/0.0 unless a partial score is given."""
    value = (1.0 if correct else 0.0) if score is None else min(1.0, max(0.0, score))
    return CheckResult(correct=correct, score=value, detail=detail)


def too_long(answer: str, limit: int) -> CheckResult | None:
    """A rejection when ``answer`` exceeds ``limit`` characters, else None."""
    if len(answer) > limit:
        return verdict(False, f"answer is {len(answer)} characters; the limit is {limit}")
    return None


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a detail message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _judge_pickled(checker: bytes, task: bytes, answer: str) -> CheckResult:
    """Runs in a check worker: unpickle the checker and the task, and judge."""
    result: CheckResult = pickle.loads(checker).judge(answer, _unpickled_task(task))
    return result


@functools.lru_cache(maxsize=256)
def _unpickled_task(payload: bytes) -> Task:
    """A task as the worker received it, unpickled once (a task's every turn sends the same
    bytes; hashing them costs far less than building the task again). Tasks are frozen."""
    task: Task = pickle.loads(payload)
    return task


_TASK_PAYLOADS: collections.OrderedDict[int, tuple[Task, bytes]] = collections.OrderedDict()
_TASK_PAYLOADS_KEPT = 1024


def _task_payload(task: Task) -> bytes:
    """``task`` pickled, once per task object rather than once per check (the task, with its
    prompt, is most of what goes to the worker). Keyed by identity: a ``Task`` is frozen, and
    the entry holds the task, so its ``id`` is not reused while the entry lives."""
    entry = _TASK_PAYLOADS.get(id(task))
    if entry is not None and entry[0] is task:
        with contextlib.suppress(KeyError):  # another thread may have evicted it meanwhile
            _TASK_PAYLOADS.move_to_end(id(task))
        return entry[1]
    payload = pickle.dumps(task)
    _TASK_PAYLOADS[id(task)] = (task, payload)
    if len(_TASK_PAYLOADS) > _TASK_PAYLOADS_KEPT:
        _TASK_PAYLOADS.popitem(last=False)
    return payload


def timed_out(limit_s: float) -> CheckResult:
    """The verdict for an answer whose evaluation overran its limit: wrong."""
    return verdict(False, f"wrong: evaluation timed out after {limit_s:g} s")


@functools.cache
def declares_inline(cls: type[Any]) -> bool:
    """Whether the class that defines ``cls``'s ``judge`` also declares its inline path.

    A subclass that overrides ``judge`` does not inherit its parent's ``inline_max_chars`` or
    ``judge_inline``: the bound was argued for the parent's judge, not for the new one."""
    for klass in cls.__mro__:
        if "judge" in vars(klass):
            return "inline_max_chars" in vars(klass) or "judge_inline" in vars(klass)
    return False


class TextChecker(ABC):
    """A checker that judges text with pure functions (never ``eval``).

    Subclasses implement :meth:`judge`; :meth:`check` adds the size limit, runs the judge in a
    check worker process (``workers.py``) under :data:`TEXT_CHECK_TIMEOUT_S`, so that no answer
    can stall the event loop, and has the async signature of the
    :class:`~mulligan.tasks.base.Checker` protocol. The runner is unused. A judge's own
    exception (a task without the metadata it needs) reaches the caller as before.

    A class whose judge is bounded by construction for short answers skips the worker's round
    trip for them (:meth:`judge_inline`): the verdict is the same, the loop is held for a
    judge's worst case at that size (``benchmarks/check_latency.py --adversarial``).
    """

    name: str
    max_answer_chars: int = MAX_TEXT_ANSWER_CHARS
    timeout_s: float = TEXT_CHECK_TIMEOUT_S
    inline_max_chars: int = 0
    """Longest answer judged in this process, on the event loop (0: none). Set it only for a
    judge read and argued bounded at that size: linear string work, regexes without nested or
    adjacent quantifiers that backtrack more than linearly, no arithmetic whose cost an
    exponent or a digit count in the answer controls (``Decimal``, ``Fraction``, ``int`` of long
    digit strings, ``**``), no sympy, no recursion on the answer's structure. A subclass that
    overrides ``judge`` must declare it again (:func:`declares_inline`)."""

    def judge_inline(self, answer: str, task: Task) -> CheckResult | None:
        """The verdict decided in this process, or None to leave ``answer`` to a worker.

        The default judges answers of at most :attr:`inline_max_chars` characters with
        :meth:`judge`. A judge that is bounded only for some answers (a plain number, not an
        expression) overrides this with a pre-decision that returns None for the rest."""
        if self.inline_max_chars > 0 and len(answer) <= self.inline_max_chars:
            return self.judge(answer, task)
        return None

    async def check(self, answer: str, task: Task, runner: CodeRunner | None = None) -> CheckResult:
        """Judge ``answer`` (the text inside ``<solution>``) against ``task``."""
        rejected = too_long(answer, self.max_answer_chars)
        if rejected is not None:
            return rejected
        if declares_inline(type(self)):
            decided = self.judge_inline(answer, task)
            if decided is not None:
                return decided
        try:
            payload = (pickle.dumps(self), _task_payload(task))
        except (pickle.PicklingError, TypeError, AttributeError):
            payload = None
        if payload is None or type(self).__module__ == "__main__":
            return await self._judge_in_thread(answer, task)
        try:
            return await check_workers().call(self.timeout_s, _judge_pickled, *payload, answer)
        except CallTimedOut:
            return timed_out(self.timeout_s)
        except WorkerDied:
            return verdict(False, "wrong: the evaluation worker died")

    async def _judge_in_thread(self, answer: str, task: Task) -> CheckResult:
        # A plug-in checker that a worker cannot unpickle (defined in a function or in a main
        # script): still off the loop, but a thread cannot be killed, so it relies on its judge
        # being bounded.
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.judge, answer, task), self.timeout_s
            )
        except TimeoutError:
            return timed_out(self.timeout_s)

    @abstractmethod
    def judge(self, answer: str, task: Task) -> CheckResult:
        """Judge an answer already known to be within the size limit."""
