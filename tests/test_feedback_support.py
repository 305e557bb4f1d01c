"""Helpers shared by the feedback tests (tasks, contexts, a canned feedback model); no tests here."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mulligan.events import ActionEvent, Event, Message, ObservationEvent, VerdictEvent
from mulligan.feedback import FeedbackContext
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.tasks import Task


class CannedModel:
    """A feedback model that answers from a list (or a function of the prompt) and keeps every
    prompt it was sent (a system message and the user message joined) and every message list."""

    def __init__(self, replies: Sequence[str] | Callable[[str], str], name: str = "canned") -> None:
        self.replies = replies
        self.name = name
        self.prompts: list[str] = []
        self.messages: list[list[Message]] = []
        self.params: list[GenerateParams] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        start = time.perf_counter()
        prompt = "\n\n".join(m.content for m in messages)
        self.prompts.append(prompt)
        self.messages.append(list(messages))
        self.params.append(params)
        if callable(self.replies):
            text = self.replies(prompt)
        else:
            text = self.replies[min(len(self.prompts), len(self.replies)) - 1]
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=len(prompt.split()),
            completion_tokens=len(text.split()),
            latency_s=time.perf_counter() - start,
        )

    async def aclose(self) -> None:
        return None


def reasoning_task(reference: str = "36", prompt: str | None = None, **metadata: object) -> Task:
    return Task(
        id="7",
        suite="gsm8k",
        category="reasoning",
        prompt=prompt or "Jim reads 3 books a week for 12 weeks. How many books does he read?",
        reference=reference,
        checker="gsm8k",
        gold_solution=reference,
        metadata=metadata,
    )


def mmlu_task(reference: str = "c") -> Task:
    options = {"a": "6", "b": "7", "c": "8", "d": "9"}
    return Task(
        id="3",
        suite="mmlu",
        category="reasoning",
        prompt="How many legs has a spider?\nOptions: A ) 6 , B ) 7 , C ) 8 , D ) 9",
        reference=reference,
        checker="mmlu",
        gold_solution=reference,
        metadata={"options": options},
    )


HUMANEVAL_STUB = '''def add_positive(xs: list) -> int:
    """Sum of the positive numbers in xs.
    >>> add_positive([1, -2, 3])
    4
    """
'''
HUMANEVAL_BODY = "    total = sum(x for x in xs if x > 0)\n    return total\n"
HUMANEVAL_TESTS = """

METADATA = {'author': 'test'}


def check(candidate):
    assert candidate([1, -2, 3]) == 4
    assert candidate([]) == 0
    assert abs(candidate([0.5, 0.25]) - 0.75) < 1e-6
    assert candidate([-1, -2]) == 0
    assert True, "debug marker, not a test"


check(add_positive)
"""


def humaneval_task() -> Task:
    """A HumanEval-shaped task (MINT's layout: prefixed stub, check() tests, entry point)."""
    return Task(
        id="HumanEval/900",
        suite="humaneval",
        category="code_generation",
        prompt="Complete the following code:\n\n" + HUMANEVAL_STUB,
        reference=HUMANEVAL_TESTS,
        checker="humaneval",
        gold_solution=HUMANEVAL_STUB + HUMANEVAL_BODY,
        metadata={"entry_point": "add_positive", "task_id": "HumanEval/900"},
    )


def mbpp_task() -> Task:
    """An MBPP-shaped task (test_list asserts; the function name shadows a builtin, as in
    MBPP's task 17)."""
    tests = [
        "assert max(3, 4) == 12",
        "assert max(2, 5) == 10",
        "assert set(pairs([1, 2])) == set([(1, 2)])",
    ]
    gold = (
        "def max(a, b):\n    return a * b\n\n"
        "def pairs(xs):\n    return [(a, b) for i, a in enumerate(xs) for b in xs[i + 1:]]\n"
    )
    return Task(
        id="9001",
        suite="mbpp",
        category="code_generation",
        prompt="Write a function max(a, b) that returns the product of a and b.\n" + tests[0],
        reference="\n".join(tests),
        checker="mbpp",
        gold_solution=gold,
        metadata={"test_list": tests, "test_setup_code": "", "challenge_test_list": []},
    )


def context(
    task: Task,
    *,
    kind: str = "solution",
    content: str = "35",
    correct: bool | None = False,
    turn: int = 1,
    history: Sequence[tuple[str, str]] = (),
    observation: str | None = None,
    extra_events: Sequence[Event] = (),
    runner: object = None,
    emit: Callable[[Event], None] | None = None,
) -> FeedbackContext:
    """The context after the policy's action at ``turn`` (earlier actions from ``history``)."""
    events: list[Event] = []
    messages = [Message(role="user", content=f"Task:\n{task.prompt}")]
    for i, (k, c) in enumerate(history, 1):
        events.append(ActionEvent(turn=i, kind=k, content=c, raw=c))
        messages.append(Message(role="assistant", content=f"<{k}> {c} </{k}>"))
        messages.append(Message(role="user", content="Observation:\nYou have steps left."))
    action = ActionEvent(
        turn=turn,
        kind=kind,
        content=content,
        raw=f"<{kind}> {content} </{kind}>",
        proposal=1 if kind == "solution" else None,
    )
    events.append(action)
    messages.append(Message(role="assistant", content=action.raw))
    verdict = None
    if kind == "solution" and correct is not None:
        verdict = VerdictEvent(
            turn=turn, proposal=1, answer=content, correct=correct, score=float(correct),
            checker="test",
        )  # fmt: skip
        events.append(verdict)
    if observation is not None:
        events.append(ObservationEvent(turn=turn, source="sandbox", content=observation))
    events.extend(extra_events)
    return FeedbackContext(
        task=task,
        turn=turn,
        action=action,
        verdict=verdict,
        messages=tuple(messages),
        events=tuple(events),
        runner=runner,
        emit=emit,
    )
