"""Importing MINT's logged runs (``results.jsonl`` trees) into mulligan run stores.

MINT writes one ``results.jsonl`` per (policy model, feedback configuration, turn budget, task)::

    <model>/F=<feedback model|None>/[PHF=<GT|no_GT>-<textual|binary>/]max<k>_p<p>+tool+cd/
        <task type>/<task>/results.jsonl

one JSON object per task, read with ``mulligan.tasks.mint_log`` (the one reader of MINT's log
format and home of MINT's fixed wording). ``import_mint`` turns every
configuration it finds (model x feedback x k) into one run directory mirroring that path under
``out_dir``, with one finished ``Episode`` per line: MINT's own outcome (``state.success``) is kept
as stored; the transcript is rebuilt from ``state.history`` as typed events, turn t being the
t-th assistant message:

- ``PromptEvent`` (turn 0): MINT's first user message (instruction, in-context example, task);
- ``ModelCallEvent`` (policy) for each assistant message, and ``ActionEvent`` parsed with
  ``mulligan.actions.parse_action``; the action's kind is what MINT did with it, read off the
  next observation ("Your answer is wrong." = a proposal, "I don't understand your input" =
  invalid, anything else = executed code), because MINT's parser and ours disagree on a few
  replies with an unclosed tag (9 of 12,000 in MINT's gpt-3.5 logs);
- ``VerdictEvent`` for each proposal: wrong unless it is the final one of a solved episode;
- ``FeedbackEvent(kind="binary", source="rule:checker-verdict")`` for "Your answer is wrong."
  (MINT says it in every setting, no-feedback included: it is an oracle bit, saw_reference);
- ``ObservationEvent`` for tool output (``sandbox``) and the invalid-action notice
  (``environment``); MINT's count-down line is dropped (it is a budget notice, not content);
- for ``Expert feedback:``, a ``ModelCallEvent(role="feedback")`` and a ``FeedbackEvent`` of
  kind ``textual`` or ``binary`` (from ``PHF=..-textual|binary``), source
  ``model:<feedback model>``, ``saw_reference`` from ``PHF=GT`` vs ``no_GT``, with leak flags
  from ``mulligan.feedback.leak`` (the detector live runs use; see :func:`leak_task`);
- ``ErrorEvent`` when MINT stopped on an API error (context window full: ``context_exhausted``).

Other models' logs do not always alternate user and assistant. Every line MINT's own leaderboard
computation counted is imported: a user turn after a user turn is a turn whose reply was not
recorded, an assistant turn after an assistant turn got no answer, a history that ends on a user
turn lost its final reply, an empty history is an episode of no turns; each is recorded in
``Episode.irregularities`` and MINT's outcome is kept. What MINT's loader skipped is skipped
and listed in the manifest (``files.<suite>.skipped_lines``): lines that are not JSON (a
truncated line) and a task logged again (the first is kept).

MINT logs tokens per episode, not per call (``state.token_counter``); the episode totals are put
on the first model call of each role (policy, feedback) and later calls carry 0, so per-episode
and per-run sums are exact and per-turn token counts are not claimed. MINT logs no latency or
price: those stay 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mulligan import __version__
from mulligan.actions import ParsedAction, parse_action
from mulligan.errors import MulliganError
from mulligan.events import (
    ActionEvent,
    ActionKind,
    Episode,
    EpisodeKey,
    ErrorEvent,
    Event,
    FeedbackEvent,
    FeedbackKind,
    LeakFlags,
    LogIrregularity,
    Message,
    MessageEvent,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    TerminateReason,
    VerdictEvent,
)
from mulligan.feedback.leak import detect_leak
from mulligan.store.sqlite import DB_NAME, RunStore
from mulligan.tasks.base import Task
from mulligan.tasks.mint import parse_mint_options
from mulligan.tasks.mint_log import (
    INVALID_ACTION,
    RESULTS_FILE,
    WRONG_ANSWER,
    MintLogError,
    MintMessage,
    MintResultLine,
    MintState,
    read_results_as_mint,
    split_user_turn,
)
from mulligan.tasks.wikipedia import (
    WIKIPEDIA_INDEX_FILE,
    LoggedSearch,
    index_from_logs,
    searches_in_history,
    write_index,
)

LAYOUT = (
    "<model>/F=<feedback model>/[PHF=<GT|no_GT>-<textual|binary>/]max<k>_p<p>+tool+cd/"
    "<task type>/<task>/results.jsonl"
)
TOKEN_ATTRIBUTION = (
    "MINT logs token totals per episode; they are attributed to the first model call of each "
    "role (policy, feedback) and later calls carry 0"
)

log = logging.getLogger(__name__)

_EXP_SETTING = re.compile(r"^max(?P<k>\d+)_p(?P<p>\d+)(?P<rest>.*)$")
_PHF = re.compile(r"^PHF=(?P<gt>GT|no_GT)-(?P<form>textual|binary)$")
_TERMINATE: dict[str, TerminateReason] = {
    "task_success": "solved",
    "max_steps": "max_turns",
    "max_propose_steps": "max_proposals",
}
# Suites whose reference is test code or an action trace: a text check says nothing there.
_NO_LEAK_CHECK = frozenset({"humaneval", "mbpp", "alfworld"})


class MintImportError(MulliganError, ValueError):
    """A MINT output tree or line that cannot be imported; the message names file and line."""


class MintConfig(BaseModel):
    """One MINT configuration: policy model x feedback x turn budget (one run directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    feedback_model: str | None = Field(description="None for MINT's F=None")
    feedback_setting: str | None = Field(
        default=None, description="e.g. 'no_GT-textual' (PHF=...); None without feedback model"
    )
    exp_setting: str = Field(description="e.g. 'max5_p2+tool+cd'")
    k: int = Field(ge=1, description="turn budget")
    p: int = Field(ge=1, description="proposal budget")

    @property
    def relative_dir(self) -> Path:
        """The configuration's path, as in MINT's tree and in the import root."""
        parts = [self.model, f"F={self.feedback_model or 'None'}"]
        if self.feedback_setting is not None:
            parts.append(f"PHF={self.feedback_setting}")
        parts.append(self.exp_setting)
        return Path(*parts)

    @property
    def run_id(self) -> str:
        return "mint:" + self.relative_dir.as_posix()

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def feedback_saw_reference(self) -> bool | None:
        """Whether the feedback model was shown the ground truth (PHF=GT), if there is one."""
        match = _PHF.match(f"PHF={self.feedback_setting}") if self.feedback_setting else None
        return None if match is None else match["gt"] == "GT"

    @property
    def feedback_form(self) -> FeedbackKind | None:
        match = _PHF.match(f"PHF={self.feedback_setting}") if self.feedback_setting else None
        return None if match is None else ("textual" if match["form"] == "textual" else "binary")

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> MintConfig | None:
        """The configuration recorded by ``import_mint``, or None for runs it did not write."""
        if manifest.get("imported_from") != "mint":
            return None
        fields = {name: manifest.get(name) for name in cls.model_fields}
        return cls.model_validate(fields)


@dataclass(frozen=True, slots=True)
class _ResultsFile:
    path: Path
    config: MintConfig
    task_type: str
    suite: str


def parse_results_path(path: Path, outputs_dir: Path) -> tuple[MintConfig, str, str]:
    """``(config, task type, suite)`` of a ``results.jsonl`` under ``outputs_dir``.

    ``outputs_dir`` may be MINT's ``outputs`` folder (holding model folders) or one model folder.
    """
    parts = path.relative_to(outputs_dir).parts
    f_index = next((i for i, part in enumerate(parts) if part.startswith("F=")), None)
    if f_index is None or f_index > 1:
        raise MintImportError(f"{path}: no 'F=<feedback model>' folder where expected; {LAYOUT}")
    model = parts[0] if f_index == 1 else Path(outputs_dir).resolve().name
    rest = list(parts[f_index + 1 :])
    feedback_model: str | None = parts[f_index].removeprefix("F=")
    if feedback_model == "None":
        feedback_model = None
    setting = None
    if rest and rest[0].startswith("PHF="):
        setting = rest.pop(0).removeprefix("PHF=")
    if len(rest) != 4 or rest[-1] != RESULTS_FILE:
        raise MintImportError(f"{path}: unexpected layout; expected {LAYOUT}")
    exp_setting, task_type, suite = rest[0], rest[1], rest[2]
    match = _EXP_SETTING.match(exp_setting)
    if match is None:
        raise MintImportError(
            f"{path}: folder {exp_setting!r} is not MINT's 'max<k>_p<p>...'; expected {LAYOUT}"
        )
    if (feedback_model is None) != (setting is None):
        raise MintImportError(
            f"{path}: a feedback model needs a 'PHF=<GT|no_GT>-<textual|binary>' folder "
            "and F=None has none"
        )
    if setting is not None and _PHF.match(f"PHF={setting}") is None:
        raise MintImportError(f"{path}: unknown feedback setting 'PHF={setting}'; {LAYOUT}")
    config = MintConfig(
        model=model,
        feedback_model=feedback_model,
        feedback_setting=setting,
        exp_setting=exp_setting,
        k=int(match["k"]),
        p=int(match["p"]),
    )
    return config, task_type, suite


def _find_results(outputs_dir: Path) -> dict[MintConfig, list[_ResultsFile]]:
    found: dict[MintConfig, list[_ResultsFile]] = {}
    for path in sorted(outputs_dir.rglob(RESULTS_FILE)):
        config, task_type, suite = parse_results_path(path, outputs_dir)
        found.setdefault(config, []).append(_ResultsFile(path, config, task_type, suite))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_lines(path: Path) -> Iterator[tuple[int, MintResultLine | MintLogError]]:
    try:
        yield from read_results_as_mint(path)
    except MintLogError as exc:
        raise MintImportError(str(exc)) from None


def _hash16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def leak_task(reference: str, prompt: str, suite: str) -> Task | None:
    """The task as the leak detector needs it, or None where there is nothing to check.

    ``prompt`` is all the policy was shown before the feedback (MINT's first user message), so
    a reference the prompt already gives counts as weak (see ``mulligan.feedback.leak``).
    Code and ALFWorld references (tests, action traces) are not checked.
    """
    reference = reference.strip()
    if suite in _NO_LEAK_CHECK or not reference:
        return None
    # MINT's mmlu checker is registered as "mmlu"; the options let option texts be found too.
    metadata = {"options": parse_mint_options(prompt)} if suite == "mmlu" else {}
    return Task(
        id="mint-log",
        suite=suite,
        category="reasoning",
        prompt=prompt,
        reference=reference,
        checker=suite,
        gold_solution=reference,
        metadata=metadata,
    )


def leak_flags(feedback: str, reference: str, prompt: str, suite: str) -> LeakFlags:
    """Whether imported ``feedback`` states the reference: ``mulligan.feedback.leak``'s check.

    See :func:`leak_task` for how a logged task is checked.
    """
    task = leak_task(reference, prompt, suite)
    return LeakFlags() if task is None else detect_leak(feedback, task)


def _mint_kind(observation: str) -> ActionKind:
    """What MINT did with the action before this observation."""
    if observation.startswith(WRONG_ANSWER):
        return "solution"
    if observation.startswith(INVALID_ACTION):
        return "invalid"
    return "execute"


@dataclass
class _Transcript:
    """One MINT episode's events as they are rebuilt, and the counts that span its turns."""

    config: MintConfig
    suite: str
    at: datetime
    success: bool
    leak_task: Task | None
    token_counter: dict[str, int]
    events: list[Event]
    last_index: int = -1
    irregular: list[LogIrregularity] = field(default_factory=list)
    proposals: int = 0
    feedback_calls: int = 0

    def note(self, kind: str, index: int | None, detail: str) -> None:
        self.irregular.append(LogIrregularity(kind=kind, index=index, detail=detail))

    def tokens(self, role: Literal["policy", "feedback"], first: bool) -> tuple[int, int]:
        """MINT's episode totals for ``role`` on its first call, 0 on later ones."""
        if not first:
            return 0, 0
        prefix = "" if role == "policy" else "feedback_"
        counter = self.token_counter
        return counter.get(f"{prefix}prompt_tokens", 0), counter.get(
            f"{prefix}completion_tokens", 0
        )


def _prompt_event(first: MintMessage | None, at: datetime) -> PromptEvent:
    first_prompt = "" if first is None else first.content
    return PromptEvent(
        turn=0,
        at=at,
        messages=() if first is None else (Message(role=first.role, content=first_prompt),),
        template="mint:original",
        template_hash=_hash16(first_prompt),
    )


def _action_kind(
    t: _Transcript, parsed: ParsedAction, observation: str | None, last: bool
) -> ActionKind:
    """What MINT did with a reply: read off the next observation, or the outcome if last."""
    if observation is not None:
        return _mint_kind(observation)
    if last and t.success and t.suite != "alfworld" and parsed.kind != "solution":
        return "solution"  # only a correct proposal ends a non-ALFWorld MINT task solved
    return parsed.kind


def _add_reply(
    t: _Transcript, turn: int, index: int, reply: str, observation: str | None
) -> ActionKind:
    """The policy call of ``history[index]``, its action and (for a proposal) MINT's verdict;
    returns the kind. ``observation`` is None when no user turn follows the reply."""
    parsed = parse_action(reply)
    last = index == t.last_index
    kind = _action_kind(t, parsed, observation, last)
    prompt_tokens, completion_tokens = t.tokens("policy", first=turn == 1)
    t.events.append(
        ModelCallEvent(
            turn=turn,
            at=t.at,
            role="policy",
            model=t.config.model,
            output=reply,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            context_messages=index,  # history[:index]: what MINT sent
        )
    )
    content = "" if kind == "invalid" else parsed.content
    if kind == "solution":
        t.proposals += 1
    t.events.append(
        ActionEvent(
            turn=turn,
            at=t.at,
            kind=kind,
            content=content,
            thought=parsed.thought,
            raw=reply,
            proposal=t.proposals if kind == "solution" else None,
        )
    )
    if kind == "solution":
        # A proposal is right only if it ends a solved episode (nothing follows it).
        correct = last and t.success
        t.events.append(
            VerdictEvent(
                turn=turn,
                at=t.at,
                proposal=t.proposals,
                answer=content,
                correct=correct,
                score=1.0 if correct else 0.0,
                checker=f"mint:{t.suite}",
                detail="MINT's verdict, imported",
            )
        )
    return kind


def _add_response(t: _Transcript, turn: int, kind: ActionKind, observation: str) -> None:
    """MINT's answer to the action: its verdict as binary feedback, or an observation."""
    if kind == "solution":
        t.events.append(
            FeedbackEvent(
                turn=turn,
                at=t.at,
                kind="binary",
                source="rule:checker-verdict",
                content=observation or WRONG_ANSWER,
                saw_reference=True,
            )
        )
        return
    t.events.append(
        ObservationEvent(
            turn=turn,
            at=t.at,
            source="sandbox" if kind == "execute" else "environment",
            content=observation,
        )
    )


def _add_expert(t: _Transcript, turn: int, expert: str) -> None:
    """The simulated user's ``Expert feedback:``, as a feedback model call and its feedback."""
    t.feedback_calls += 1
    feedback_model = t.config.feedback_model or "unknown"
    prompt_tokens, completion_tokens = t.tokens("feedback", first=t.feedback_calls == 1)
    t.events.append(
        ModelCallEvent(
            turn=turn,
            at=t.at,
            role="feedback",
            model=feedback_model,
            output=expert,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    )
    t.events.append(
        FeedbackEvent(
            turn=turn,
            at=t.at,
            kind=t.config.feedback_form or "textual",
            source=f"model:{feedback_model}",
            content=expert,
            saw_reference=bool(t.config.feedback_saw_reference),
            expertise="expert",
            leak=LeakFlags() if t.leak_task is None else detect_leak(expert, t.leak_task),
        )
    )


@dataclass(frozen=True)
class _Ending:
    terminate: TerminateReason
    status: Literal["finished", "failed"]
    error: ErrorEvent | None


def _ending(state: MintState, turns: int, at: datetime) -> _Ending:
    """How the episode ended; a full context window is an ending, any other API error a failure."""
    if not (state.terminate_reason == "error" or state.error):
        ended = _TERMINATE.get(state.terminate_reason or "", "max_turns")
        return _Ending("solved" if state.success else ended, "finished", None)
    message = (state.error or "error").strip().splitlines()[-1]
    full = "maximum context length" in message or "context_length" in message
    status: Literal["finished", "failed"] = "finished" if full else "failed"
    error = ErrorEvent(
        turn=turns + 1, at=at, where="policy", message=message, fatal=status == "failed"
    )
    terminate: TerminateReason = "context_exhausted" if full else "error"
    return _Ending("solved" if state.success else terminate, status, error)


def _add_turns(t: _Transcript, history: list[MintMessage], ended_by_error: bool) -> int:
    """Every turn's events; returns the number of turns.

    A regular MINT history alternates user and assistant from the user's prompt on, and turn t
    is the t-th assistant message. Other models' logs do not always: a user turn after a user
    turn means a reply that was not recorded, so it opens a turn of its own (with MINT's answer
    to it, but no call or action); an assistant turn after an assistant turn got no answer; a
    history that ends on a user turn (not an API error) lost its final reply. Each is noted on
    the episode, and every logged message is still kept verbatim, in order.
    """
    turn = 0
    for index, message in enumerate(history):
        previous = history[index - 1].role if index else None
        if message.role == "assistant":
            turn += 1
            if index == 0:
                t.note("no_prompt", 0, "the history starts with a reply, not the user's prompt")
            elif previous == "assistant":
                t.note(
                    "consecutive_assistant", index, "a reply after a reply: the first got no answer"
                )
            _add_assistant(t, turn, index, history)
            continue
        if index == 0:
            continue  # the prompt
        if previous != "assistant":
            turn += 1  # the reply this user turn answers was not recorded
            t.note(
                "consecutive_user",
                index,
                f"a user turn after a user turn: turn {turn}'s reply was not recorded",
            )
            observation, expert = split_user_turn(message.content)
            _add_response(t, turn, _mint_kind(observation), observation)
            if expert is not None:
                _add_expert(t, turn, expert)
        _add_message(t, turn, message)
    if len(history) > 1 and history[-1].role != "assistant" and not ended_by_error:
        turn += 1
        t.note(
            "missing_final_reply",
            len(history),
            f"the history ends on a user turn: turn {turn}'s reply was not recorded",
        )
    return turn


def _add_assistant(t: _Transcript, turn: int, index: int, history: list[MintMessage]) -> None:
    """A reply (``history[index]``) and MINT's answer to it, when a user turn follows."""
    following = history[index + 1] if index + 1 < len(history) else None
    if following is None or following.role == "assistant":
        _add_reply(t, turn, index, history[index].content, None)
        _add_message(t, turn, history[index])
        return
    observation, expert = split_user_turn(following.content)
    kind = _add_reply(t, turn, index, history[index].content, observation)
    _add_message(t, turn, history[index])
    _add_response(t, turn, kind, observation)
    if expert is not None:
        _add_expert(t, turn, expert)


def _add_message(t: _Transcript, turn: int, message: MintMessage) -> None:
    """One message of MINT's history, verbatim: the history is the message list MINT sent the
    policy, so each call's exact input is a prefix of the episode's conversation."""
    t.events.append(MessageEvent(turn=turn, at=t.at, role=message.role, content=message.content))


def mint_line_to_episode(
    line: MintResultLine,
    *,
    config: MintConfig,
    suite: str,
    at: datetime | None = None,
) -> Episode:
    """One MINT result line as an ``Episode`` (see the module docstring for the mapping).

    Args:
        line: the parsed line (``mulligan.tasks.mint_log.parse_result_line``).
        config: the configuration the line's file belongs to.
        suite: the task folder name (``gsm8k``, ``alfworld``, ...).
        at: the timestamp given to the episode and its events (MINT logs none); the importer
            uses the file's modification time, so re-imports are identical. Default: now.

    A history that does not alternate, is empty or lost its final reply is imported as it is,
    with ``Episode.irregularities`` saying what was irregular (see ``_add_turns``).
    """
    at = at or datetime.now(UTC)
    state, task = line.state, line.task
    history = state.history
    first = next((m for m in history[:1] if m.role != "assistant"), None)
    reference = "" if task.reference is None else str(task.reference)
    t = _Transcript(
        config=config,
        suite=suite,
        at=at,
        success=state.success,
        leak_task=leak_task(reference, "" if first is None else first.content, suite),
        token_counter=state.token_counter,
        events=[_prompt_event(first, at)],
        last_index=len(history) - 1,
    )
    if not history:
        t.note("empty_history", None, "no message was logged")
    ended_by_error = state.terminate_reason == "error" or bool(state.error)
    turns = _add_turns(t, history, ended_by_error)
    ending = _ending(state, turns, at)
    if ending.error is not None:
        t.events.append(ending.error)
    success_turn = None
    if state.success:
        # SR@k of the imported run at its budget is MINT's outcome, whatever the log's shape.
        success_turn = max(1, min(turns, config.k))
        if turns > config.k:
            t.note("turns_over_budget", None, f"{turns} turns logged for a budget of {config.k}")
    return Episode(
        key=EpisodeKey(suite=suite, task_id=str(task.task_id)),
        run_id=config.run_id,
        config_hash=config.config_hash,
        model=config.model,
        max_turns=config.k,
        max_proposals=config.p,
        events=t.events,
        status=ending.status,
        success=state.success,
        success_turn=success_turn,
        turns_used=turns,
        proposals_used=t.proposals,
        terminate_reason=ending.terminate,
        error=ending.error.message if ending.error and ending.status == "failed" else None,
        started_at=at,
        finished_at=at,
        irregularities=t.irregular,
    )


def _remove_store(run_dir: Path) -> None:
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (run_dir / name).unlink(missing_ok=True)


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if not (run_dir / DB_NAME).exists():
        return
    if not overwrite:
        raise MintImportError(
            f"{run_dir}: already holds a run; import into another --out or pass overwrite=True"
        )
    _remove_store(run_dir)


def import_mint(outputs_dir: Path, out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Import every MINT configuration under ``outputs_dir`` into run directories in ``out_dir``.

    Args:
        outputs_dir: MINT's ``outputs`` folder (holding ``<model>/F=...`` trees) or one model's.
        out_dir: where run directories go: ``out_dir/<model>/F=.../[PHF=.../]max<k>_p<p>...``.
        overwrite: replace run directories that already hold a run (default: refuse).

    Returns:
        The run directories written, one per configuration, sorted. The ``wikipedia_search``
        calls the logs answered are added to ``out_dir/wikipedia_search.json``, the index of
        the offline stand-in (``mulligan.tasks.wikipedia``).

    Raises:
        MintImportError: a path off MINT's layout, a JSON line not shaped like a MINT result
            (file and line named), or an existing run without ``overwrite``. Lines that are
            not JSON and tasks logged twice are skipped and listed in the manifest, as MINT's
            leaderboard computation skipped them.
    """
    outputs_dir, out_dir = Path(outputs_dir), Path(out_dir)
    if not outputs_dir.is_dir():
        raise MintImportError(f"{outputs_dir}: not a directory (pass MINT's outputs folder)")
    found = _find_results(outputs_dir)
    if not found:
        raise MintImportError(f"{outputs_dir}: no {RESULTS_FILE} found; expected {LAYOUT}")
    written = []
    searches: list[LoggedSearch] = []
    for config, files in sorted(found.items(), key=lambda item: item[0].run_id):
        run_dir = out_dir / config.relative_dir
        _prepare_run_dir(run_dir, overwrite)
        try:
            written.append(_import_config(config, files, outputs_dir, run_dir, searches))
        except Exception:
            # Leave no half-written run behind: a retry must not meet a partial import. Only the
            # database goes; anything else in the folder is not ours to delete.
            _remove_store(run_dir)
            raise
    # The searches these logs answered join the offline wikipedia_search index kept beside the
    # imported runs (``mulligan run --wikipedia offline --wikipedia-index <out>/...``).
    write_index(index_from_logs(searches), out_dir / WIKIPEDIA_INDEX_FILE)
    return sorted(written)


def _import_file(
    store: RunStore,
    config: MintConfig,
    results: _ResultsFile,
    outputs_dir: Path,
    searches: list[LoggedSearch],
) -> dict[str, Any]:
    """One ``results.jsonl`` into ``store``; returns its manifest entry.

    What MINT's leaderboard computation skipped is skipped and listed (``skipped_lines``): a
    line that is not JSON (MINT's loader printed it and went on) and a task logged again (MINT
    keeps the first). Lines with irregular histories are imported (``irregular_episodes``).
    """
    at = datetime.fromtimestamp(results.path.stat().st_mtime, tz=UTC)
    seen: dict[str, int] = {}
    counts: Counter[str] = Counter()
    skipped: list[dict[str, Any]] = []
    for number, line in _read_lines(results.path):
        if isinstance(line, MintLogError):
            log.warning("%s: skipped, as MINT's loader did", line)
            skipped.append({"line": number, "reason": line.reason})
            continue
        task_id = str(line.task.task_id)
        if task_id in seen:
            reason = f"task {task_id!r} again (first on line {seen[task_id]}); the first is kept"
            log.warning("%s, line %d: %s", results.path, number, reason)
            skipped.append({"line": number, "reason": reason})
            continue
        seen[task_id] = number
        source = results.path.relative_to(outputs_dir).as_posix()
        searches.extend(searches_in_history(line.state.history, source))
        episode = mint_line_to_episode(line, config=config, suite=results.suite, at=at)
        store.save_episode(episode)
        counts["episodes"] += 1
        counts["solved"] += episode.success
        counts["irregular"] += bool(episode.irregularities)
    return {
        "path": results.path.relative_to(outputs_dir).as_posix(),
        "task_type": results.task_type,
        "episodes": counts["episodes"],
        "solved": counts["solved"],
        "irregular_episodes": counts["irregular"],
        "skipped_lines": skipped,
        "sha256": _sha256(results.path),
    }


def _import_config(
    config: MintConfig,
    files: list[_ResultsFile],
    outputs_dir: Path,
    run_dir: Path,
    searches: list[LoggedSearch],
) -> Path:
    # results.jsonl sits three levels below the configuration folder (<type>/<task>/).
    source = files[0].path.parents[2].resolve()
    manifest: dict[str, Any] = {
        "imported_from": "mint",
        "source": str(source),
        **config.model_dump(),
        "feedback_saw_reference": config.feedback_saw_reference,
        "feedback_form": config.feedback_form,
        "token_attribution": TOKEN_ATTRIBUTION,
        "mulligan_version": __version__,
        "files": {},
    }
    with RunStore(run_dir) as store:
        store.create_run(config.run_id, config.config_hash, manifest)
        for results in files:
            manifest["files"][results.suite] = _import_file(
                store, config, results, outputs_dir, searches
            )
        store.update_manifest(config.run_id, manifest)
    return run_dir
