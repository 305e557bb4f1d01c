"""The feedback-provider protocol and what a provider gets to see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mulligan.events import (
    ActionEvent,
    Event,
    FeedbackEvent,
    FeedbackKind,
    Message,
    ObservationEvent,
    VerdictEvent,
)
from mulligan.tasks.base import CodeRunner, Task


@dataclass(frozen=True, slots=True)
class FeedbackContext:
    """The state of an episode right after the policy acted.

    ``verdict`` is set only when the action was a proposal. Providers that must not see the
    ground truth read ``task.prompt`` only; whether one saw ``task.reference`` is recorded on
    the event it returns (``saw_reference``).

    Attributes:
        task: the task being solved.
        turn: the 1-based turn the policy just took.
        action: the action parsed from the policy's latest reply.
        verdict: the checker's verdict when ``action`` was a proposal, else None.
        messages: the conversation so far; it ends with the policy's latest reply (this turn's
            observation is not in it yet: read it from ``events``).
        events: the episode's transcript so far, followed by the feedback events that earlier
            providers produced this turn.
        runner: runs whole programs in the sandbox (the ``tests`` provider needs it).
        emit: appends an event to the transcript; model-based providers record their feedback
            model calls with it (``ModelCallEvent(role="feedback")``) so costs are accounted.
        epoch: the episode's epoch, passed on to feedback-model calls.
    """

    task: Task
    turn: int
    action: ActionEvent
    verdict: VerdictEvent | None
    messages: tuple[Message, ...]
    events: tuple[Event, ...]
    runner: CodeRunner | None = None
    emit: Callable[[Event], None] | None = None
    epoch: int = 0

    @property
    def observation(self) -> ObservationEvent | None:
        """This turn's observation (sandbox output or environment notice), if any."""
        for event in reversed(self.events):
            if isinstance(event, ObservationEvent) and event.turn == self.turn:
                return event
        return None

    @property
    def earlier_feedback(self) -> tuple[FeedbackEvent, ...]:
        """Feedback that earlier providers in the chain gave this turn."""
        return tuple(e for e in self.events if isinstance(e, FeedbackEvent) and e.turn == self.turn)

    @property
    def wrong_proposal(self) -> bool:
        """True when the latest action was a proposal the checker judged wrong."""
        return self.verdict is not None and not self.verdict.correct


@runtime_checkable
class FeedbackProvider(Protocol):
    """Turns the latest action (and maybe its verdict) into feedback for the policy.

    Providers shipped with mulligan also carry ``kind`` (the FeedbackKind their events have),
    which frozen-feedback replay uses to line recorded events up with providers.
    """

    name: str

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        """The feedback to show, or None to add nothing this turn."""
        ...


@runtime_checkable
class RevisableFeedback(FeedbackProvider, Protocol):
    """A provider that can write its feedback again when the first text leaked the reference."""

    async def revise(
        self, ctx: FeedbackContext, leaked: FeedbackEvent, attempt: int
    ) -> FeedbackEvent | None:
        """New feedback avoiding ``leaked``'s disclosure; ``attempt`` counts from 1."""
        ...


def provider_kind(provider: object) -> FeedbackKind | None:
    """The ``kind`` a provider declares, if it declares one."""
    kind = getattr(provider, "kind", None)
    return kind if isinstance(kind, str) else None  # type: ignore[return-value]
