"""What every checker builds its verdicts with: answer-size limits, ``CheckResult`` constructors
and ``TextChecker``, the base of the checkers that judge text in-process."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mulligan.tasks.base import CheckResult, CodeRunner, Task

MAX_TEXT_ANSWER_CHARS = 10_000
"""Longest text answer judged. MINT capped a turn at 512 tokens (about 2,000 characters), so
anything longer is not an answer; refusing it also bounds the time spent on regexes."""

MAX_CODE_ANSWER_CHARS = 200_000
"""Longest program judged; far beyond any real solution, small enough to ship to the sandbox."""


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


class TextChecker(ABC):
    """A checker that judges text in-process with pure functions (never ``eval``).

    Subclasses implement :meth:`judge`; :meth:`check` adds the size limit and the async
    signature of the :class:`~mulligan.tasks.base.Checker` protocol. The runner is unused.
    """

    name: str
    max_answer_chars: int = MAX_TEXT_ANSWER_CHARS

    async def check(self, answer: str, task: Task, runner: CodeRunner | None = None) -> CheckResult:
        """Judge ``answer`` (the text inside ``<solution>``) against ``task``."""
        rejected = too_long(answer, self.max_answer_chars)
        if rejected is not None:
            return rejected
        return self.judge(answer, task)

    @abstractmethod
    def judge(self, answer: str, task: Task) -> CheckResult:
        """Judge an answer already known to be within the size limit."""
