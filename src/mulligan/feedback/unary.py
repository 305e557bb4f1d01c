"""Unary feedback: a bare "try again" after a wrong proposal ("A Simple Try Again" / UFO).

The text carries no verdict word and no hint, but it is only given after a proposal the checker
judged wrong, so it conveys the same single bit as ``binary``; the event says so
(``saw_reference=True``: it is conditioned on the checker, which knows the reference).
"""

from __future__ import annotations

import hashlib

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext

PHRASINGS: tuple[str, ...] = (
    "Let's try again.",
    "Please try again.",
    "That's not it yet. Try again.",
    "Give it another try.",
)
"""The phrasings chosen from; the first is the paper's fixed one."""


def choose_phrasing(suite: str, task_id: str, turn: int, n: int = len(PHRASINGS)) -> int:
    """Index of the phrasing for this task and turn: stable across runs, processes and epochs.

    A hash rather than ``random`` so that the choice never depends on a seed or on the order in
    which episodes run.
    """
    digest = hashlib.sha256(f"{suite}\0{task_id}\0{turn}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


class UnaryFeedback:
    """Says "Let's try again."-style text after each wrong proposal, and nothing otherwise.

    Args:
        fixed: always use the first phrasing ("Let's try again.") instead of varying it.
    """

    name = "unary"
    kind: FeedbackKind = "unary"

    def __init__(self, *, fixed: bool = False) -> None:
        self.fixed = fixed

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        if not ctx.wrong_proposal:
            return None
        index = 0 if self.fixed else choose_phrasing(ctx.task.suite, ctx.task.id, ctx.turn)
        return FeedbackEvent(
            turn=ctx.turn,
            kind="unary",
            source="rule:try-again" + (":fixed" if self.fixed else ""),
            content=PHRASINGS[index],
            saw_reference=True,
        )
