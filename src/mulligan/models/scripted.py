"""Scripted policies for logic tests and pipeline checks: no inference, fully deterministic.

``scripted/reference`` proposes the task's gold solution on turn 1 (for an environment task it
runs the gold solution's tool calls in one ``<execute>`` cell, which wins the game), ``scripted/wrong`` always
proposes a wrong answer, and ``scripted/execute-then-answer`` runs one code cell on turn 1 and
proposes the gold solution on turn 2. ``scripted/invalid`` never produces a valid action.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from mulligan.events import Message
from mulligan.models.base import CallContext, Completion, GenerateParams, ModelError

ScriptName = Literal["reference", "wrong", "execute-then-answer", "invalid"]
SCRIPTS: tuple[ScriptName, ...] = ("reference", "wrong", "execute-then-answer", "invalid")

# No checker accepts this, MINT's lenient ones included: it is not a number, boolean, list or
# valid Python, and it contains no option letter a-e (MINT's mmlu check accepts any answer that
# merely contains the reference letter).
WRONG_ANSWER = "xyzzy"


def _reference(ctx: CallContext) -> str:
    if ctx.task.metadata.get("environment"):
        return (
            "<thought> I know the way to the goal. </thought>\n"
            f"<execute>\n{ctx.task.gold_solution}\n</execute>"
        )
    return (
        "<thought> I know the answer. </thought>\n"
        f"<solution>\n{ctx.task.gold_solution}\n</solution>"
    )


def _wrong(ctx: CallContext) -> str:
    return f"<thought> Let me guess. </thought>\n<solution> {WRONG_ANSWER} </solution>"


def _execute_then_answer(ctx: CallContext) -> str:
    if ctx.turn == 1:
        gold = ctx.task.gold_solution
        code = gold if ctx.task.category == "code_generation" else f"answer = {gold!r}\nanswer"
        return f"<thought> Let me check in Python first. </thought>\n<execute>\n{code}\n</execute>"
    return _reference(ctx)


def _invalid(ctx: CallContext) -> str:
    return "I am not sure what to do here."


_SCRIPT_FUNCS: dict[ScriptName, Callable[[CallContext], str]] = {
    "reference": _reference,
    "wrong": _wrong,
    "execute-then-answer": _execute_then_answer,
    "invalid": _invalid,
}


class ScriptedModel:
    """A policy that answers from the task itself (needs the call context)."""

    cacheable = False  # deterministic and free: a cache gains nothing

    def __init__(self, script: ScriptName) -> None:
        if script not in _SCRIPT_FUNCS:
            raise ValueError(f"unknown script {script!r}; choose one of {', '.join(SCRIPTS)}")
        self.script = script
        self.name = f"scripted/{script}"
        self.calls = 0

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        if context is None:
            raise ModelError(f"{self.name} needs the call context (task and turn)")
        start = time.perf_counter()
        self.calls += 1
        text = _SCRIPT_FUNCS[self.script](context)
        prompt_words = sum(len(m.content.split()) for m in messages)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_words,
            completion_tokens=len(text.split()),
            latency_s=time.perf_counter() - start,
        )

    async def resolve_identity(self) -> dict[str, Any]:
        """The script answers; nothing else does."""
        return {"backend": "scripted", "script": self.script}

    async def aclose(self) -> None:
        return None
