"""Self-refinement baseline: the policy model critiques its own latest proposal.

No ground truth and no other model: what the policy gains from this is what it gains from a
second look (RefineBench's self-refinement, contrasted with guided refinement).
"""

from __future__ import annotations

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.model_feedback import ModelFeedback, clean_output
from mulligan.models.base import GenerateParams, Model


class SelfFeedback(ModelFeedback):
    """After each wrong proposal, the policy's own review of it (``self_critique.j2``).

    The policy is not told the proposal was wrong by this provider; compose with ``binary``
    (``binary+self``) for that.

    Args:
        policy: the policy model itself.
        params: sampling settings.
    """

    name = "self"
    kind: FeedbackKind = "self"

    def __init__(
        self,
        policy: Model,
        *,
        params: GenerateParams | None = None,
        max_trajectory_chars: int = 12_000,
    ) -> None:
        super().__init__(
            policy,
            "self_critique.j2",
            reference=False,
            params=params,
            max_trajectory_chars=max_trajectory_chars,
        )

    def applies(self, ctx: FeedbackContext) -> bool:
        return ctx.action.kind == "solution"

    def make_event(self, ctx: FeedbackContext, reply: str) -> FeedbackEvent | None:
        return self.event(ctx, "self", clean_output(reply))
