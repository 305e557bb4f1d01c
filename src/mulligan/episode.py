"""The episode loop: model turn -> action -> observation/verdict -> feedback -> next turn.

One function, ``run_episode``, drives a task to its end under MINT's protocol (k turns, at most
p proposals, a count-down line after each observation) and appends every step to the episode's
transcript as a typed event. Every proposal is judged when it is made, so one run at k turns
yields SR@1..k.

The loop (``_drive``) asks the policy for a turn, hands the parsed action to its handler
(``_on_solution``, ``_on_execute``, ``_on_invalid``, or ``_on_repeat`` for a refused repeat),
collects feedback and writes the next observation. What an episode runs against (task, models,
checker, sandboxes, feedback chain, limits) travels as one :class:`EpisodeDeps`; what the loop
mutates (transcript, conversation, budgets used) as one ``_LoopState``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mulligan.actions import (
    AnswerFormat,
    ParsedAction,
    answer_key,
    parse_in_format,
    stop_sequences,
)
from mulligan.events import (
    ActionEvent,
    ActionKind,
    Episode,
    EpisodeKey,
    ErrorEvent,
    FeedbackEvent,
    Message,
    MessageEvent,
    ObservationEvent,
    PromptEvent,
    ToolCallEvent,
    VerdictEvent,
    utcnow,
)
from mulligan.feedback.base import FeedbackContext, FeedbackProvider
from mulligan.judge import LLMJudge
from mulligan.models.base import (
    CallContext,
    ContextWindowExceeded,
    GenerateParams,
    Model,
    call_seed,
)
from mulligan.prompts import (
    EMPTY_REPLY,
    NO_OUTPUT,
    REPEATED_ANSWER,
    WRONG_ACTION,
    countdown,
    render_mint_prompt,
    render_reply_prompt,
    revision_countdown,
)
from mulligan.tasks.base import Checker, CheckResult, CodeRunner, Task
from mulligan.tasks.environment import (
    ENVIRONMENT_CHECKER,
    Environment,
    TaskTool,
    ToolBudget,
    ToolCallError,
    ToolSpec,
    open_environment,
    task_environment,
)

logger = logging.getLogger(__name__)

StopRule = Literal["at-correct", "never"]
"""When an episode ends early: ``at-correct`` (MINT's protocol) at the first correct proposal;
``never``: only when its turns or proposals are used up, so every later proposal is judged too
(regression, flips and self-refinement without the verdict bit; see ``metrics.refinement``)."""


class EpisodeLimits(BaseModel):
    """Budgets of one episode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(default=5, ge=1, le=100, description="k: model turns")
    max_proposals: int = Field(default=2, ge=1, le=100, description="p: solution proposals")
    cell_timeout_s: float = Field(default=10.0, gt=0, description="wall time per code cell")
    check_timeout_s: float = Field(default=10.0, gt=0, description="wall time per unit-test run")
    in_context_example: bool = True
    tool_calls_per_cell: int = Field(
        default=200, ge=1, description="environment tasks: tool calls one cell may make"
    )
    tool_calls_per_episode: int = Field(
        default=1000, ge=1, description="environment tasks: tool calls one episode may make"
    )
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
    answer_format: AnswerFormat = Field(
        default="tagged",
        description="tagged: MINT's format, code in <execute>, answers in <solution>; reply: "
        "no tools, the whole reply is the answer, every turn a proposal (RefineBench, "
        "Self-Refine)",
    )
    stop: StopRule = Field(
        default="at-correct",
        description="at-correct: the episode ends at the first correct proposal (MINT); never: "
        "it goes on until its turns or proposals are used up, every proposal judged",
    )

    @model_validator(mode="after")
    def _repeats_would_leak_the_verdict(self) -> EpisodeLimits:
        # Only wrong answers are refused as repeats: under stop=never (where the policy must not
        # learn the verdict from anything but its feedback) the refusal would tell it.
        if self.stop == "never" and self.reject_repeats:
            raise ValueError(
                "reject_repeats refuses only wrong answers, so under stop=never it would tell "
                "the policy its verdict; drop one of the two"
            )
        return self

    def params_for_turn(self, params: GenerateParams, turn: int) -> GenerateParams:
        """Progressive temperature: ``min(temperature_max, t0 + step * (turn - 1))``. (Every
        turn has its own seed anyway: see :func:`policy_params`.)"""
        if self.temperature_step == 0.0:
            return params
        raised = min(self.temperature_max, params.temperature + self.temperature_step * (turn - 1))
        return params.model_copy(update={"temperature": max(raised, params.temperature)})


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


class ToolHost(Protocol):
    """Answers a cell's tool calls (``mulligan.sandbox.repl.ToolHost``)."""

    @property
    def tool_specs(self) -> Sequence[ToolSpec]: ...

    async def call_tool(self, name: str, args: list[Any]) -> str: ...


class ReplSession(Protocol):
    async def execute(
        self, code: str, timeout_s: float | None = None, *, tools: ToolHost | None = None
    ) -> CellOutput: ...


class SandboxProvider(CodeRunner, Protocol):
    """A pool of sandboxes: a REPL session per episode, and one-shot programs for checkers."""

    def session(self) -> AbstractAsyncContextManager[ReplSession]: ...


@dataclass(frozen=True, slots=True)
class EpisodeDeps:
    """What one episode runs against: the task and everything the loop calls out to."""

    task: Task
    policy: Model
    params: GenerateParams
    """The policy's sampling parameters (with the action stop sequences already added); their
    ``seed`` is the run's, from which each call's is derived (:func:`policy_params`)."""
    checker: Checker
    sandboxes: SandboxProvider
    feedback: Sequence[FeedbackProvider]
    limits: EpisodeLimits
    judge: LLMJudge | None = None
    last_turn: int | None = None
    """The episode ends after this turn (``max_turns`` when None) while the prompt and the
    count-down keep stating ``max_turns``: a frozen-history fork (``engine.fork``) scores one
    candidate turn after a recorded history."""
    task_tools: Mapping[str, TaskTool] = field(default_factory=dict)
    """Stateless tools by name (``wikipedia_search``); a task's cells get those it lists."""


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
    last_turn: int | None = None,
    task_tools: Mapping[str, TaskTool] | None = None,
) -> Episode:
    """Run one task to completion and return the episode with its full transcript.

    An ``Exception`` raised once the loop runs (by the policy, the sandbox, the checker, the
    judge or a feedback provider) does not propagate: the episode is returned marked failed
    (``status == "failed"``, a fatal ``ErrorEvent`` with the cause) with its transcript so far,
    so one failing episode never kills a run. Budget exhaustion and a full context window end the
    episode normally. Only an error rendering the first prompt, and ``BaseException``s such as
    cancellation, propagate (the engine records the former with :func:`failed_episode`).
    """
    stops = stop_sequences(limits.answer_format)
    params = params.model_copy(update={"stop": tuple(dict.fromkeys(params.stop + stops))})
    deps = EpisodeDeps(
        task,
        policy,
        params,
        checker,
        sandboxes,
        feedback,
        limits,
        judge,
        last_turn,
        task_tools or {},
    )
    episode = Episode(
        key=EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch),
        run_id=run_id,
        config_hash=config_hash,
        model=policy.name,
        max_turns=limits.max_turns,
        max_proposals=limits.max_proposals,
    )
    environment = open_environment(task) if task_environment(task) else None
    async with AsyncExitStack() as stack:
        observation: str | None = None
        if environment is not None:
            stack.push_async_callback(environment.aclose)
            try:
                observation = await environment.reset()
            except Exception as exc:  # a game that does not start fails this episode only
                _mark_failed(episode, exc, "environment")
                return episode
        messages = [_first_message(task, limits, observation, episode)]
        try:
            await _drive(deps, episode, messages, environment)
        except Exception as exc:  # one failing episode never kills a run: keep its transcript
            _mark_failed(episode, exc, "episode")
            return episode
    episode.finished_at = utcnow()
    return episode


def _mint_prompt(task: Task, limits: EpisodeLimits, observation: str | None) -> tuple[str, str]:
    return render_mint_prompt(
        task,
        limits.max_turns,
        limits.max_proposals,
        in_context_example=limits.in_context_example,
        observation=observation,
    )


def _reply_prompt(task: Task, limits: EpisodeLimits, observation: str | None) -> tuple[str, str]:
    if observation is not None:
        raise ValueError("an environment task needs tools: the reply answer format has none")
    return render_reply_prompt(task, limits.max_turns, limits.max_proposals)


@dataclass(frozen=True, slots=True)
class _Format:
    """What the loop says differently under one answer format (how replies are parsed, and
    the stop sequences, are :mod:`mulligan.actions`'s: ``parse_in_format``, ``stop_sequences``)."""

    template: str
    """``PromptEvent.template``."""
    prompt: Callable[[Task, EpisodeLimits, str | None], tuple[str, str]]
    countdown: Callable[[int, int], str]
    invalid: str
    """The environment's answer to a reply it cannot take as an action."""


_FORMATS: dict[AnswerFormat, _Format] = {
    "tagged": _Format("mint", _mint_prompt, countdown, WRONG_ACTION),
    "reply": _Format("refine", _reply_prompt, revision_countdown, EMPTY_REPLY),
}


def _first_message(
    task: Task, limits: EpisodeLimits, observation: str | None, episode: Episode
) -> Message:
    """The policy's first message in the answer format's template, recorded on ``episode``."""
    answer_format = _FORMATS[limits.answer_format]
    text, template_hash = answer_format.prompt(task, limits, observation)
    template = answer_format.template
    message = Message(role="user", content=text)
    episode.events.append(
        PromptEvent(turn=0, messages=(message,), template=template, template_hash=template_hash)
    )
    return message


@dataclass(slots=True)
class _LoopState:
    """What the turn loop mutates: the transcript, the conversation and the budgets used."""

    episode: Episode
    messages: list[Message]
    stack: AsyncExitStack
    """Owns the REPL session, opened at the first ``execute`` and closed with the episode."""
    repl: ReplSession | None = None
    proposals: int = 0
    wrong_answers: dict[str, int] = field(default_factory=dict)
    """``answer_key`` of each wrong answer -> the proposal number that made it."""
    tools: _EnvironmentTools | None = None
    """An environment task's tools (None for single-prompt tasks)."""
    task_tools: _TaskTools | None = None
    """A single-prompt task's stateless tools (None when it lists none with a backing)."""


@dataclass(frozen=True, slots=True)
class _Turn:
    """One policy turn: its number, the parsed reply and the action event recorded for it."""

    number: int
    parsed: ParsedAction
    action: ActionEvent


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What an action handler produced: the environment's observation and/or a verdict."""

    observation: str | None = None
    verdict: VerdictEvent | None = None


_Handler = Callable[[EpisodeDeps, _LoopState, _Turn], Awaitable[_Outcome]]


async def _drive(
    deps: EpisodeDeps,
    episode: Episode,
    messages: list[Message],
    environment: Environment | None = None,
) -> None:
    """The turn loop; mutates ``episode`` and ``messages``."""
    limits = deps.limits
    last = min(limits.max_turns, deps.last_turn or limits.max_turns)
    async with AsyncExitStack() as stack:
        state = _LoopState(episode, messages, stack)
        if environment is not None:
            budget = ToolBudget(limits.tool_calls_per_cell, limits.tool_calls_per_episode)
            state.tools = _EnvironmentTools(environment, budget, episode)
        else:
            state.task_tools = _TaskTools.for_task(deps, episode)
        for number in range(1, last + 1):
            episode.turns_used = number
            turn = await _policy_turn(deps, state, number)
            if turn is None:
                episode.terminate_reason = "context_exhausted"
                break
            repeated = turn.action.repeat_of is not None
            outcome = await (_on_repeat if repeated else _HANDLERS[turn.parsed.kind])(
                deps, state, turn
            )
            if episode.success and limits.stop == "at-correct":
                break  # solved: no feedback, no further turn (MINT)
            feedback_events = await _collect_feedback(deps, state, turn, outcome.verdict)
            episode.events.extend(feedback_events)
            if state.proposals >= limits.max_proposals:
                episode.terminate_reason = "max_proposals"
                break
            if number == last:
                episode.terminate_reason = "max_turns"
                break
            parts = [p for p in (outcome.observation, *(f.content for f in feedback_events)) if p]
            left = (limits.max_turns - number, limits.max_proposals - state.proposals)
            parts.append(_FORMATS[limits.answer_format].countdown(*left))
            message = Message(role="user", content="Observation:\n" + "\n".join(parts))
            messages.append(message)
            episode.events.append(MessageEvent(turn=number, role="user", content=message.content))


def policy_params(deps: EpisodeDeps, epoch: int, turn: int) -> GenerateParams:
    """The policy's parameters for one turn: the turn's temperature and its own seed, derived
    from the run's seed, the task, the epoch and the turn (``models.base.call_seed``), so epochs
    sample anew on seed-honouring backends and a rerun asks each call with the same seed."""
    params = deps.limits.params_for_turn(deps.params, turn)
    task = deps.task
    seed = call_seed(deps.params.seed, "policy", task.suite, task.id, epoch, turn)
    return params.model_copy(update={"seed": seed})


async def _policy_turn(deps: EpisodeDeps, state: _LoopState, number: int) -> _Turn | None:
    """Ask the policy for turn ``number`` and record its reply and action; None when the
    conversation no longer fits its context window (recorded as an error event)."""
    episode = state.episode
    params = policy_params(deps, episode.key.epoch, number)
    context = CallContext(task=deps.task, turn=number, epoch=episode.key.epoch)
    try:
        completion = await deps.policy.generate(state.messages, params, context)
    except ContextWindowExceeded as exc:
        episode.turns_used = number - 1
        episode.events.append(ErrorEvent(turn=number, where="policy", message=str(exc)))
        return None
    seen = len(state.messages)  # the call received exactly these: recorded as a prefix length
    episode.events.append(
        completion.to_event(number, "policy", params=params, context_messages=seen)
    )
    parsed = parse_in_format(completion.text, deps.limits.answer_format)
    reply = Message(role="assistant", content=parsed.reply)
    state.messages.append(reply)
    is_solution = parsed.kind == "solution"
    repeat_of = (
        state.wrong_answers.get(answer_key(parsed.content))
        if deps.limits.reject_repeats and is_solution
        else None
    )
    action = ActionEvent(
        turn=number,
        kind=parsed.kind,
        content=parsed.content,
        thought=parsed.thought,
        raw=completion.text,
        proposal=state.proposals + 1 if is_solution and not repeat_of else None,
        repeat_of=repeat_of,
    )
    episode.events.append(action)
    episode.events.append(MessageEvent(turn=number, role=reply.role, content=reply.content))
    return _Turn(number, parsed, action)


async def _on_repeat(deps: EpisodeDeps, state: _LoopState, turn: _Turn) -> _Outcome:
    """A repeat of an earlier wrong answer: refused before judging, costs no proposal."""
    observation = REPEATED_ANSWER.format(proposal=turn.action.repeat_of)
    state.episode.events.append(
        ObservationEvent(turn=turn.number, source="environment", content=observation)
    )
    return _Outcome(observation=observation)


async def _on_solution(deps: EpisodeDeps, state: _LoopState, turn: _Turn) -> _Outcome:
    """Judge a proposal (checker, then the judge's second opinion on a rejection)."""
    episode, answer = state.episode, turn.parsed.content
    state.proposals += 1
    episode.proposals_used = state.proposals
    result, checker_name = await _judge_answer(deps, state, turn.number, answer)
    marks = None
    if deps.judge is not None and deps.task.checklist:
        marks = await deps.judge.score_checklist(
            deps.task, answer, turn.number, episode.key.epoch, episode.events.append
        )
    verdict = VerdictEvent(
        turn=turn.number,
        proposal=state.proposals,
        answer=answer,
        correct=result.correct,
        score=result.score,
        checker=checker_name,
        detail=result.detail,
        checklist=marks,
    )
    episode.events.append(verdict)
    if result.correct and not episode.success:
        # success_turn stays the first correct proposal's turn, so SR@k means the same under
        # both stop rules; under stop=never the episode goes on and ends by budget.
        episode.success = True
        episode.success_turn = turn.number
        if deps.limits.stop == "at-correct":
            episode.terminate_reason = "solved"
    elif not result.correct:
        state.wrong_answers.setdefault(answer_key(answer), state.proposals)
    return _Outcome(verdict=verdict)


async def _judge_answer(
    deps: EpisodeDeps, state: _LoopState, turn: int, answer: str
) -> tuple[CheckResult, str]:
    """The checker's result and the name it is recorded under (``<checker>+judge`` when the
    judge overturned a rejection)."""
    checker, judge, task = deps.checker, deps.judge, deps.task
    if state.tools is not None:  # the environment decides, not the proposal's text (MINT)
        won = state.tools.environment.won
        detail = "the environment signals success" if won else "the goal is not reached"
        return CheckResult(correct=won, score=float(won), detail=detail), ENVIRONMENT_CHECKER
    result = await checker.check(answer, task, deps.sandboxes)
    if result.correct or judge is None or not judge.applies(task, answer):
        return result, checker.name
    second = await judge.second_opinion(
        task, answer, turn, state.episode.key.epoch, state.episode.events.append
    )
    if second is None:
        return result, checker.name
    return second, f"{checker.name}+judge"


async def _on_execute(deps: EpisodeDeps, state: _LoopState, turn: _Turn) -> _Outcome:
    """Run a code cell in the episode's REPL session (opened at the first cell)."""
    if state.repl is None:
        state.repl = await state.stack.enter_async_context(deps.sandboxes.session())
    tools = state.tools
    host = tools if tools is not None else state.task_tools
    if host is not None:
        host.new_cell(turn.number)
        cell = await state.repl.execute(
            turn.parsed.content, timeout_s=deps.limits.cell_timeout_s, tools=host
        )
    else:
        cell = await state.repl.execute(turn.parsed.content, timeout_s=deps.limits.cell_timeout_s)
    observation = cell.output if cell.output.strip() else NO_OUTPUT
    state.episode.events.append(
        ObservationEvent(
            turn=turn.number,
            source="sandbox",
            content=observation,
            timed_out=cell.timed_out,
            error=cell.error,
            duration_s=cell.duration_s,
        )
    )
    if tools is not None and tools.environment.won:  # MINT: a step that wins ends the episode
        state.episode.success = True
        state.episode.success_turn = turn.number
        state.episode.terminate_reason = "solved"
    return _Outcome(observation=observation)


class _BudgetedTools:
    """A sandbox tool host: each call is answered here, outside the sandbox, within the
    episode's tool budget, and recorded as a ``ToolCallEvent``. Subclasses say what answers."""

    def __init__(self, budget: ToolBudget, episode: Episode) -> None:
        self.budget, self.episode, self.turn = budget, episode, 0

    @property
    def tool_specs(self) -> Sequence[ToolSpec]:
        raise NotImplementedError

    async def _answer(self, name: str, args: list[Any]) -> str:
        raise NotImplementedError

    def _success(self) -> bool:
        return False  # stateless tools have no success signal

    def new_cell(self, turn: int) -> None:
        self.turn = turn
        self.budget.new_cell()

    async def call_tool(self, name: str, args: list[Any]) -> str:
        values = tuple(a if isinstance(a, str | int | float | bool) else None for a in args)
        try:
            self.budget.take(name)
            answer = await self._answer(name, args)
        except ToolCallError as exc:
            self._record(name, values, str(exc), refused=True)
            raise
        self._record(name, values, answer, refused=False)
        return answer

    def _record(self, name: str, args: tuple[Any, ...], text: str, *, refused: bool) -> None:
        event = ToolCallEvent(
            turn=self.turn,
            tool=name,
            args=args,
            observation=text,
            refused=refused,
            success=self._success(),
        )
        self.episode.events.append(event)


class _EnvironmentTools(_BudgetedTools):
    """The tool host of an environment task: each call steps the environment."""

    def __init__(self, environment: Environment, budget: ToolBudget, episode: Episode) -> None:
        super().__init__(budget, episode)
        self.environment = environment

    @property
    def tool_specs(self) -> Sequence[ToolSpec]:
        return self.environment.tools

    async def _answer(self, name: str, args: list[Any]) -> str:
        return await self.environment.step(name, args)

    def _success(self) -> bool:
        return self.environment.won


class _TaskTools(_BudgetedTools):
    """The tool host of a single-prompt task's stateless tools (``wikipedia_search``)."""

    def __init__(self, tools: dict[str, TaskTool], budget: ToolBudget, episode: Episode) -> None:
        super().__init__(budget, episode)
        self.tools = tools

    @classmethod
    def for_task(cls, deps: EpisodeDeps, episode: Episode) -> _TaskTools | None:
        found = {n: deps.task_tools[n] for n in deps.task.tools if n in deps.task_tools}
        if not found:
            return None
        limits = deps.limits
        budget = ToolBudget(limits.tool_calls_per_cell, limits.tool_calls_per_episode)
        return cls(found, budget, episode)

    @property
    def tool_specs(self) -> Sequence[ToolSpec]:
        return [tool.spec for tool in self.tools.values()]

    async def _answer(self, name: str, args: list[Any]) -> str:
        return await self.tools[name].call(args)


async def _on_invalid(deps: EpisodeDeps, state: _LoopState, turn: _Turn) -> _Outcome:
    """A reply with neither code nor a solution: MINT's "I don't understand your input" (an
    empty reply under the ``reply`` format: a request for the answer)."""
    observation = _FORMATS[deps.limits.answer_format].invalid
    state.episode.events.append(
        ObservationEvent(turn=turn.number, source="environment", content=observation)
    )
    return _Outcome(observation=observation)


_HANDLERS: dict[ActionKind, _Handler] = {
    "solution": _on_solution,
    "execute": _on_execute,
    "invalid": _on_invalid,
}


async def _collect_feedback(
    deps: EpisodeDeps, state: _LoopState, turn: _Turn, verdict: VerdictEvent | None
) -> list[FeedbackEvent]:
    """Ask each provider in order; later providers see earlier providers' feedback events."""
    episode = state.episode
    out: list[FeedbackEvent] = []
    for provider in deps.feedback:
        ctx = FeedbackContext(
            task=deps.task,
            turn=turn.number,
            action=turn.action,
            verdict=verdict,
            messages=tuple(state.messages),
            events=(*episode.events, *out),
            runner=deps.sandboxes,
            emit=episode.events.append,
            epoch=episode.key.epoch,
        )
        event = await provider.feedback(ctx)
        if event is not None:
            out.append(event)
    if deps.judge is not None and deps.judge.reads_feedback and verdict is not None:
        out = [await _read_verdict(deps, state, verdict, event) for event in out]
    return out


# Feedback whose verdict is stated in prose: the judge reads it (metrics.agreement parses the
# verdict of binary-style kinds itself).
_TEXTUAL_KINDS = frozenset({"textual", "critique", "self", "checklist"})


async def _read_verdict(
    deps: EpisodeDeps, state: _LoopState, verdict: VerdictEvent, event: FeedbackEvent
) -> FeedbackEvent:
    """``event`` with ``stated_verdict`` as the judge reads it (textual kinds only)."""
    if deps.judge is None or event.kind not in _TEXTUAL_KINDS:
        return event
    stated = await deps.judge.read_feedback_verdict(
        deps.task,
        verdict.answer,
        event.content,
        event.turn,
        state.episode.key.epoch,
        state.episode.events.append,
    )
    return event.model_copy(update={"stated_verdict": stated})


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
    message = f"{type(error).__name__}: {error}{_raised_at(error)}"
    logger.debug("episode %s failed", episode.id, exc_info=error)
    episode.events.append(
        ErrorEvent(turn=episode.turns_used, where=where, message=message, fatal=True)
    )
    episode.status = "failed"
    episode.terminate_reason = "error"
    episode.error = message
    episode.finished_at = utcnow()


def _raised_at(error: BaseException) -> str:
    """Where an unexpected error came from, so a stored failure can be traced without a log:
    the innermost frame, and the innermost of mulligan's own when that is elsewhere."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    ours = [f for f in frames if "mulligan" in PurePath(f.filename).parts]
    places = [frames[-1], *([ours[-1]] if ours and ours[-1] is not frames[-1] else [])]
    where = ", from ".join(
        f"{PurePath(f.filename).parent.name}/{PurePath(f.filename).name}:{f.lineno} in {f.name}"
        for f in places
    )
    return f" (at {where})"
