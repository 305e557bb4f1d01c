"""Importing MINT's logged runs (``results.jsonl`` trees) into mulligan run stores.

MINT writes one ``results.jsonl`` per (policy model, feedback configuration, turn budget, task)::

    <model>/F=<feedback model|None>/[PHF=<GT|no_GT>-<textual|binary>/]max<k>_p<p>+tool+cd/
        <task type>/<task>/results.jsonl

one JSON object per task: ``{"state": {"history", "success", "terminate_reason",
"token_counter", ...}, "task": {"task_id", "reference", ...}}``. ``import_mint`` turns every
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
  from a conservative check of the reference against the text;
- ``ErrorEvent`` when MINT stopped on an API error (context window full: ``context_exhausted``).

MINT logs tokens per episode, not per call (``state.token_counter``); the episode totals are put
on the first model call of each role (policy, feedback) and later calls carry 0, so per-episode
and per-run sums are exact and per-turn token counts are not claimed. MINT logs no latency or
price: those stay 0.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mulligan import __version__
from mulligan.actions import parse_action
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
    Message,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    TerminateReason,
    VerdictEvent,
)
from mulligan.store.sqlite import DB_NAME, RunStore

RESULTS_FILE = "results.jsonl"
LAYOUT = (
    "<model>/F=<feedback model>/[PHF=<GT|no_GT>-<textual|binary>/]max<k>_p<p>+tool+cd/"
    "<task type>/<task>/results.jsonl"
)
TOKEN_ATTRIBUTION = (
    "MINT logs token totals per episode; they are attributed to the first model call of each "
    "role (policy, feedback) and later calls carry 0"
)

_EXP_SETTING = re.compile(r"^max(?P<k>\d+)_p(?P<p>\d+)(?P<rest>.*)$")
_PHF = re.compile(r"^PHF=(?P<gt>GT|no_GT)-(?P<form>textual|binary)$")
_COUNTDOWN = re.compile(
    r"\n?You have \d+ steps left and \d+ chances to propose solution left\.[^\n]*"
    r"(\nYou should take the last step to propose a solution\.)?\s*$"
)
_EXPERT = "\nExpert feedback:\n"
_WRONG = "Your answer is wrong."
_INVALID = "I don't understand your input"
_TERMINATE: dict[str, TerminateReason] = {
    "task_success": "solved",
    "max_steps": "max_turns",
    "max_propose_steps": "max_proposals",
}
# Suites whose reference is test code or an action trace: a substring check says nothing there.
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


class _MintMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


class _MintState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    history: list[_MintMessage] = Field(min_length=1)
    success: bool
    terminate_reason: str | None = None
    token_counter: dict[str, int] = Field(default_factory=dict)
    agent_action_count: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class _MintTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: int | str
    task_name: str | None = None
    reference: Any = None
    prompt: str | None = None


class MintResultLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: _MintState
    task: _MintTask


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


def _read_lines(path: Path) -> Iterator[tuple[int, MintResultLine]]:
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise MintImportError(f"{path}, line {number}: not valid JSON ({exc})") from None
            try:
                yield number, MintResultLine.model_validate(data)
            except ValidationError as exc:
                problems = "; ".join(
                    f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
                    for err in exc.errors()[:3]
                )
                raise MintImportError(
                    f"{path}, line {number}: not a MINT result ({problems}); "
                    "expected {'state': {'history', 'success', ...}, 'task': {'task_id', ...}}"
                ) from None


def _hash16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numbers(text: str) -> set[float]:
    out = set()
    for token in _NUMBER.findall(text):
        try:
            out.add(float(token.replace(",", "")))
        except ValueError:
            continue
    return out


def _normal(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def leak_flags(feedback: str, reference: str, prompt: str, suite: str) -> LeakFlags:
    """Whether ``feedback`` states the reference answer (conservative, for imported feedback).

    A reference counts as leaked only if it appears in the feedback and not already in the task
    prompt (a number the task itself gives is no leak): ``exact`` = verbatim, ``normalized`` =
    equal after lower-casing and dropping punctuation, ``numeric`` = a number in the feedback
    equal to a numeric reference. Code and ALFWorld references (tests, action traces) are not
    checked.
    """
    reference = reference.strip()
    if suite in _NO_LEAK_CHECK or not reference:
        return LeakFlags()
    exact = reference in feedback and reference not in prompt
    norm_ref = _normal(reference)
    padded = f" {_normal(feedback)} "
    normalized = bool(norm_ref) and f" {norm_ref} " in padded and norm_ref not in _normal(prompt)
    numeric = False
    try:
        value = float(reference.replace(",", ""))
    except ValueError:
        value = None
    if value is not None:
        hits = {v for v in _numbers(feedback) if abs(v - value) <= 1e-6 * max(1.0, abs(value))}
        numeric = bool(hits) and not any(
            abs(v - value) <= 1e-6 * max(1.0, abs(value)) for v in _numbers(prompt)
        )
    # A one-letter reference (a multiple-choice option) is too common a token to call "exact".
    if len(norm_ref) <= 1:
        exact = normalized = False
    return LeakFlags(exact=exact, normalized=normalized, numeric=numeric)


def _split_user(content: str) -> tuple[str, str | None]:
    """``(observation, expert feedback or None)`` of a MINT user turn, count-down removed."""
    body = content.removeprefix("Observation:\n")
    feedback = None
    if _EXPERT in body:
        body, feedback = body.split(_EXPERT, 1)
        feedback = feedback.strip()
    return _COUNTDOWN.sub("", body).strip(), feedback


def _mint_kind(observation: str) -> ActionKind:
    """What MINT did with the action before this observation."""
    if observation.startswith(_WRONG):
        return "solution"
    if observation.startswith(_INVALID):
        return "invalid"
    return "execute"


def mint_line_to_episode(
    line: MintResultLine,
    *,
    config: MintConfig,
    suite: str,
    at: datetime | None = None,
    where: str = "MINT result",
) -> Episode:
    """One MINT result line as an ``Episode`` (see the module docstring for the mapping).

    Args:
        line: the parsed line (``MintResultLine.model_validate(json.loads(text))``).
        config: the configuration the line's file belongs to.
        suite: the task folder name (``gsm8k``, ``alfworld``, ...).
        at: the timestamp given to the episode and its events (MINT logs none); the importer
            uses the file's modification time, so re-imports are identical. Default: now.
        where: how errors name the line (``<file>, line <n>``).
    """
    at = at or datetime.now(UTC)
    state, task = line.state, line.task
    history = state.history
    for index, message in enumerate(history):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.role != expected:
            raise MintImportError(
                f"{where}: field 'state.history.{index}.role' is {message.role!r}, expected "
                f"{expected!r} (MINT alternates user and assistant, starting with the user)"
            )
    reference = "" if task.reference is None else str(task.reference)
    first_prompt = history[0].content
    events: list[Event] = [
        PromptEvent(
            turn=0,
            at=at,
            messages=(Message(role="user", content=first_prompt),),
            template="mint:original",
            template_hash=_hash16(first_prompt),
        )
    ]
    tokens = state.token_counter
    policy_tokens = (tokens.get("prompt_tokens", 0), tokens.get("completion_tokens", 0))
    feedback_tokens = (
        tokens.get("feedback_prompt_tokens", 0),
        tokens.get("feedback_completion_tokens", 0),
    )
    replies = history[1::2]
    proposals = 0
    feedback_calls = 0
    for turn, reply in enumerate(replies, start=1):
        index = 2 * turn - 1
        following = history[index + 1].content if index + 1 < len(history) else None
        observation, expert = _split_user(following) if following is not None else ("", None)
        parsed = parse_action(reply.content)
        last = following is None
        if not last:
            kind = _mint_kind(observation)
        elif state.success and suite != "alfworld" and parsed.kind != "solution":
            kind = "solution"  # only a correct proposal ends a non-ALFWorld MINT task solved
        else:
            kind = parsed.kind
        events.append(
            ModelCallEvent(
                turn=turn,
                at=at,
                role="policy",
                model=config.model,
                output=reply.content,
                prompt_tokens=policy_tokens[0] if turn == 1 else 0,
                completion_tokens=policy_tokens[1] if turn == 1 else 0,
            )
        )
        content = "" if kind == "invalid" else parsed.content
        if kind == "solution":
            proposals += 1
        events.append(
            ActionEvent(
                turn=turn,
                at=at,
                kind=kind,
                content=content,
                thought=parsed.thought,
                raw=reply.content,
                proposal=proposals if kind == "solution" else None,
            )
        )
        if kind == "solution":
            correct = last and state.success
            events.append(
                VerdictEvent(
                    turn=turn,
                    at=at,
                    proposal=proposals,
                    answer=content,
                    correct=correct,
                    score=1.0 if correct else 0.0,
                    checker=f"mint:{suite}",
                    detail="MINT's verdict, imported",
                )
            )
        if last:
            continue
        if kind == "solution":
            events.append(
                FeedbackEvent(
                    turn=turn,
                    at=at,
                    kind="binary",
                    source="rule:checker-verdict",
                    content=observation or _WRONG,
                    saw_reference=True,
                )
            )
        else:
            events.append(
                ObservationEvent(
                    turn=turn,
                    at=at,
                    source="sandbox" if kind == "execute" else "environment",
                    content=observation,
                )
            )
        if expert is not None:
            feedback_calls += 1
            feedback_model = config.feedback_model or "unknown"
            events.append(
                ModelCallEvent(
                    turn=turn,
                    at=at,
                    role="feedback",
                    model=feedback_model,
                    output=expert,
                    prompt_tokens=feedback_tokens[0] if feedback_calls == 1 else 0,
                    completion_tokens=feedback_tokens[1] if feedback_calls == 1 else 0,
                )
            )
            events.append(
                FeedbackEvent(
                    turn=turn,
                    at=at,
                    kind=config.feedback_form or "textual",
                    source=f"model:{feedback_model}",
                    content=expert,
                    saw_reference=bool(config.feedback_saw_reference),
                    expertise="expert",
                    leak=leak_flags(expert, reference, first_prompt, suite),
                )
            )
    terminate: TerminateReason
    error_message = None
    status: Literal["finished", "failed"] = "finished"
    if state.terminate_reason == "error" or state.error:
        error_message = (state.error or "error").strip().splitlines()[-1]
        if "maximum context length" in error_message or "context_length" in error_message:
            terminate = "context_exhausted"
        else:
            terminate, status = "error", "failed"
        events.append(
            ErrorEvent(
                turn=len(replies) + 1,
                at=at,
                where="policy",
                message=error_message,
                fatal=status == "failed",
            )
        )
    else:
        terminate = _TERMINATE.get(state.terminate_reason or "", "max_turns")
    if state.success:
        terminate = "solved"
    return Episode(
        key=EpisodeKey(suite=suite, task_id=str(task.task_id)),
        run_id=config.run_id,
        config_hash=config.config_hash,
        model=config.model,
        max_turns=config.k,
        max_proposals=config.p,
        events=events,
        status=status,
        success=state.success,
        success_turn=len(replies) if state.success else None,
        turns_used=len(replies),
        proposals_used=proposals,
        terminate_reason=terminate,
        error=error_message if status == "failed" else None,
        started_at=at,
        finished_at=at,
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
        The run directories written, one per configuration, sorted.

    Raises:
        MintImportError: a path off MINT's layout, a malformed line (file and line named), a
            task twice in one file, or an existing run without ``overwrite``.
    """
    outputs_dir, out_dir = Path(outputs_dir), Path(out_dir)
    if not outputs_dir.is_dir():
        raise MintImportError(f"{outputs_dir}: not a directory (pass MINT's outputs folder)")
    found = _find_results(outputs_dir)
    if not found:
        raise MintImportError(f"{outputs_dir}: no {RESULTS_FILE} found; expected {LAYOUT}")
    written = []
    for config, files in sorted(found.items(), key=lambda item: item[0].run_id):
        run_dir = out_dir / config.relative_dir
        _prepare_run_dir(run_dir, overwrite)
        try:
            written.append(_import_config(config, files, outputs_dir, run_dir))
        except Exception:
            # Leave no half-written run behind: a retry must not meet a partial import. Only the
            # database goes; anything else in the folder is not ours to delete.
            _remove_store(run_dir)
            raise
    return sorted(written)


def _import_config(
    config: MintConfig, files: list[_ResultsFile], outputs_dir: Path, run_dir: Path
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
            at = datetime.fromtimestamp(results.path.stat().st_mtime, tz=UTC)
            seen: dict[str, int] = {}
            counts: Counter[str] = Counter()
            for number, line in _read_lines(results.path):
                where = f"{results.path}, line {number}"
                task_id = str(line.task.task_id)
                if task_id in seen:
                    raise MintImportError(
                        f"{where}: field 'task.task_id': task {task_id!r} again "
                        f"(first on line {seen[task_id]})"
                    )
                seen[task_id] = number
                episode = mint_line_to_episode(
                    line, config=config, suite=results.suite, at=at, where=where
                )
                store.save_episode(episode)
                counts["episodes"] += 1
                counts["solved"] += episode.success
            manifest["files"][results.suite] = {
                "path": results.path.relative_to(outputs_dir).as_posix(),
                "task_type": results.task_type,
                "episodes": counts["episodes"],
                "solved": counts["solved"],
                "sha256": _sha256(results.path),
            }
        store.update_manifest(config.run_id, manifest)
    return run_dir
