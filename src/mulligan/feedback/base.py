"""The feedback-provider protocol and what a provider gets to see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mulligan.events import ActionEvent, Event, FeedbackEvent, Message, VerdictEvent
from mulligan.tasks.base import Task


@dataclass(frozen=True, slots=True)
class FeedbackContext:
    """The state of an episode right after the policy acted.

    ``verdict`` is set only when the action was a proposal. Providers that must not see the
    ground truth read ``task.prompt`` only; whether one saw ``task.reference`` is recorded on
    the event it returns (``saw_reference``).
    """

    task: Task
    turn: int
    action: ActionEvent
    verdict: VerdictEvent | None
    messages: tuple[Message, ...]
    events: tuple[Event, ...]


@runtime_checkable
class FeedbackProvider(Protocol):
    """Turns the latest action (and maybe its verdict) into feedback for the policy."""

    name: str

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        """The feedback to show, or None to add nothing this turn."""
        ...
