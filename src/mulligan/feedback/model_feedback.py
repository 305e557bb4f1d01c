"""What every model-based feedback provider shares: the trajectory it is shown, the model call
(recorded as a ``ModelCallEvent(role="feedback")``) and regeneration after a leak."""

from __future__ import annotations

import re
from typing import Any

from mulligan.events import ErrorEvent, Expertise, FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.templates import FeedbackTemplate, load_template
from mulligan.models.base import CallContext, ContextWindowExceeded, GenerateParams, Model
from mulligan.prompts.templates import to_messages

DEFAULT_PARAMS = GenerateParams(temperature=0.0, max_tokens=256, seed=0)
"""Greedy, short: feedback should be a few sentences, and the same every time."""

OMITTED = "[... earlier turns omitted ...]"

# A feedback model sometimes goes on to write the assistant's next turn; cut it there.
_RUNAWAY = re.compile(r"\n\s*(?:Assistant|Observation|Task|User)\s*:", re.IGNORECASE)
_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:expert\s+|user\s+)?(?:feedback|critique|review)(?:\*\*)?\s*:\s*",
    re.IGNORECASE,
)


def render_trajectory(ctx: FeedbackContext, max_chars: int = 12_000) -> str:
    """The policy's turns so far as plain text: replies, observations and the latest action.

    The instruction prompt (messages before the first reply) is left out, since templates show
    the task itself. When longer than ``max_chars``, the oldest turns are dropped.
    """
    messages = list(ctx.messages)
    first = next((i for i, m in enumerate(messages) if m.role == "assistant"), len(messages))
    parts: list[str] = []
    for message in messages[first:]:
        text = message.content.strip()
        if message.role == "assistant":
            parts.append(f"Assistant:\n{text}")
        elif text.lower().startswith("observation:"):
            parts.append(text)
        else:
            parts.append(f"Observation:\n{text}")
    observation = ctx.observation
    if observation is not None:
        parts.append(f"Observation:\n{observation.content.strip()}")
    elif ctx.action.kind == "solution":
        parts.append("[The assistant proposed the solution above.]")
    text = "\n\n".join(parts)
    if len(text) > max_chars:
        text = OMITTED + "\n" + text[-max_chars:]
    return text


def reference_text(ctx: FeedbackContext) -> str:
    """What a reference-seeing provider is shown: the answer, or for code tasks the gold code
    (their ``reference`` is test code, which says less about *how* to fix a bug)."""
    if ctx.task.category == "code_generation":
        return ctx.task.gold_solution.strip()
    return ctx.task.reference.strip()


def clean_output(text: str) -> str:
    """The model's reply without a leading label and without a runaway next turn."""
    text = _LABEL.sub("", text.strip(), count=1)
    runaway = _RUNAWAY.search(text)
    if runaway is not None:
        text = text[: runaway.start()]
    return text.strip()


class ModelFeedback:
    """Base of providers whose feedback a model writes.

    Subclasses set ``name`` and ``kind``, pick a template and implement :meth:`variables`
    (what the template is rendered with) and :meth:`make_event` (the reply -> an event).

    Args:
        model: the model that writes the feedback.
        template: file name under ``prompts/feedback/``.
        reference: whether the model is shown the reference (recorded as ``saw_reference``).
        params: sampling settings (default :data:`DEFAULT_PARAMS`).
        max_trajectory_chars: the trajectory is cut to this many characters (newest kept).
    """

    name: str = "model"

    def __init__(
        self,
        model: Model,
        template: str,
        *,
        reference: bool,
        params: GenerateParams | None = None,
        max_trajectory_chars: int = 12_000,
    ) -> None:
        self.model = model
        self.template: FeedbackTemplate = load_template(template)
        self.reference = reference
        self.params = params or DEFAULT_PARAMS
        self.max_trajectory_chars = max_trajectory_chars

    @property
    def source(self) -> str:
        return f"model:{self.model.name}"

    def applies(self, ctx: FeedbackContext) -> bool:
        """Whether to give feedback at all this turn (default: every turn)."""
        return True

    def variables(self, ctx: FeedbackContext) -> dict[str, Any]:
        """The template's variables; subclasses add their own."""
        return {
            "task_text": ctx.task.prompt.strip(),
            "category": ctx.task.category,
            "trajectory": render_trajectory(ctx, self.max_trajectory_chars),
            "reference": reference_text(ctx) if self.reference else None,
            "earlier_feedback": [e.content for e in ctx.earlier_feedback if e.content],
            "revision": None,
        }

    def make_event(self, ctx: FeedbackContext, reply: str) -> FeedbackEvent | None:
        raise NotImplementedError

    def event(
        self,
        ctx: FeedbackContext,
        kind: FeedbackKind,
        content: str,
        expertise: Expertise = "none",
    ) -> FeedbackEvent | None:
        """The event for ``content`` with this provider's provenance; None when it is empty."""
        if not content:
            return None
        return FeedbackEvent(
            turn=ctx.turn,
            kind=kind,
            source=self.source,
            content=content,
            saw_reference=self.reference,
            expertise=expertise,
            template_hash=self.template.hash,
        )

    def render(
        self, ctx: FeedbackContext, revision: str | None = None, trajectory_chars: int | None = None
    ) -> str:
        """The prompt sent to the feedback model (``revision``: a leaked draft to avoid;
        ``trajectory_chars``: a tighter cut of the trajectory than the provider's own)."""
        variables = self.variables(ctx)
        variables["revision"] = revision
        if trajectory_chars is not None:
            variables["trajectory"] = render_trajectory(ctx, trajectory_chars)
        return self.template.render(**variables).strip()

    async def ask(self, ctx: FeedbackContext, prompt: str, attempt: int = 0) -> str:
        """One call of the feedback model; recorded on the transcript when ``ctx.emit`` is set."""
        # A new seed per regeneration, so a cache or a seeded sampler gives a new draft.
        params = self.params.model_copy(update={"seed": self.params.seed + attempt})
        completion = await self.model.generate(
            to_messages(prompt),
            params,
            CallContext(task=ctx.task, turn=ctx.turn, epoch=ctx.epoch),
        )
        if ctx.emit is not None:
            ctx.emit(completion.to_event(ctx.turn, "feedback", params.temperature))
        return completion.text

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        if not self.applies(ctx):
            return None
        try:
            reply = await self.ask(ctx, self.render(ctx))
        except ContextWindowExceeded as first:
            # A long trajectory must not end the episode: retry with its newest quarter only,
            # then give no feedback this turn (recorded, so the gap is visible).
            shorter = max(1_000, self.max_trajectory_chars // 4)
            try:
                reply = await self.ask(ctx, self.render(ctx, trajectory_chars=shorter))
            except ContextWindowExceeded:
                if ctx.emit is not None:
                    ctx.emit(
                        ErrorEvent(turn=ctx.turn, where=f"feedback:{self.name}", message=str(first))
                    )
                return None
        return self.make_event(ctx, reply)

    async def revise(
        self, ctx: FeedbackContext, leaked: FeedbackEvent, attempt: int
    ) -> FeedbackEvent | None:
        """Ask again, showing the leaked draft and asking for one that keeps the answer hidden."""
        reply = await self.ask(ctx, self.render(ctx, revision=leaked.content), attempt)
        return self.make_event(ctx, reply)
