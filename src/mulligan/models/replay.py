"""The replay backend: answers each call with the reply a logged trajectory gave at that turn.

``replay/<source>`` reads one of:

- a mulligan run directory (``mulligan.sqlite`` inside, read through :class:`RunStore`): the
  policy's :class:`~mulligan.events.ModelCallEvent` output per (suite, task, epoch) and turn;
- a MINT ``results.jsonl`` (one task per line; the suite is the file's directory name, as in
  MINT's ``outputs/.../<type>/<suite>/results.jsonl`` layout): turn *t*'s reply is the *t*-th
  assistant message of ``state.history`` after the first user prompt, without MINT's
  ``Assistant:\\n`` prefix; the task id is ``task.task_id``;
- a directory of MINT outputs (every ``results.jsonl`` below it, e.g. one ``max5_p2+tool+cd``
  configuration).

Calls are matched by ``(context.task.suite, context.task.id, context.epoch)`` and
``context.turn``. A turn the log has no reply for raises a final
:class:`~mulligan.models.base.ModelError` naming the task and turn. Replies are returned verbatim.

Prefix checks (``verify``): a replayed reply is only meaningful if the conversation so far is the
logged one. :meth:`ReplayModel.prefix_matches` compares the prompt and the assistant turns
with the log (and, for MINT logs, which keep the whole history, the observations too);
``verify="count"`` (default) tallies how often calls matched (``prefix_checked`` /
``prefix_matched``), ``verify="strict"`` raises on the first mismatch, ``verify="off"`` skips it.
This is the basis of frozen evaluation: replaying a policy while changing the feedback.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mulligan.actions import restore_stop
from mulligan.errors import MulliganError
from mulligan.events import Message, ModelCallEvent, PromptEvent
from mulligan.models.base import CallContext, Completion, GenerateParams, ModelError
from mulligan.store import DB_NAME, RunStore
from mulligan.tasks.mint_log import (
    RESULTS_FILE,
    MintLogError,
    MintResultLine,
    read_results,
    strip_assistant_prefix,
)

VerifyMode = Literal["off", "count", "strict"]


class ReplayModelError(ModelError, MulliganError):
    """The replay source cannot be read, or has no reply for a call. Never transient."""


@dataclass(frozen=True)
class LoggedReply:
    """One logged policy reply and its accounting."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


@dataclass
class Trajectory:
    """What the log holds for one episode.

    ``prompt`` is the conversation before the first reply; ``history`` the whole conversation
    when the log keeps it (MINT), else None (our run store keeps replies, not the messages built
    from observations).
    """

    source: str
    prompt: tuple[Message, ...]
    replies: dict[int, LoggedReply] = field(default_factory=dict)
    history: tuple[Message, ...] | None = None


@dataclass(frozen=True)
class PrefixMatch:
    """Whether a conversation matches a logged one so far, and where it first differs."""

    matched: bool
    checked: int = 0
    reason: str = ""

    def __bool__(self) -> bool:
        return self.matched


TaskKey = tuple[str, str, int]  # (suite, task id, epoch)


def _norm(text: str) -> str:
    return text.strip()


def _same_reply(sent: str, logged: str) -> bool:
    # The episode keeps the reply with a stop-cut tag closed (actions.restore_stop), and a
    # conversation rebuilt from MINT's own history keeps its "Assistant:" prefix; accept both.
    sent = _norm(strip_assistant_prefix(_norm(sent)))
    return sent in (_norm(logged), _norm(restore_stop(logged)))


def _show(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ------------------------------------------------------------------------------------ loading


def load_mint_results(path: Path) -> dict[TaskKey, Trajectory]:
    """Trajectories of one MINT ``results.jsonl``; the suite is the parent directory's name.

    Raises:
        ReplayModelError: a line is not a MINT result (``mulligan.tasks.mint_log``).
    """
    suite = path.parent.name
    out: dict[TaskKey, Trajectory] = {}
    try:
        for lineno, line in read_results(path):
            out[(suite, str(line.task.task_id), 0)] = _mint_trajectory(f"{path}:{lineno}", line)
    except MintLogError as e:
        raise ReplayModelError(
            f"{e.path}:{e.line}: not a MINT result line (need task.task_id and state.history "
            f"with role/content messages): {e.reason}"
        ) from e
    return out


def _mint_trajectory(where: str, line: MintResultLine) -> Trajectory:
    cleaned = tuple(
        Message(
            role=m.role,
            content=strip_assistant_prefix(m.content) if m.role == "assistant" else m.content,
        )
        for m in line.state.history
    )
    first_reply = next((i for i, m in enumerate(cleaned) if m.role == "assistant"), len(cleaned))
    replies = {
        turn: LoggedReply(m.content)
        for turn, m in enumerate((m for m in cleaned if m.role == "assistant"), 1)
    }
    return Trajectory(where, cleaned[:first_reply], replies, cleaned)


def load_run_dir(run_dir: Path) -> dict[TaskKey, Trajectory]:
    """Trajectories of a mulligan run directory: the policy's replies per episode and turn."""
    out: dict[TaskKey, Trajectory] = {}
    with RunStore.open_existing(run_dir) as store:
        for episode in store.episodes():
            prompt: tuple[Message, ...] = ()
            replies: dict[int, LoggedReply] = {}
            for event in episode.events:
                if isinstance(event, PromptEvent) and not prompt:
                    prompt = event.messages
                elif (
                    isinstance(event, ModelCallEvent)
                    and event.role == "policy"
                    and event.turn not in replies
                ):
                    replies[event.turn] = LoggedReply(
                        event.output,
                        event.prompt_tokens,
                        event.completion_tokens,
                        event.finish_reason,
                    )
            key = (episode.key.suite, episode.key.task_id, episode.key.epoch)
            out[key] = Trajectory(f"{run_dir} episode {episode.id}", prompt, replies)
    return out


def load_trajectories(source: Path) -> dict[TaskKey, Trajectory]:
    """Trajectories from a run directory, a MINT ``results.jsonl`` or a tree of them.

    Raises:
        ReplayModelError: nothing readable there, or two MINT files log the same task.
    """
    if source.is_file():
        return load_mint_results(source)
    if not source.is_dir():
        raise ReplayModelError(
            f"replay source {source} does not exist; give a mulligan run directory, a MINT "
            f"{RESULTS_FILE} file or a directory of them"
        )
    if (source / DB_NAME).is_file():
        return load_run_dir(source)
    files = sorted(source.rglob(RESULTS_FILE))
    if not files:
        raise ReplayModelError(
            f"{source} holds neither {DB_NAME} (a mulligan run) nor any MINT {RESULTS_FILE}"
        )
    out: dict[TaskKey, Trajectory] = {}
    for path in files:
        for key, trajectory in load_mint_results(path).items():
            if key in out:
                raise ReplayModelError(
                    f"{source}: task {key[0]}/{key[1]} is logged twice ({out[key].source} and "
                    f"{trajectory.source}); point replay at one configuration's directory"
                )
            out[key] = trajectory
    return out


# ------------------------------------------------------------------------------------- model


class ReplayModel:
    """A policy that replays logged replies (see the module docstring).

    Args:
        source: a run directory, a MINT ``results.jsonl`` or a directory of them.
        verify: ``off`` | ``count`` | ``strict`` prefix checks.
        name: reported model name (default ``replay/<source>``).
    """

    cacheable = False  # replays a log: a cache gains nothing

    def __init__(
        self, source: Path | str, *, verify: VerifyMode = "count", name: str | None = None
    ) -> None:
        if verify not in ("off", "count", "strict"):
            raise ValueError(f"unknown verify mode {verify!r}; use off, count or strict")
        self.source = Path(source).expanduser()
        self.name = name or f"replay/{source}"
        self.verify: VerifyMode = verify
        self.trajectories = load_trajectories(self.source)
        self.calls = 0
        self.prefix_checked = 0
        self.prefix_matched = 0
        self.mismatch_turns: Counter[int] = Counter()

    async def resolve_identity(self) -> dict[str, Any]:
        """The log replayed."""
        return {"backend": "replay", "source": str(self.source.resolve())}

    @property
    def prefix_match_rate(self) -> float | None:
        """Share of checked calls whose conversation matched the log (None before any check)."""
        return self.prefix_matched / self.prefix_checked if self.prefix_checked else None

    def trajectory(self, context: CallContext) -> Trajectory:
        """The logged episode for this call's task and epoch.

        Raises:
            ReplayModelError: the log has no such episode.
        """
        key = (context.task.suite, context.task.id, context.epoch)
        found = self.trajectories.get(key)
        if found is None:
            suites = sorted({k[0] for k in self.trajectories})
            raise ReplayModelError(
                f"{self.name}: no logged episode for task {key[0]}/{key[1]} epoch {key[2]} "
                f"(the log has {len(self.trajectories)} episodes of {', '.join(suites)})"
            )
        return found

    def prefix_matches(self, messages: list[Message], context: CallContext) -> PrefixMatch:
        """Does ``messages`` (the conversation before this call) match the logged one?

        Compared: the prompt messages; each assistant message with the reply logged for its turn;
        and, when the log keeps the whole history (MINT), every other message too. Whitespace at
        either end of a message is ignored.
        """
        trajectory = self.trajectory(context)
        logged_prompt = trajectory.prompt
        checked = 0
        for i, expected in enumerate(logged_prompt):
            if i >= len(messages):
                return PrefixMatch(False, checked, f"conversation ends before prompt message {i}")
            got = messages[i]
            if got.role != expected.role or _norm(got.content) != _norm(expected.content):
                return PrefixMatch(
                    False,
                    checked,
                    f"prompt message {i} ({got.role}) differs from the log: "
                    f"{_show(got.content)} vs {_show(expected.content)}",
                )
            checked += 1
        history = trajectory.history
        turn = 0
        for i in range(len(logged_prompt), len(messages)):
            got = messages[i]
            if got.role == "assistant":
                turn += 1
                reply = trajectory.replies.get(turn)
                if reply is None:
                    return PrefixMatch(False, checked, f"the log has no reply for turn {turn}")
                if not _same_reply(got.content, reply.text):
                    return PrefixMatch(
                        False,
                        checked,
                        f"turn {turn} reply differs from the log: "
                        f"{_show(got.content)} vs {_show(reply.text)}",
                    )
                checked += 1
            elif history is not None:
                if i >= len(history):
                    return PrefixMatch(False, checked, f"the log ends before message {i}")
                expected = history[i]
                if got.role != expected.role or _norm(got.content) != _norm(expected.content):
                    return PrefixMatch(
                        False,
                        checked,
                        f"message {i} ({got.role}, after turn {turn}) differs "
                        f"from the log: {_show(got.content)} vs {_show(expected.content)}",
                    )
                checked += 1
        return PrefixMatch(True, checked)

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        """The logged reply for ``context``'s task, epoch and turn.

        Raises:
            ReplayModelError: no context, no logged episode, no reply for this turn, or (strict) the
                conversation differs from the log.
        """
        start = time.perf_counter()
        if context is None:
            raise ReplayModelError(f"{self.name} needs the call context (task and turn)")
        self.calls += 1
        trajectory = self.trajectory(context)
        reply = trajectory.replies.get(context.turn)
        if reply is None:
            have = sorted(trajectory.replies)
            span = f"turns {have[0]}-{have[-1]}" if have else "no replies"
            raise ReplayModelError(
                f"{self.name}: the logged trajectory of task {context.task.suite}/"
                f"{context.task.id} (epoch {context.epoch}) has no reply for turn {context.turn} "
                f"(it has {span}; {trajectory.source})"
            )
        if self.verify != "off":
            match = self.prefix_matches(messages, context)
            self.prefix_checked += 1
            if match:
                self.prefix_matched += 1
            else:
                self.mismatch_turns[context.turn] += 1
                if self.verify == "strict":
                    raise ReplayModelError(
                        f"{self.name}: task {context.task.suite}/{context.task.id} turn "
                        f"{context.turn}: the conversation left the logged one: {match.reason}"
                    )
        return Completion(
            text=reply.text,
            model=self.name,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            latency_s=time.perf_counter() - start,
            finish_reason=reply.finish_reason,
        )

    def summary(self) -> dict[str, Any]:
        """Counts for reports: calls, prefix checks and matches, mismatches by turn."""
        return {
            "calls": self.calls,
            "prefix_checked": self.prefix_checked,
            "prefix_matched": self.prefix_matched,
            "prefix_match_rate": self.prefix_match_rate,
            "mismatch_turns": dict(sorted(self.mismatch_turns.items())),
        }

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"ReplayModel({str(self.source)!r}, episodes={len(self.trajectories)})"
