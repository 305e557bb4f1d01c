"""Natural-language feedback from a simulated user (MINT's GPT-4 feedback, made explicit).

A feedback model plays the user: it sees the task, the trajectory so far and, unless told
otherwise, the reference marked "do not disclose", and writes a few sentences of teacher-like
guidance (``user_feedback.j2``). Variants: without the reference, novice or expert wording
(ConvCodeWorld's verbal feedback levels), a persona, or a proper binary verdict
(``user_verdict.j2`` + :func:`~mulligan.prompts.verdict.parse_binary_verdict`, not MINT's
search for the substring "GOOD").
"""

from __future__ import annotations

from typing import Any, Literal

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.model_feedback import ModelFeedback, clean_output
from mulligan.models.base import GenerateParams, Model
from mulligan.prompts.verdict import parse_binary_verdict

UserExpertise = Literal["novice", "expert"]

PERSONAS: dict[str, str] = {
    "teacher": "a patient teacher who wants the assistant to learn, not just to finish.",
    "busy": "a busy professional who writes very short, blunt messages.",
    "novice": "someone new to the subject who describes problems in everyday words.",
    "skeptic": "a skeptical reviewer who asks the assistant to justify each claim.",
    "friendly": "a friendly, encouraging user who points out problems gently.",
}
"""Built-in personas for ``llm:persona=<name>``; any other text can be passed in Python."""

GOOD = "This is GOOD."
BAD = "This is BAD."


class SimulatedUserFeedback(ModelFeedback):
    """A feedback model acting as the user, after every turn.

    Args:
        model: the feedback model.
        reference: show it the reference (MINT does), recorded as ``saw_reference``.
        verdict: give a binary verdict ("This is GOOD." / "This is BAD.", kind ``binary``)
            instead of text (kind ``textual``). Replies with no readable verdict give nothing
            and are counted in ``unparsed``.
        expertise: ``expert`` (precise, points at the faulty step) or ``novice`` (plain words,
            no specific fix); text feedback only.
        persona: a persona name from :data:`PERSONAS` or a description.
        params: sampling settings for the feedback model.
    """

    name = "llm"

    def __init__(
        self,
        model: Model,
        *,
        reference: bool = True,
        verdict: bool = False,
        expertise: UserExpertise = "expert",
        persona: str | None = None,
        params: GenerateParams | None = None,
        max_trajectory_chars: int = 12_000,
    ) -> None:
        super().__init__(
            model,
            "user_verdict.j2" if verdict else "user_feedback.j2",
            reference=reference,
            params=params,
            max_trajectory_chars=max_trajectory_chars,
        )
        self.verdict = verdict
        self.expertise: UserExpertise = expertise
        self.persona = PERSONAS.get(persona, persona) if persona else None
        self.kind: FeedbackKind = "binary" if verdict else "textual"
        self.unparsed = 0

    def variables(self, ctx: FeedbackContext) -> dict[str, Any]:
        variables = super().variables(ctx)
        variables["expertise"] = self.expertise
        variables["persona"] = self.persona
        return variables

    def make_event(self, ctx: FeedbackContext, reply: str) -> FeedbackEvent | None:
        if self.verdict:
            good = parse_binary_verdict(reply)
            if good is None:
                self.unparsed += 1
                return None
            content = GOOD if good else BAD
        else:
            content = clean_output(reply)
        return self.event(ctx, self.kind, content, "none" if self.verdict else self.expertise)
