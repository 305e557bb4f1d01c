"""What exports read: run stores, their episodes grouped by task, the filters, and provenance.

Every format reads runs the same way. Each run's store yields its episodes already ordered by
(suite, task, epoch); the streams of all runs are merged on (suite, task), so the episodes of one
task, from every run, arrive together as one :class:`TaskGroup` and nothing else is held: memory
grows with the episodes of one task, never with the run. Pairs (DPO) are only ever formed inside a
task (two contexts that differ in their task cannot be byte-identical), so grouping by task
loses none.

An episode is read as :class:`EpisodeView`: its policy turns (:class:`PolicyTurn`), each with
the exact message list its call received (``Episode.policy_calls``, recorded by the episode loop,
never re-assembled here), the reply kept in the conversation, the action, the verdict and the
feedback that followed. A run stored before mulligan recorded those messages is refused with
the fix (re-run, or re-import MINT's logs).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.actions import AnswerFormat, is_well_formed
from mulligan.errors import MulliganError
from mulligan.events import (
    ActionEvent,
    Episode,
    FeedbackEvent,
    Message,
    MissingMessages,
    ModelCallEvent,
    PromptEvent,
    VerdictEvent,
)
from mulligan.store import DB_NAME, RunStore, StoreError, find_runs


class ExportError(MulliganError, ValueError):
    """An export cannot be made as asked (format, runs, filters, output)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which episodes an export keeps. ``exclude_leaked`` None: the format's default (on for
    training formats)."""

    suites: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    """Task ids, or ``suite/task_id``."""
    solved_only: bool = False
    feedback_kinds: frozenset[str] = frozenset()
    """Keep episodes that received feedback of at least one of these kinds (empty: all)."""
    exclude_leaked: bool | None = None
    well_formed_only: bool = False
    """Drop episodes with a policy reply not in the format to the letter
    (:func:`mulligan.actions.is_well_formed`), which the lenient parser still accepted."""


@dataclass(frozen=True, slots=True)
class RunSource:
    """One run directory to export from."""

    run_dir: Path
    run_id: str
    manifest: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyTurn:
    """One policy call and what came of it."""

    number: int
    call: ModelCallEvent
    context: list[Message]
    """Exactly the messages the call received."""
    reply: Message
    """The reply as kept in the conversation (what later calls saw)."""
    action: ActionEvent | None
    verdict: VerdictEvent | None
    feedback: list[FeedbackEvent]

    @property
    def invalid(self) -> bool:
        return self.action is not None and self.action.kind == "invalid"

    @property
    def is_proposal(self) -> bool:
        return self.verdict is not None

    @property
    def feedback_text(self) -> str:
        """What the feedback told the policy after this turn (kind ``none`` says nothing)."""
        return "\n".join(f.content for f in self.feedback if f.kind != "none" and f.content)


@dataclass(frozen=True, slots=True)
class EpisodeView:
    """An episode of a run, read for export."""

    run: RunSource
    episode: Episode
    turns: list[PolicyTurn]
    prompt: PromptEvent | None

    @property
    def first_prompt(self) -> list[Message]:
        return list(self.prompt.messages) if self.prompt is not None else []

    @property
    def answer_format(self) -> AnswerFormat:
        """The format the policy was asked to answer in (its first message's template)."""
        return "reply" if self.prompt is not None and self.prompt.template == "refine" else "tagged"

    @property
    def feedback(self) -> list[FeedbackEvent]:
        return [f for t in self.turns for f in t.feedback]

    @property
    def leaked(self) -> bool:
        """Whether any feedback the policy received revealed the reference."""
        return any(f.leak.any for f in self.feedback)

    @property
    def conversation(self) -> list[Message]:
        """The conversation up to the last policy reply (no trailing user turn)."""
        if not self.turns:
            return self.first_prompt
        last = self.turns[-1]
        return [*last.context, last.reply]


TaskGroup = list[EpisodeView]
"""All kept episodes of one task (suite, task id), from every run exported."""


@dataclass(slots=True)
class Tally:
    """What an export read, dropped and wrote, for the dataset card."""

    episodes_read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    """Records per split."""
    suites: Counter[str] = field(default_factory=Counter)
    """Episodes kept per suite."""


def resolve_runs(paths: Sequence[Path]) -> list[RunSource]:
    """Each path's run, or every run below it (an import root); one error line per bad path."""
    sources: list[RunSource] = []
    for path in paths:
        if (path / DB_NAME).is_file():
            dirs = [path]
        elif path.is_dir():
            dirs = find_runs(path)
            if not dirs:
                raise ExportError(f"{path}: no run here (no {DB_NAME} at or below it)")
        else:
            raise ExportError(f"{path}: no such run directory; pass a `mulligan run` --out")
        for run_dir in dirs:
            if any(s.run_dir.resolve() == run_dir.resolve() for s in sources):
                continue  # named twice (or inside a root also named): exported once
            with RunStore.open_existing(run_dir) as store:
                run = store.run()
            if run is None:
                raise ExportError(f"{run_dir}: the store holds no run yet")
            sources.append(RunSource(run_dir, run.run_id, run.manifest))
    return sources


def read_view(run: RunSource, episode: Episode) -> EpisodeView:
    """An episode's policy turns with their exact inputs; refuses an episode stored without
    them (see the module docstring)."""
    try:
        calls = episode.policy_calls()
    except MissingMessages as exc:
        # An export never re-assembles the messages: it refuses instead.
        raise ExportError(f"{run.run_dir}: {exc}") from None
    conversation = episode.conversation()
    turns = []
    for call, context in calls:
        if len(context) >= len(conversation) or conversation[len(context)].role != "assistant":
            continue  # the reply was never kept (the episode broke off after the call)
        events = [e for e in episode.events if e.turn == call.turn]
        turns.append(
            PolicyTurn(
                number=call.turn,
                call=call,
                context=context,
                reply=conversation[len(context)],
                action=next((e for e in events if isinstance(e, ActionEvent)), None),
                verdict=next((e for e in events if isinstance(e, VerdictEvent)), None),
                feedback=[e for e in events if isinstance(e, FeedbackEvent)],
            )
        )
    prompt = next((e for e in episode.events if isinstance(e, PromptEvent)), None)
    return EpisodeView(run, episode, turns, prompt)


def _drop_reason(view: EpisodeView, filters: Filters, exclude_leaked: bool) -> str | None:
    """Why a filter drops an episode, or None to keep it."""
    episode = view.episode
    if episode.status != "finished":
        return "failed episode"
    key = episode.key
    if filters.suites and key.suite not in filters.suites:
        return "suite filter"
    if filters.tasks and not {key.task_id, f"{key.suite}/{key.task_id}"} & filters.tasks:
        return "task filter"
    if filters.solved_only and not episode.success:
        return "not solved (--solved-only)"
    if filters.feedback_kinds and not {f.kind for f in view.feedback} & filters.feedback_kinds:
        return "feedback kind filter"
    if exclude_leaked and view.leaked:
        return "feedback leaked the reference"
    if filters.well_formed_only and not all(
        is_well_formed(t.reply.content, view.answer_format) for t in view.turns
    ):
        return "a malformed policy reply (--well-formed)"
    return None


def stream_episodes(
    store: RunStore, run: RunSource, filters: Filters, exclude_leaked: bool, tally: Tally
) -> Iterator[EpisodeView]:
    """One run's kept episodes, in stored order; what the filters drop is tallied."""
    for episode in store.episodes():
        tally.episodes_read += 1
        view = read_view(run, episode)
        reason = _drop_reason(view, filters, exclude_leaked)
        if reason is not None:
            tally.dropped[reason] += 1
            continue
        tally.suites[episode.key.suite] += 1
        yield view


def task_groups(
    runs: Iterable[RunSource], filters: Filters, exclude_leaked: bool, tally: Tally
) -> Iterator[TaskGroup]:
    """The kept episodes of every run, one task at a time (see the module docstring)."""
    with ExitStack() as stack:
        streams = []
        for run in runs:
            try:
                store = stack.enter_context(RunStore.open_existing(run.run_dir))
            except StoreError as exc:
                raise ExportError(str(exc)) from None
            streams.append(stream_episodes(store, run, filters, exclude_leaked, tally))
        merged = heapq.merge(*streams, key=_task_key)
        for _, group in itertools.groupby(merged, key=_task_key):
            yield list(group)


def _task_key(view: EpisodeView) -> tuple[str, str]:
    # SQLite orders TEXT by its UTF-8 bytes, which is the order of Python's code points.
    return view.episode.key.suite, view.episode.key.task_id


def digest(value: Any) -> str:
    """A stable hash of JSON-able data (message lists, records), for pairing and dedup."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def messages_json(messages: Iterable[Message]) -> list[dict[str, str]]:
    """Messages as chat-template dicts (``role``, ``content``)."""
    return [{"role": m.role, "content": m.content} for m in messages]


def provenance(view: EpisodeView, turn: PolicyTurn | None = None) -> dict[str, Any]:
    """Where a record comes from; the same keys in every record (``turn`` None: the whole
    episode), so Arrow readers see one schema."""
    episode, feedback = view.episode, view.feedback
    calls = [e for e in episode.events if isinstance(e, ModelCallEvent) and e.role == "feedback"]
    templates = [view.prompt.template_hash] if view.prompt is not None else []
    templates += sorted({f.template_hash for f in feedback if f.template_hash})
    return {
        "run_id": view.run.run_id,
        "run_dir": str(view.run.run_dir),
        "episode_id": episode.id,
        "suite": episode.key.suite,
        "task_id": episode.key.task_id,
        "epoch": episode.key.epoch,
        "turn": None if turn is None else turn.number,
        "policy_model": episode.model,
        "feedback_models": sorted({c.model for c in calls}),
        "feedback_kinds": sorted({f.kind for f in feedback}),
        "feedback_sources": sorted({f.source for f in feedback}),
        "feedback_saw_reference": any(f.saw_reference for f in feedback),
        "feedback_leaked_raw": any(f.original_leak.any for f in feedback),
        "feedback_leaked": view.leaked,
        "template_hashes": templates,
        "config_hash": episode.config_hash,
        "success": episode.success,
        "success_turn": episode.success_turn,
        "seed": None if turn is None else turn.call.seed,
        "temperature": None if turn is None else turn.call.temperature,
    }


def desirable(view: EpisodeView, turn: PolicyTurn) -> bool:
    """Whether a policy turn is one to learn from: a proposal that was right, or a tool call or
    refused repeat in an episode that was solved; never an invalid action or a wrong proposal."""
    if turn.invalid:
        return False
    if turn.verdict is not None:
        return turn.verdict.correct
    return view.episode.success
