"""The honest no-feedback baseline: the policy learns nothing beyond its own tool output."""

from __future__ import annotations

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext


class NoFeedback:
    """Adds nothing, not even a verdict (unlike MINT's 'no feedback', which says 'wrong')."""

    name = "none"
    kind: FeedbackKind = "none"

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        return None
