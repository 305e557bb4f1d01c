"""Step-level critique: the feedback model names the first wrong step of the latest turn and why."""

from __future__ import annotations

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.model_feedback import ModelFeedback, clean_output
from mulligan.models.base import GenerateParams, Model


class CritiqueFeedback(ModelFeedback):
    """After every turn, a critic points at the first wrong step (``critic.j2``).

    Args:
        model: the critic model.
        reference: show it the reference (default), recorded as ``saw_reference``.
        params: sampling settings.
    """

    name = "critic"
    kind: FeedbackKind = "critique"

    def __init__(
        self,
        model: Model,
        *,
        reference: bool = True,
        params: GenerateParams | None = None,
        max_trajectory_chars: int = 12_000,
    ) -> None:
        super().__init__(
            model,
            "critic.j2",
            reference=reference,
            params=params,
            max_trajectory_chars=max_trajectory_chars,
        )

    def make_event(self, ctx: FeedbackContext, reply: str) -> FeedbackEvent | None:
        return self.event(ctx, "critique", clean_output(reply), expertise="expert")
