"""The transcript schema: messages, typed events and the episode record.

Everything an episode does is appended to its transcript as one of the events below. The store
keeps them as JSON; ``Episode.model_validate_json(ep.model_dump_json())`` round-trips losslessly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mulligan.errors import MulliganError

Role = Literal["system", "user", "assistant"]
ModelRole = Literal["policy", "feedback", "judge"]
ActionKind = Literal["execute", "solution", "invalid"]
Expertise = Literal["none", "novice", "expert"]
"""ConvCodeWorld's verbal feedback levels; ``none`` for feedback without a speaker."""

FeedbackKind = Literal[
    "none", "unary", "binary", "tests", "textual", "critique", "checklist", "self", "challenge"
]
"""What a feedback event is; which spec kind produces which is listed in
:mod:`mulligan.feedback.spec` (``KindInfo.events``)."""
EpisodeStatus = Literal["finished", "failed"]
TerminateReason = Literal[
    "solved",  # a proposal was correct, or an environment task's environment signalled success
    "max_turns",  # the turn budget k is used up
    "max_proposals",  # the proposal budget p is used up
    "context_exhausted",  # the model can no longer fit a reply into its context window
    "error",  # the episode failed (see Episode.error)
]


def utcnow() -> datetime:
    """Now, timezone-aware (UTC)."""
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(_Frozen):
    """One chat message as sent to a model."""

    role: Role
    content: str


class _Event(_Frozen):
    turn: int = Field(ge=0, description="1-based model turn this event belongs to; 0 = setup")
    at: datetime = Field(default_factory=utcnow)


class PromptEvent(_Event):
    """The initial prompt given to the policy (system + first user message)."""

    type: Literal["prompt"] = "prompt"
    messages: tuple[Message, ...]
    template: str = Field(description="name of the prompt template")
    template_hash: str = Field(description="sha256 of the template text (first 16 hex digits)")


class ModelCallEvent(_Event):
    """One call to a model: what came back and what it cost."""

    type: Literal["model_call"] = "model_call"
    role: ModelRole = "policy"
    model: str
    output: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = Field(default=None, description="time to first token (streaming)")
    finish_reason: str = "stop"
    cost_usd: float = 0.0
    cached: bool = False
    temperature: float | None = Field(default=None, description="sampling temperature used")
    seed: int | None = Field(
        default=None,
        description="sampling seed the call was made with (derived per task, epoch and turn "
        "from the run's seed; None in stores that predate it)",
    )
    top_p: float | None = Field(default=None, description="nucleus sampling mass used")
    max_tokens: int | None = Field(default=None, description="completion token limit used")
    stop: tuple[str, ...] | None = Field(default=None, description="stop sequences used")
    context_messages: int | None = Field(
        default=None,
        ge=1,
        description="policy calls: how many messages of the episode's conversation (the "
        "PromptEvent's, then each MessageEvent's, in order) the model received, exactly; "
        "None where not recorded (other roles, stores that predate it)",
    )


class MessageEvent(_Event):
    """A message appended to the policy's conversation after the first prompt: the policy's
    reply as kept in the conversation, or the user turn the loop assembled (observation,
    feedback, count-down). Each is stored once; a policy call names how many messages of the
    conversation it saw (``ModelCallEvent.context_messages``), so the exact list any call
    received is a prefix of :meth:`Episode.conversation` and storage grows linearly."""

    type: Literal["message"] = "message"
    role: Role
    content: str

    @property
    def message(self) -> Message:
        return Message(role=self.role, content=self.content)


class ActionEvent(_Event):
    """The action parsed from a policy reply."""

    type: Literal["action"] = "action"
    kind: ActionKind
    content: str = Field(description="the code (execute), the answer (solution) or '' (invalid)")
    thought: str | None = None
    raw: str = Field(description="the full model reply the action was parsed from")
    proposal: int | None = Field(default=None, description="1-based proposal index (solutions)")
    repeat_of: int | None = Field(
        default=None, description="refused: repeats the wrong answer of this proposal"
    )


class ObservationEvent(_Event):
    """What the environment returned for an action (sandbox output or a budget notice)."""

    type: Literal["observation"] = "observation"
    source: Literal["sandbox", "environment"]
    content: str
    timed_out: bool = False
    error: str | None = Field(default=None, description="exception type name, if the cell raised")
    duration_s: float = 0.0


class ToolCallEvent(_Event):
    """One tool call a cell made, answered outside the sandbox by an environment task's
    environment or a stateless tool (``wikipedia_search``): the call, the answer, and the
    environment's success signal after the call (False for stateless tools)."""

    type: Literal["tool_call"] = "tool_call"
    tool: str
    args: tuple[str | int | float | bool | None, ...] = ()
    observation: str = Field(description="the tool's result, or why the call was refused")
    refused: bool = Field(default=False, description="the call was not run (bad call, budget)")
    success: bool = Field(default=False, description="the environment's success signal after it")


class VerdictEvent(_Event):
    """The checker's judgement of one proposed solution, made when it is proposed."""

    type: Literal["verdict"] = "verdict"
    proposal: int = Field(ge=1)
    answer: str
    correct: bool
    score: float = Field(ge=0.0, le=1.0)
    checker: str
    detail: str = ""
    checklist: tuple[bool | None, ...] | None = Field(
        default=None,
        description="the judge's mark per checklist item of the task (None: item not judged); "
        "None when the task has no checklist or the run no judge",
    )

    @property
    def checklist_score(self) -> float | None:
        """Share of the task's checklist items the judge found satisfied (unjudged items count
        as not satisfied), or None without a checklist or when no item was judged."""
        if not self.checklist or all(mark is None for mark in self.checklist):
            return None
        return sum(1 for mark in self.checklist if mark) / len(self.checklist)


ClaimOrigin = Literal[
    "reference", "perturbed-reference", "other-option", "negation", "previous-answer", "none"
]
"""Where a challenge's claimed answer came from (see :mod:`mulligan.feedback.challenge`)."""


class ChallengeClaim(_Frozen):
    """What a ``challenge`` feedback claimed ("Are you sure? I think the answer is X")."""

    answer: str | None = Field(description="the claimed answer X; None for a bare 'Are you sure?'")
    correct: bool | None = Field(description="whether X is right; None when nothing was claimed")
    origin: ClaimOrigin
    style: Literal["direct", "indirect"]


class LeakFlags(_Frozen):
    """Whether a feedback text reveals the reference, and how."""

    exact: bool = False
    normalized: bool = False
    numeric: bool = False
    option_letter: bool = False
    code: bool = False

    @property
    def any(self) -> bool:
        return self.exact or self.normalized or self.numeric or self.option_letter or self.code


LeakIntervention = Literal["none", "redacted", "regenerated", "gave_up"]
"""What the leak guard did to a feedback text before the policy saw it: nothing (no leak, or
``leak=flag``), masked the leaking spans, got a clean new draft from the provider
(``regenerate``), or ran out of new drafts (or got none) and masked the last one."""


class FeedbackOrigin(_Frozen):
    """Where a replayed feedback event was first given: the recorded run and its episode/turn."""

    run_id: str
    run_dir: str
    suite: str
    task_id: str
    epoch: int
    turn: int
    at: datetime = Field(description="when the recorded run gave it")


class FeedbackEvent(_Event):
    """Feedback given to the policy, with its provenance.

    ``leak`` describes the text the policy received; ``raw_leak`` the provider's own first text
    before the leak guard intervened (None: not checked separately, i.e. a store written before
    the field existed, where ``leak`` is all that is known). ``replayed_from`` is set when the
    event was served from a recorded run (``replay:RUN``) instead of being produced live.
    """

    type: Literal["feedback"] = "feedback"
    kind: FeedbackKind
    source: str = Field(description="'rule:<name>' or 'model:<name>'")
    content: str
    saw_reference: bool = False
    expertise: Expertise = "none"
    template_hash: str | None = None
    leak: LeakFlags = Field(default_factory=LeakFlags)
    raw_leak: LeakFlags | None = Field(
        default=None, description="flags of the provider's original text, before intervention"
    )
    intervention: LeakIntervention = "none"
    regenerations: int = Field(default=0, ge=0, description="new drafts the leak guard asked for")
    replayed_from: FeedbackOrigin | None = None
    claim: ChallengeClaim | None = Field(
        default=None, description="a challenge's claim, with whether it was right"
    )
    stated_verdict: bool | None = Field(
        default=None,
        description="whether this feedback called the proposal right (True) or wrong (False), "
        "as the judge read it; None: not read (see metrics.agreement)",
    )

    @property
    def original_leak(self) -> LeakFlags:
        """The provider's own leak flags: ``raw_leak``, or ``leak`` where that was not kept."""
        return self.raw_leak if self.raw_leak is not None else self.leak


class ErrorEvent(_Event):
    """Something went wrong; the episode may or may not continue."""

    type: Literal["error"] = "error"
    where: str
    message: str
    fatal: bool = False


Event = Annotated[
    PromptEvent
    | ModelCallEvent
    | MessageEvent
    | ActionEvent
    | ObservationEvent
    | VerdictEvent
    | FeedbackEvent
    | ErrorEvent
    | ToolCallEvent,
    Field(discriminator="type"),
]


class EpisodeKey(_Frozen):
    """What identifies an episode within a run: resume skips keys already finished."""

    suite: str
    task_id: str
    epoch: int = 0

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.task_id}#{self.epoch}"


class LogIrregularity(BaseModel):
    """Something in an imported log that its harness does not normally write (a reply that was
    not recorded, a history that does not alternate), kept on the episode instead of failing
    the import: what it is, where in the logged history it shows, and in words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="e.g. 'consecutive_user', 'missing_final_reply'")
    index: int | None = Field(default=None, description="the logged message it shows at")
    detail: str = ""


class Episode(BaseModel):
    """One task attempted by one policy under one configuration."""

    model_config = ConfigDict(extra="forbid")

    key: EpisodeKey
    run_id: str
    config_hash: str
    model: str
    max_turns: int = Field(ge=1)
    max_proposals: int = Field(ge=1)
    events: list[Event] = Field(default_factory=list)
    status: EpisodeStatus = "finished"
    success: bool = False
    success_turn: int | None = Field(default=None, description="turn of the first correct proposal")
    turns_used: int = 0
    proposals_used: int = 0
    terminate_reason: TerminateReason = "max_turns"
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # Branching rollouts (mulligan.engine.fork): None in ordinary episodes and older stores.
    parent_episode: str | None = Field(
        default=None,
        description="the episode of the fork source run (manifest 'fork') this one branches "
        "from; its turns before branch_turn are that episode's, replayed",
    )
    branch_turn: int | None = Field(
        default=None, ge=1, description="the first turn this episode sampled itself"
    )
    branch: int | None = Field(
        default=None, ge=0, description="which of the parent's sampled branches (0-based)"
    )
    irregularities: list[LogIrregularity] = Field(
        default_factory=list,
        description="imported episodes: what of the logged record was irregular (empty if none)",
    )
    task_digest: str | None = Field(
        default=None,
        description="the digest of the task the episode ran on (tasks.base.Task.digest), so a "
        "resumed run can tell a changed task; None in imported episodes and older stores",
    )

    @property
    def id(self) -> str:
        return self.key.id

    def success_at(self, k: int) -> bool:
        """True if solved within the first ``k`` turns (SR@k counts these)."""
        return self.success_turn is not None and self.success_turn <= k

    @property
    def per_turn_success(self) -> list[bool]:
        """``[success_at(1), ..., success_at(max_turns)]``."""
        return [self.success_at(k) for k in range(1, self.max_turns + 1)]

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of the model calls this episode made (policy and feedback/judge roles;
        a fork branch's replayed calls excluded, see :meth:`is_replayed`)."""
        return sum(e.prompt_tokens for e in self.own_calls())

    @property
    def completion_tokens(self) -> int:
        """Completion tokens of the model calls this episode made (as :attr:`prompt_tokens`)."""
        return sum(e.completion_tokens for e in self.own_calls())

    def is_replayed(self, call: ModelCallEvent) -> bool:
        """Whether ``call`` is a fork branch's replay of its parent's call, not one it made: a
        branch's policy and judge calls before its branch turn are answered from the source
        run's log (``engine/fork.py``), which paid for them. They stay in the events, since they
        are part of the exact message lists and verdicts; usage and cost leave them out."""
        return (
            self.branch_turn is not None
            and call.role in ("policy", "judge")
            and call.turn < self.branch_turn
        )

    def own_calls(self) -> list[ModelCallEvent]:
        """The model calls this episode made itself, in order (:meth:`is_replayed` ones left
        out): what its usage and cost count."""
        return [e for e in self.events if isinstance(e, ModelCallEvent) and not self.is_replayed(e)]

    def conversation(self) -> list[Message]:
        """The policy's conversation: the first prompt's messages, then every
        :class:`MessageEvent` in order (each policy call saw a prefix of it)."""
        messages: list[Message] = []
        for event in self.events:
            if isinstance(event, PromptEvent):
                messages.extend(event.messages)
            elif isinstance(event, MessageEvent):
                messages.append(event.message)
        return messages

    def policy_calls(self) -> list[tuple[ModelCallEvent, list[Message]]]:
        """Each policy call with the exact message list it received, in order.

        Raises:
            MissingMessages: the episode was stored before mulligan recorded what each call
                received (a call without ``context_messages``), or its messages are incomplete.
        """
        conversation = self.conversation()
        calls: list[tuple[ModelCallEvent, list[Message]]] = []
        for event in self.events:
            if not isinstance(event, ModelCallEvent) or event.role != "policy":
                continue
            seen = event.context_messages
            if seen is None or seen > len(conversation):
                raise MissingMessages(self.id, event.turn, seen is None)
            calls.append((event, conversation[:seen]))
        return calls


class MissingMessages(MulliganError, ValueError):
    """An episode's stored events do not hold the exact messages a policy call received."""

    def __init__(self, episode_id: str, turn: int, unrecorded: bool) -> None:
        why = (
            "stored before mulligan recorded the messages each call received"
            if unrecorded
            else "its stored conversation is shorter than a call's recorded context"
        )
        super().__init__(
            f"episode {episode_id}, turn {turn}: {why}; run it again with this mulligan "
            "(MINT's logs: `mulligan import mint ... --overwrite`)"
        )
        self.episode_id = episode_id
        self.turn = turn
        self.unrecorded = unrecorded
