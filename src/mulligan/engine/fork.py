"""Branching rollouts: replay each episode of a recorded run up to turn T, then sample N
continuations from the same context (``mulligan run --fork-from RUN --at-turn T --samples N``).

For each *parent* episode of the source run that went on past turn T, the fork run stores N
*branches*. A branch runs through the ordinary episode loop (:func:`mulligan.episode.run_episode`)
with three stand-ins that make its first T turns the parent's:

- the policy (:class:`_BranchPolicy`) answers turns 1..T with the parent's logged replies
  through the replay backend (:class:`~mulligan.models.replay.ReplayModel`, ``verify="strict"``:
  a conversation that leaves the logged one, e.g. because the prompt template changed since,
  fails the branch with the reason), and turns T+1.. with the fork run's model;
- the sandbox (:class:`_PrefixSandboxes`) re-runs the parent's recorded ``<execute>`` cells, so
  the REPL state the continuation sees is rebuilt, and compares what each printed with the
  parent's observation. The conversation gets the *recorded* observation either way, so the
  context stays byte-identical to the parent's; a difference is recorded as a non-fatal
  ``ErrorEvent(where="fork-prefix")`` in the branch and counted in the manifest (the REPL state
  may then differ from what the context says);
- the judge (:func:`prefix_judge`), when the run has one, answers its calls of turns 1..T with
  the parent's recorded judge calls, so second opinions, checklist marks and the verdicts read
  from feedback in the prefix are the parent's, whatever the judge would sample now;
- the feedback chain gives the parent's recorded feedback events for turns 1..T
  (:class:`_RecordedFeedback`) and the fork run's own providers from turn T+1 on
  (:class:`_AfterPrefix`). (The prefix's feedback-model calls are not copied: none was made.)

Proposals in the prefix are judged again by the checker; a verdict that differs from the
parent's is recorded as a mismatch too. So every branch of one parent sees, at its branch turn
T+1, the message list the parent saw at turn T+1 (``tests/test_fork.py`` checks this byte for
byte), and its siblings differ only in what was sampled from there on.

Each branch is stored with ``parent_episode`` (the parent's id in the source run),
``branch_turn`` = T+1 (the first turn it sampled) and ``branch`` (0..N-1), under epoch
``parent.epoch * N + branch`` of its task, so the keys stay unique and ``--resume`` works. Its
sampling seed is derived from the run's ``--seed``, the task, the parent's epoch, the branch
turn and the branch index (:func:`~mulligan.models.base.call_seed`), then per turn as usual.
The manifest's ``fork`` section names the source (path, run id, config hash), T, N and how
many parents were branched or skipped.

**Frozen history** (``--frozen``, ConvCodeBench's static setting): each branch ends after its one
sampled turn T+1 and is scored by that turn's verdict, the reference model's recorded history
before it (``--model`` names the candidate). The prompt still states the source's turn budget.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.config import OPTIONS, ConfigError, RunConfig
from mulligan.episode import CellOutput, ReplSession, SandboxProvider, ToolHost, run_episode
from mulligan.events import (
    ActionEvent,
    Episode,
    ErrorEvent,
    FeedbackEvent,
    Message,
    ModelCallEvent,
    ObservationEvent,
    VerdictEvent,
)
from mulligan.feedback.base import FeedbackContext, FeedbackProvider, provider_kind
from mulligan.judge import LLMJudge
from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    Model,
    ModelError,
    call_seed,
)
from mulligan.models.replay import ReplayModel
from mulligan.prompts import NO_OUTPUT
from mulligan.store import RunStore, StoredRun, StoreError
from mulligan.tasks import Checker, Task
from mulligan.tasks.base import ProgramResult
from mulligan.tasks.environment import TaskTool

# Options that shape the replayed prefix: a fork must keep the source run's values, or the
# prefix would not be the parent's (another prompt, budget, judging or cell time limit).
PREFIX_OPTIONS = (
    "turns",
    "proposals",
    "in_context_example",
    "answer_format",
    "reject_repeats",
    "checkers",
    "cell_timeout_s",
    "judge_reads_feedback",
)
# Source options a fork run does not take over: where and how the source ran, and its own fork.
_NOT_INHERITED = {"out", "fail_on_error", "fork_from", "at_turn", "samples", "frozen"}


def fork_base_options(source: Path) -> dict[str, Any]:
    """The source run's options (flat, from its manifest) that a fork run starts from; its
    command-line options and config file are merged over them (``config.build_config``).

    Raises StoreError when ``source`` holds no run.
    """
    with _open_source(source) as store:
        stored = store.run()
    if stored is None:
        raise ConfigError(f"--fork-from {source}: the directory holds no run yet")
    options = stored.manifest.get("config", {})
    return {
        name: value
        for name, value in options.items()
        if name in OPTIONS and name not in _NOT_INHERITED and value is not None
    }


def _open_source(source: Path) -> RunStore:
    try:
        return RunStore.open_existing(source)
    except StoreError as exc:
        raise ConfigError(f"--fork-from: {exc}") from exc


def _show(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ----------------------------------------------------------------------------- stand-ins


class _BranchPolicy:
    """Turns 1..``replayed`` from the parent's log (strictly checked), later turns live."""

    cacheable = False

    def __init__(self, replay: ReplayModel, live: Model, parent_epoch: int, replayed: int):
        self.replay, self.live = replay, live
        self.parent_epoch, self.replayed = parent_epoch, replayed
        self.name = live.name

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        if context is None:
            raise ModelError("a branch policy needs the call context (task and turn)")
        if context.turn <= self.replayed:
            logged = context.model_copy(update={"epoch": self.parent_epoch})
            return await self.replay.generate(messages, params, logged)
        return await self.live.generate(messages, params, context)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _StoredCell:
    """The parent's recorded result of a cell, handed to the episode loop in place of the
    re-run's (``CellOutput``)."""

    output: str
    error: str | None
    timed_out: bool
    duration_s: float


@dataclass(frozen=True, slots=True)
class _Cell:
    turn: int
    code: str
    observation: ObservationEvent


class _PrefixRepl:
    def __init__(self, repl: ReplSession, owner: _PrefixSandboxes) -> None:
        self.repl, self.owner = repl, owner

    async def execute(
        self, code: str, timeout_s: float | None = None, *, tools: ToolHost | None = None
    ) -> CellOutput:
        # Tool calls go through too: a replayed environment cell steps the branch's own game.
        if not self.owner.pending:
            return await self.repl.execute(code, timeout_s, tools=tools)
        cell = self.owner.pending.popleft()
        result = await self.repl.execute(code, timeout_s, tools=tools)
        recorded = cell.observation
        seen = result.output if result.output.strip() else NO_OUTPUT
        if code != cell.code:
            self.owner.mismatches.append((cell.turn, "the replayed cell is not the recorded one"))
        elif (seen, result.error, result.timed_out) != (
            recorded.content,
            recorded.error,
            recorded.timed_out,
        ):
            self.owner.mismatches.append(
                (
                    cell.turn,
                    f"re-running the recorded cell gave {_show(seen)} (error {result.error}, "
                    f"timed out {result.timed_out}) where the parent observed "
                    f"{_show(recorded.content)} (error {recorded.error}, timed out "
                    f"{recorded.timed_out}); the context keeps the recorded observation",
                )
            )
        return _StoredCell(recorded.content, recorded.error, recorded.timed_out, result.duration_s)


class _PrefixSandboxes:
    """The run's sandboxes, with the parent's prefix cells checked against their records."""

    def __init__(self, inner: SandboxProvider, cells: Sequence[_Cell]) -> None:
        self.inner = inner
        self.pending: deque[_Cell] = deque(cells)
        self.mismatches: list[tuple[int, str]] = []

    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        return await self.inner.run_program(code, timeout_s, output_limit=output_limit)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[ReplSession]:
        async with self.inner.session() as repl:
            yield _PrefixRepl(repl, self)

    def session(self) -> AbstractAsyncContextManager[ReplSession]:
        return self._session()


class _RecordedFeedback:
    """The ``slot``-th feedback event the parent got at each replayed turn."""

    name = "fork-prefix"

    def __init__(self, by_turn: dict[int, list[FeedbackEvent]], slot: int) -> None:
        self.by_turn, self.slot = by_turn, slot

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        events = self.by_turn.get(ctx.turn, [])
        return events[self.slot] if self.slot < len(events) else None


class _AfterPrefix:
    """A live provider of the fork run, silent during the replayed turns."""

    def __init__(self, inner: FeedbackProvider, replayed: int) -> None:
        self.inner, self.replayed = inner, replayed
        self.name = inner.name
        self.kind = provider_kind(inner)

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        return None if ctx.turn <= self.replayed else await self.inner.feedback(ctx)


def prefix_feedback(
    parent: Episode, replayed: int, live: Sequence[FeedbackProvider]
) -> list[FeedbackProvider]:
    """The chain of a branch: the parent's feedback for turns 1..``replayed``, in its order,
    then ``live`` from the next turn on."""
    by_turn: dict[int, list[FeedbackEvent]] = defaultdict(list)
    for event in parent.events:
        if isinstance(event, FeedbackEvent) and event.turn <= replayed:
            by_turn[event.turn].append(event)
    slots = max((len(events) for events in by_turn.values()), default=0)
    recorded: list[FeedbackProvider] = [_RecordedFeedback(by_turn, j) for j in range(slots)]
    return [*recorded, *(_AfterPrefix(p, replayed) for p in live)]


class _BranchJudgeModel:
    """The judge's model in a branch: at turns 1..``replayed`` it answers with the parent's
    recorded judge calls of that turn, in their order (a call that did not fit the judge's
    window is raised again as such), so the prefix is judged as the parent's was and costs
    nothing; later turns go to the fork run's judge."""

    cacheable = False

    def __init__(self, live: Model, parent: Episode, replayed: int) -> None:
        self.live, self.replayed = live, replayed
        self.name = live.name
        self.recorded: dict[int, deque[ModelCallEvent | ErrorEvent]] = defaultdict(deque)
        for event in parent.events:
            if event.turn > replayed:
                continue
            if (isinstance(event, ModelCallEvent) and event.role == "judge") or (
                isinstance(event, ErrorEvent) and event.where.startswith("judge:")
            ):
                self.recorded[event.turn].append(event)

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        if context is None or context.turn > self.replayed:
            return await self.live.generate(messages, params, context)
        recorded = self.recorded.get(context.turn)
        if not recorded:
            raise ModelError(
                f"turn {context.turn}: the parent episode has no judge call left to replay here "
                "(the prefix asks the judge more often than the parent's did)"
            )
        event = recorded.popleft()
        if isinstance(event, ErrorEvent):
            raise ContextWindowExceeded(event.message)
        return Completion(
            text=event.output,
            model=event.model,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            finish_reason=event.finish_reason,
            cost_usd=event.cost_usd,
            seed=event.seed,
        )

    async def aclose(self) -> None:
        return None


def prefix_judge(judge: LLMJudge | None, parent: Episode, replayed: int) -> LLMJudge | None:
    """A branch's judge: the run's, with the parent's recorded calls for the prefix."""
    if judge is None:
        return None
    model = _BranchJudgeModel(judge.model, parent, replayed)
    return LLMJudge(model, judge.params, reads_feedback=judge.reads_feedback)


def prefix_cells(parent: Episode, replayed: int) -> list[_Cell]:
    """The parent's ``<execute>`` cells of turns 1..``replayed`` with their observations."""
    observed = {
        e.turn: e
        for e in parent.events
        if isinstance(e, ObservationEvent) and e.source == "sandbox" and e.turn <= replayed
    }
    return [
        _Cell(e.turn, e.content, observed[e.turn])
        for e in parent.events
        if isinstance(e, ActionEvent)
        and e.kind == "execute"
        and e.turn <= replayed
        and e.turn in observed
    ]


def _verdicts(episode: Episode, replayed: int) -> list[tuple[int, str, bool]]:
    return [
        (e.turn, e.answer, e.correct)
        for e in episode.events
        if isinstance(e, VerdictEvent) and e.turn <= replayed
    ]


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch to sample: its task, parent episode, index and epoch in the fork run."""

    task: Task
    parent: Episode
    index: int
    epoch: int


@dataclass(frozen=True, slots=True)
class BranchDeps:
    """What every branch of a fork run shares (the run's components, in the runner)."""

    policy: Model
    checkers: dict[str, Checker]
    sandboxes: SandboxProvider
    feedback: Sequence[FeedbackProvider]
    judge: LLMJudge | None
    params: GenerateParams
    run_id: str
    config_hash: str
    task_tools: Mapping[str, TaskTool] = field(default_factory=dict)


class ForkPlan:
    """The branches of a fork run: which parents, how many branches each, and how each runs.

    Build with :meth:`load`. Raises ConfigError (via ``load``) when the fork cannot keep the
    parents' prefixes: T not below the turn budget, a prefix-shaping option changed, or a
    parent's task not among the run's tasks.
    """

    def __init__(self, config: RunConfig, source: Path, stored: StoredRun, parents: list[Episode]):
        self.config = config
        self.source = source
        self.stored = stored
        self.at_turn = config.fork.at_turn
        self.samples = config.fork.samples
        self.skipped: Counter[str] = Counter()
        self.eligible = [p for p in parents if self._eligible(p)]
        self.parents = len(self.eligible)  # those branched, once ``branches`` chose them
        self.replay = ReplayModel(source, verify="strict")
        self.mismatches = 0
        self.mismatched_branches = 0

    def _eligible(self, parent: Episode) -> bool:
        if parent.status == "failed":
            self.skipped["failed"] += 1
        elif parent.turns_used <= self.at_turn:  # solved, out of proposals or context by then
            self.skipped[f"ended_by_turn_{self.at_turn}"] += 1
        else:
            return True
        return False

    @classmethod
    def load(cls, config: RunConfig) -> ForkPlan:
        """The plan of ``config``'s fork (``config.fork.fork_from`` must be set)."""
        source = config.fork.fork_from
        if source is None:
            raise ValueError("ForkPlan.load needs config.fork.fork_from")
        with _open_source(source) as store:
            stored = store.run()
            parents = list(store.episodes())
        if stored is None:
            raise ConfigError(f"--fork-from {source}: the directory holds no run yet")
        _check_prefix_options(config, stored, source)
        return cls(config, source, stored, parents)

    def branches(self, tasks: Sequence[Task]) -> list[Branch]:
        """Every branch, parent by parent (in the source's order), N each. Parents whose task
        is not among ``tasks`` (a fork run given a smaller ``--limit`` or other ``--tasks``
        than its source) are skipped and counted as ``not_selected``; none left is an error."""
        by_key = {(t.suite, t.id): t for t in tasks}
        out = []
        for parent in self.eligible:
            task = by_key.get((parent.key.suite, parent.key.task_id))
            if task is None:
                self.skipped["not_selected"] += 1
                continue
            out += [
                Branch(task, parent, i, parent.key.epoch * self.samples + i)
                for i in range(self.samples)
            ]
        if not out:
            raise ConfigError(
                f"--fork-from {self.source}: no episode to branch ({len(self.eligible)} went on "
                f"past turn {self.at_turn}, skipped: {dict(self.skipped) or 'none'}); choose a "
                "smaller --at-turn or other tasks"
            )
        self.parents = len({b.parent.id for b in out})
        return out

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``fork`` section."""
        return {
            "source": str(Path(self.source).resolve()),
            "source_run_id": self.stored.run_id,
            "source_config_hash": self.stored.config_hash,
            "at_turn": self.at_turn,
            "branch_turn": self.at_turn + 1,
            "samples": self.samples,
            "frozen": self.config.fork.frozen,
            "parents": self.parents,
            "skipped": dict(sorted(self.skipped.items())),
        }

    def counters(self) -> dict[str, int]:
        """What the prefix replays found, for the manifest's counters."""
        return {
            "prefix_mismatches": self.mismatches,
            "branches_with_mismatch": self.mismatched_branches,
            "replayed_calls": self.replay.calls,
        }

    async def run_branch(self, branch: Branch, deps: BranchDeps) -> Episode:
        """Sample one branch (module docstring) and return it as an episode."""
        parent, task, replayed = branch.parent, branch.task, self.at_turn
        policy = _BranchPolicy(self.replay, deps.policy, parent.key.epoch, replayed)
        sandboxes = _PrefixSandboxes(deps.sandboxes, prefix_cells(parent, replayed))
        # The branch index is part of the seed, so siblings sample apart on every backend.
        seed = call_seed(
            deps.params.seed, "branch", task.suite, task.id, parent.key.epoch, replayed + 1,
            salt=branch.index,
        )  # fmt: skip
        episode = await run_episode(
            task=task,
            policy=policy,
            params=deps.params.model_copy(update={"seed": seed}),
            checker=deps.checkers[task.checker],
            sandboxes=sandboxes,
            feedback=prefix_feedback(parent, replayed, deps.feedback),
            limits=self.config.episode,
            run_id=deps.run_id,
            config_hash=deps.config_hash,
            epoch=branch.epoch,
            judge=prefix_judge(deps.judge, parent, replayed),
            task_tools=deps.task_tools,
            last_turn=replayed + 1 if self.config.fork.frozen else None,
        )
        mismatches = [*sandboxes.mismatches, *_judging_mismatches(parent, episode, replayed)]
        self.mismatches += len(mismatches)
        self.mismatched_branches += bool(mismatches)
        _mark_branch(episode, branch, replayed, mismatches)
        return episode


def _judging_mismatches(parent: Episode, episode: Episode, replayed: int) -> list[tuple[int, str]]:
    out = []
    if _verdicts(episode, replayed) != _verdicts(parent, replayed):
        out.append((replayed, "the prefix's proposals were judged otherwise than the parent's"))
    if episode.status == "finished" and episode.turns_used <= replayed:
        out.append((episode.turns_used, "the episode ended before its branch turn"))
    return out


def _mark_branch(
    episode: Episode, branch: Branch, replayed: int, mismatches: list[tuple[int, str]]
) -> None:
    """Stamp parent, branch turn and index; give the replayed policy calls the parent's seeds
    and temperatures (the seeds the replies were sampled with); record the mismatches."""
    logged: dict[int, ModelCallEvent] = {}
    for event in branch.parent.events:
        if isinstance(event, ModelCallEvent) and event.role == "policy" and event.turn <= replayed:
            logged.setdefault(event.turn, event)
    events = []
    for event in episode.events:
        if isinstance(event, ModelCallEvent) and event.role == "policy" and event.turn in logged:
            original = logged[event.turn]
            event = event.model_copy(
                update={"seed": original.seed, "temperature": original.temperature}
            )
        events.append(event)
    events += [ErrorEvent(turn=t, where="fork-prefix", message=m) for t, m in mismatches]
    episode.events = events
    episode.parent_episode = branch.parent.id
    episode.branch_turn = replayed + 1
    episode.branch = branch.index


def _check_prefix_options(config: RunConfig, stored: StoredRun, source: Path) -> None:
    recorded = {**RunConfig().options(), **stored.manifest.get("config", {})}
    mine = config.options()
    changed = [
        f"{name}: {recorded.get(name)!r} -> {mine[name]!r}"
        for name in PREFIX_OPTIONS
        if recorded.get(name) != mine[name]
    ]
    if (recorded.get("judge_model") is None) != (mine["judge_model"] is None):
        # The prefix's judge calls are the parent's: both runs consult a judge, or neither.
        changed.append(f"judge_model: {recorded.get('judge_model')!r} -> {mine['judge_model']!r}")
    if changed:
        raise ConfigError(
            f"--fork-from {source}: a fork replays the source's turns, so it keeps the options "
            f"that shape them ({', '.join(changed)}); drop these options"
        )
    if config.fork.at_turn >= config.episode.max_turns:
        raise ConfigError(
            f"--at-turn {config.fork.at_turn}: the source run has {config.episode.max_turns} "
            f"turns, so T must be below it (0 branches at the first turn)"
        )
