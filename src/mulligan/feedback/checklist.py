"""Checklist feedback (RefineBench style): each rubric item of the task, satisfied or not.

The items come from ``Task.checklist``; tasks without one get no checklist feedback. Under ``--stop never`` it follows every proposal,
right or wrong, so (without ``reference``) it does not tell the verdict. The feedback model judges the latest proposal item by item; its reply
is parsed line by line (``3. YES - reason``) and shown as a checklist. Items it did not judge
are shown as unknown rather than guessed.
"""

from __future__ import annotations

from typing import Any

from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback.base import FeedbackContext
from mulligan.feedback.model_feedback import ModelFeedback
from mulligan.models.base import GenerateParams, Model
from mulligan.prompts.verdict import parse_checklist
from mulligan.tasks.base import Task

__all__ = ["ChecklistFeedback", "parse_checklist", "task_checklist"]


def task_checklist(task: Task) -> list[str]:
    """The checklist items of a task (``Task.checklist``), blank ones left out."""
    return [item.strip() for item in task.checklist if item.strip()]


class ChecklistFeedback(ModelFeedback):
    """After each proposal, the task's checklist with each item marked.

    Args:
        model: the grading model.
        reference: show it the reference too (default: no; the checklist guides it).
        params: sampling settings.
    """

    name = "checklist"
    kind: FeedbackKind = "checklist"

    def __init__(
        self,
        model: Model,
        *,
        reference: bool = False,
        params: GenerateParams | None = None,
        max_trajectory_chars: int = 12_000,
    ) -> None:
        super().__init__(
            model,
            "checklist.j2",
            reference=reference,
            params=params,
            max_trajectory_chars=max_trajectory_chars,
        )

    def applies(self, ctx: FeedbackContext) -> bool:
        return ctx.action.kind == "solution" and bool(task_checklist(ctx.task))

    def variables(self, ctx: FeedbackContext) -> dict[str, Any]:
        variables = super().variables(ctx)
        variables["checklist"] = task_checklist(ctx.task)
        return variables

    def make_event(self, ctx: FeedbackContext, reply: str) -> FeedbackEvent | None:
        items = task_checklist(ctx.task)
        marks = parse_checklist(reply, len(items))
        done = sum(1 for ok, _ in marks if ok)
        lines = [f"Checklist ({done} of {len(items)} satisfied):"]
        for number, (item, (ok, reason)) in enumerate(zip(items, marks, strict=True), 1):
            box = "[?]" if ok is None else "[x]" if ok else "[ ]"
            lines.append(f"{box} {number}. {item}" + (f" ({reason})" if reason else ""))
        return self.event(ctx, "checklist", "\n".join(lines))
