"""The judge role: an LLM's second opinion on a proposal the task's checker rejected.

Deterministic checkers are exact but narrow ("Paris, France" vs "Paris"); a judge model decides
whether a rejected free-form answer means the same as the reference. It is asked only about
reasoning tasks (unit tests already decide code) and only after a rejection, so it can turn a
rejection into acceptance but never the reverse. Its calls are recorded as ``judge`` model calls.
Its prompt is ``prompts/judge.j2``; its verdict is read with the same parser as binary feedback's.

The judge role has two more duties, neither shown to the policy: scoring every proposal of a task
that carries a checklist, item by item (``judge_checklist.j2``, :meth:`LLMJudge.score_checklist`),
and reading what verdict a textual feedback message states (``judge_feedback.j2``,
:meth:`LLMJudge.read_feedback_verdict`), so the simulated user can be compared with the checker.
"""

from __future__ import annotations

from collections.abc import Callable

from mulligan.events import ErrorEvent, Event, Message
from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    Model,
)
from mulligan.prompts import load_template, parse_binary_verdict, parse_checklist
from mulligan.tasks.base import CheckResult, Task

TEMPLATE = "judge.j2"
CHECKLIST_TEMPLATE = "judge_checklist.j2"
FEEDBACK_TEMPLATE = "judge_feedback.j2"
CHECKLIST_PARAMS = GenerateParams(temperature=0.0, max_tokens=512, seed=0)
DEFAULT_PARAMS = GenerateParams(temperature=0.0, max_tokens=256, seed=0)
MAX_ANSWER_CHARS = 4_000  # a judge prompt must stay small; longer answers are not free-form


class LLMJudge:
    """Asks ``model`` whether a rejected answer matches the reference."""

    def __init__(
        self, model: Model, params: GenerateParams = DEFAULT_PARAMS, *, reads_feedback: bool = False
    ) -> None:
        self.model = model
        self.params = params
        self.reads_feedback = reads_feedback
        """Whether the episode asks it what verdict each textual feedback states."""
        self.template = load_template(TEMPLATE)
        self.checklist_template = load_template(CHECKLIST_TEMPLATE)
        self.feedback_template = load_template(FEEDBACK_TEMPLATE)

    def applies(self, task: Task, answer: str) -> bool:
        return task.category == "reasoning" and len(answer) <= MAX_ANSWER_CHARS

    async def second_opinion(
        self, task: Task, answer: str, turn: int, epoch: int, emit: Callable[[Event], None]
    ) -> CheckResult | None:
        """A verdict replacing the checker's rejection, or None when the judge does not accept
        it (or gives no readable verdict, or the prompt does not fit its context window: the
        checker's rejection stands, with an error event)."""
        prompt = self.template.render(
            task_text=task.prompt, reference=task.reference, answer=answer
        ).strip()
        completion = await self._ask(prompt, self.params, task, turn, epoch, emit, "verdict")
        if completion is None or parse_binary_verdict(completion.text) is not True:
            return None
        return CheckResult(
            correct=True,
            score=1.0,
            detail=f"accepted by judge {self.model.name} (template {self.template.hash}): "
            + completion.text.strip()[-500:],
        )

    async def score_checklist(
        self,
        task: Task,
        answer: str,
        turn: int,
        epoch: int,
        emit: Callable[[Event], None],
    ) -> tuple[bool | None, ...]:
        """The judge's mark for each of ``task.checklist``'s items on ``answer`` (None: the reply
        said nothing readable about that item). Shows the reference for reasoning tasks."""
        prompt = self.checklist_template.render(
            task_text=task.prompt,
            reference=task.reference if task.category == "reasoning" else None,
            answer=answer[: MAX_ANSWER_CHARS * 2],
            checklist=list(task.checklist),
        ).strip()
        params = self.params.model_copy(
            update={"max_tokens": max(self.params.max_tokens, CHECKLIST_PARAMS.max_tokens)}
        )
        completion = await self._ask(prompt, params, task, turn, epoch, emit, "checklist")
        if completion is None:
            return (None,) * len(task.checklist)
        return tuple(ok for ok, _ in parse_checklist(completion.text, len(task.checklist)))

    async def read_feedback_verdict(
        self,
        task: Task,
        answer: str,
        feedback: str,
        turn: int,
        epoch: int,
        emit: Callable[[Event], None],
    ) -> bool | None:
        """Whether ``feedback`` calls ``answer`` right (True) or wrong (False); None when the
        judge's reply states neither. The judge is not shown the reference: it reads the
        feedback, it does not grade the answer."""
        prompt = self.feedback_template.render(
            task_text=task.prompt, answer=answer[:MAX_ANSWER_CHARS], feedback=feedback
        ).strip()
        completion = await self._ask(prompt, self.params, task, turn, epoch, emit, "feedback")
        return None if completion is None else parse_binary_verdict(completion.text)

    async def _ask(
        self,
        prompt: str,
        params: GenerateParams,
        task: Task,
        turn: int,
        epoch: int,
        emit: Callable[[Event], None],
        duty: str,
    ) -> Completion | None:
        """One recorded judge call for a side duty; None (and an error event) when the prompt
        does not fit the judge's context window: a long task must not end the episode."""
        try:
            completion = await self.model.generate(
                [Message(role="user", content=prompt)],
                params,
                CallContext(task=task, turn=turn, epoch=epoch),
            )
        except ContextWindowExceeded as exc:
            emit(ErrorEvent(turn=turn, where=f"judge:{duty}", message=str(exc)))
            return None
        emit(completion.to_event(turn, "judge", params.temperature))
        return completion
