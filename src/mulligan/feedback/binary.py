"""The checker's verdict after a wrong proposal, stated as feedback (MINT's oracle bit).

This is exactly what MINT tells the policy in its "no feedback" setting ("Your answer is
wrong."), so ``binary`` reproduces that setting by name; MINT's "with feedback" setting is
``binary+llm`` (the verdict line plus the simulated user's text).
"""

from __future__ import annotations

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.tasks.mint_log import WRONG_ANSWER


class BinaryFeedback:
    """Says 'Your answer is wrong.' after each wrong proposal, as MINT does in every setting."""

    name = "binary"
    kind: FeedbackKind = "binary"

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        if ctx.verdict is None or ctx.verdict.correct:
            return None
        return FeedbackEvent(
            turn=ctx.turn,
            kind="binary",
            source="rule:checker-verdict",
            content=WRONG_ANSWER,
            saw_reference=True,
        )
