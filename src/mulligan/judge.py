"""The judge role: an LLM's second opinion on a proposal the task's checker rejected.

Deterministic checkers are exact but narrow ("Paris, France" vs "Paris"); a judge model decides
whether a rejected free-form answer means the same as the reference. It is asked only about
reasoning tasks (unit tests already decide code) and only after a rejection, so it can turn a
rejection into acceptance but never the reverse. Its calls are recorded as ``judge`` model calls.
Its prompt is ``prompts/judge.j2``; its verdict is read with the same parser as binary feedback's.
"""

from __future__ import annotations

from collections.abc import Callable

from mulligan.events import Event, Message
from mulligan.models.base import CallContext, GenerateParams, Model
from mulligan.prompts import load_template, parse_binary_verdict
from mulligan.tasks.base import CheckResult, Task

TEMPLATE = "judge.j2"
DEFAULT_PARAMS = GenerateParams(temperature=0.0, max_tokens=256, seed=0)
MAX_ANSWER_CHARS = 4_000  # a judge prompt must stay small; longer answers are not free-form


class LLMJudge:
    """Asks ``model`` whether a rejected answer matches the reference."""

    def __init__(self, model: Model, params: GenerateParams = DEFAULT_PARAMS) -> None:
        self.model = model
        self.params = params
        self.template = load_template(TEMPLATE)

    def applies(self, task: Task, answer: str) -> bool:
        return task.category == "reasoning" and len(answer) <= MAX_ANSWER_CHARS

    async def second_opinion(
        self, task: Task, answer: str, turn: int, epoch: int, emit: Callable[[Event], None]
    ) -> CheckResult | None:
        """A verdict replacing the checker's rejection, or None when the judge does not accept
        it (or gives no readable verdict)."""
        prompt = self.template.render(
            task_text=task.prompt, reference=task.reference, answer=answer
        ).strip()
        completion = await self.model.generate(
            [Message(role="user", content=prompt)],
            self.params,
            CallContext(task=task, turn=turn, epoch=epoch),
        )
        emit(completion.to_event(turn, "judge", self.params.temperature))
        if parse_binary_verdict(completion.text) is not True:
            return None
        return CheckResult(
            correct=True,
            score=1.0,
            detail=f"accepted by judge {self.model.name} (template {self.template.hash}): "
            + completion.text.strip()[-500:],
        )
