"""The episode loop: model turn -> action -> observation/verdict -> feedback -> next turn.

One function, ``run_episode``, drives a task to its end under MINT's protocol (k turns, at most
p proposals, a count-down line after each observation) and appends every step to the episode's
transcript as a typed event. Every proposal is judged when it is made, so one run at k turns
yields SR@1..k.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from mulligan.actions import STOP_SEQUENCES, parse_action
from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    ErrorEvent,
    FeedbackEvent,
    Message,
    ObservationEvent,
    PromptEvent,
    VerdictEvent,
    utcnow,
)
from mulligan.feedback.base import FeedbackContext, FeedbackProvider
from mulligan.judge import LLMJudge
from mulligan.metrics.dynamics import normalize_answer
from mulligan.models.base import (
    CallContext,
    ContextWindowExceeded,
    GenerateParams,
    Model,
)
from mulligan.prompts import (
    NO_OUTPUT,
    REPEATED_ANSWER,
    WRONG_ACTION,
    countdown,
    render_mint_prompt,
)
from mulligan.tasks.base import Checker, CodeRunner, Task


class EpisodeLimits(BaseModel):
    """Budgets of one episode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(default=5, ge=1, le=100, description="k: model turns")
    max_proposals: int = Field(default=2, ge=1, le=100, description="p: solution proposals")
    cell_timeout_s: float = Field(default=10.0, gt=0, description="wall time per code cell")
    check_timeout_s: float = Field(default=10.0, gt=0, description="wall time per unit-test run")
    in_context_example: bool = True
    # Friction mitigations (Feedback Friction, Jiang et al. 2025): off by default.
    temperature_step: float = Field(
        default=0.0, ge=0.0, le=2.0, description="added to the policy's temperature each turn"
    )
    temperature_max: float = Field(default=1.0, ge=0.0, le=2.0)
    reject_repeats: bool = Field(
        default=False,
        description="a proposal repeating an earlier wrong answer is refused without using a "
        "proposal; the model is told it already tried that",
    )

    def params_for_turn(self, params: GenerateParams, turn: int) -> GenerateParams:
        """Progressive temperature: ``min(temperature_max, t0 + step * (turn - 1))``, with a
        per-turn seed so raised temperatures actually sample something new."""
        if self.temperature_step == 0.0:
            return params
        raised = min(self.temperature_max, params.temperature + self.temperature_step * (turn - 1))
        return params.model_copy(
            update={"temperature": max(raised, params.temperature), "seed": params.seed + turn - 1}
        )


class CellOutput(Protocol):
    """What a sandbox returns for a cell (see ``mulligan.sandbox.CellResult``)."""

    @property
    def output(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def duration_s(self) -> float: ...


class ReplSession(Protocol):
    async def execute(self, code: str, timeout_s: float | None = None) -> CellOutput: ...


class SandboxProvider(CodeRunner, Protocol):
    """A pool of sandboxes: a REPL session per episode, and one-shot programs for checkers."""

    def session(self) -> AbstractAsyncContextManager[ReplSession]: ...


async def run_episode(
    *,
    task: Task,
    policy: Model,
    params: GenerateParams,
    checker: Checker,
    sandboxes: SandboxProvider,
    feedback: list[FeedbackProvider],
    limits: EpisodeLimits,
    run_id: str,
    config_hash: str,
    epoch: int = 0,
    judge: LLMJudge | None = None,
) -> Episode:
    """Run one task to completion and return the episode with its full transcript.

    Exceptions from the model or the sandbox propagate (the engine records them as a failed
    episode); budget exhaustion and a full context window end the episode normally.
    """
    params = params.model_copy(update={"stop": tuple(dict.fromkeys(params.stop + STOP_SEQUENCES))})
    episode = Episode(
        key=EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch),
        run_id=run_id,
        config_hash=config_hash,
        model=policy.name,
        max_turns=limits.max_turns,
        max_proposals=limits.max_proposals,
    )
    text, template_hash = render_mint_prompt(
        task,
        limits.max_turns,
        limits.max_proposals,
        in_context_example=limits.in_context_example,
    )
    messages = [Message(role="user", content=text)]
    episode.events.append(
        PromptEvent(turn=0, messages=tuple(messages), template="mint", template_hash=template_hash)
    )
    try:
        await _drive(
            episode, messages, task, policy, params, checker, sandboxes, feedback, limits, judge
        )
    except Exception as exc:  # one failing episode never kills a run: keep its transcript
        _mark_failed(episode, exc, "episode")
        return episode
    episode.finished_at = utcnow()
    return episode


async def _drive(
    episode: Episode,
    messages: list[Message],
    task: Task,
    policy: Model,
    params: GenerateParams,
    checker: Checker,
    sandboxes: SandboxProvider,
    feedback: list[FeedbackProvider],
    limits: EpisodeLimits,
    judge: LLMJudge | None = None,
) -> None:
    """The turn loop; mutates ``episode`` and ``messages``."""
    epoch = episode.key.epoch
    async with AsyncExitStack() as stack:
        repl: ReplSession | None = None
        proposals = 0
        wrong_answers: dict[str, int] = {}  # normalised wrong answer -> its proposal number
        for turn in range(1, limits.max_turns + 1):
            episode.turns_used = turn
            turn_params = limits.params_for_turn(params, turn)
            try:
                completion = await policy.generate(
                    messages, turn_params, CallContext(task=task, turn=turn, epoch=epoch)
                )
            except ContextWindowExceeded as exc:
                episode.turns_used = turn - 1
                episode.events.append(ErrorEvent(turn=turn, where="policy", message=str(exc)))
                episode.terminate_reason = "context_exhausted"
                break
            episode.events.append(completion.to_event(turn, "policy", turn_params.temperature))
            parsed = parse_action(completion.text)
            messages.append(Message(role="assistant", content=parsed.reply))
            repeat_of = (
                wrong_answers.get(normalize_answer(parsed.content))
                if limits.reject_repeats and parsed.kind == "solution"
                else None
            )
            action = ActionEvent(
                turn=turn,
                kind=parsed.kind,
                content=parsed.content,
                thought=parsed.thought,
                raw=completion.text,
                proposal=proposals + 1 if parsed.kind == "solution" and not repeat_of else None,
                repeat_of=repeat_of,
            )
            episode.events.append(action)

            verdict: VerdictEvent | None = None
            observation: str | None = None
            if repeat_of is not None:
                # Refused before judging: it was judged wrong already, and costs no proposal.
                observation = REPEATED_ANSWER.format(proposal=repeat_of)
                episode.events.append(
                    ObservationEvent(turn=turn, source="environment", content=observation)
                )
            elif parsed.kind == "solution":
                proposals += 1
                episode.proposals_used = proposals
                result = await checker.check(parsed.content, task, sandboxes)
                checker_name = checker.name
                if not result.correct and judge is not None and judge.applies(task, parsed.content):
                    second = await judge.second_opinion(
                        task, parsed.content, turn, epoch, episode.events.append
                    )
                    if second is not None:
                        result, checker_name = second, f"{checker.name}+judge"
                verdict = VerdictEvent(
                    turn=turn,
                    proposal=proposals,
                    answer=parsed.content,
                    correct=result.correct,
                    score=result.score,
                    checker=checker_name,
                    detail=result.detail,
                )
                episode.events.append(verdict)
                if result.correct:
                    episode.success = True
                    episode.success_turn = turn
                    episode.terminate_reason = "solved"
                    break
                wrong_answers.setdefault(normalize_answer(parsed.content), proposals)
            elif parsed.kind == "execute":
                if repl is None:
                    repl = await stack.enter_async_context(sandboxes.session())
                cell = await repl.execute(parsed.content, timeout_s=limits.cell_timeout_s)
                observation = cell.output if cell.output.strip() else NO_OUTPUT
                episode.events.append(
                    ObservationEvent(
                        turn=turn,
                        source="sandbox",
                        content=observation,
                        timed_out=cell.timed_out,
                        error=cell.error,
                        duration_s=cell.duration_s,
                    )
                )
            else:
                observation = WRONG_ACTION
                episode.events.append(
                    ObservationEvent(turn=turn, source="environment", content=observation)
                )

            feedback_events = await _collect_feedback(
                feedback, task, turn, action, verdict, messages, episode, sandboxes
            )
            episode.events.extend(feedback_events)

            if proposals >= limits.max_proposals:
                episode.terminate_reason = "max_proposals"
                break
            if turn == limits.max_turns:
                episode.terminate_reason = "max_turns"
                break
            parts = [p for p in (observation, *(f.content for f in feedback_events)) if p]
            parts.append(countdown(limits.max_turns - turn, limits.max_proposals - proposals))
            messages.append(Message(role="user", content="Observation:\n" + "\n".join(parts)))


async def _collect_feedback(
    providers: list[FeedbackProvider],
    task: Task,
    turn: int,
    action: ActionEvent,
    verdict: VerdictEvent | None,
    messages: list[Message],
    episode: Episode,
    runner: CodeRunner,
) -> list[FeedbackEvent]:
    """Ask each provider in order; later providers see earlier providers' feedback events."""
    out: list[FeedbackEvent] = []
    for provider in providers:
        ctx = FeedbackContext(
            task=task,
            turn=turn,
            action=action,
            verdict=verdict,
            messages=tuple(messages),
            events=(*episode.events, *out),
            runner=runner,
            emit=episode.events.append,
            epoch=episode.key.epoch,
        )
        event = await provider.feedback(ctx)
        if event is not None:
            out.append(event)
    return out


def failed_episode(
    *,
    task: Task,
    model: str,
    limits: EpisodeLimits,
    run_id: str,
    config_hash: str,
    epoch: int,
    error: BaseException,
    where: str = "engine",
) -> Episode:
    """The record of an episode that could not even start: kept, marked failed, with the cause."""
    episode = Episode(
        key=EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch),
        run_id=run_id,
        config_hash=config_hash,
        model=model,
        max_turns=limits.max_turns,
        max_proposals=limits.max_proposals,
    )
    _mark_failed(episode, error, where)
    return episode


def _mark_failed(episode: Episode, error: BaseException, where: str) -> None:
    message = f"{type(error).__name__}: {error}"
    episode.events.append(
        ErrorEvent(turn=episode.turns_used, where=where, message=message, fatal=True)
    )
    episode.status = "failed"
    episode.terminate_reason = "error"
    episode.error = message
    episode.finished_at = utcnow()
