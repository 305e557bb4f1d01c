"""MINT's logged runs: the ``results.jsonl`` line model, its reader, and MINT's fixed wording.

MINT writes one ``results.jsonl`` per suite and configuration, one JSON object per task:
``{"state": {"history", "success", "terminate_reason", "token_counter", ...}, "task":
{"task_id", "reference", "prompt", ...}}``. :class:`MintResultLine` is the one typed model of
such a line (the fields mulligan reads; the others are ignored) and :func:`read_results` the one
reader: it yields ``(line number, MintResultLine)`` and raises :class:`MintLogError` naming the
file, the line and the first fields that do not fit. The importer (``mulligan.interop.mint``),
the re-judging tool (``mulligan.interop.mint_rejudge``) and the replay backend
(``mulligan.models.replay``) all read MINT's logs through this module.

It also holds what MINT says to the policy in fixed words ("Your answer is wrong.", the
invalid-action notice, the count-down line, the ``Expert feedback:`` header, the ``Assistant:``
prefix of logged replies) and MINT's own answer extraction, so the feedback that reproduces MINT
and the readers of its logs cannot drift apart.

Why it lives in ``tasks``: the replay backend (``models``) and the binary feedback
(``feedback``) import it, and the layering lets both import only the bottom layer (tasks,
events). MINT's task data records already live here (``tasks/records.py``, ``tasks/mint.py``);
its logs are the other half of the same third-party format. Of mulligan it imports only
``mulligan.errors``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mulligan.errors import MulliganError

RESULTS_FILE = "results.jsonl"

# --- MINT's fixed wording ----------------------------------------------------------------------

WRONG_ANSWER = "Your answer is wrong."
"""MINT's verdict after a wrong proposal, said in every setting (no-feedback included)."""

INVALID_ACTION = "I don't understand your input"
"""How MINT's observation after an unparsable reply begins."""

EXPERT_FEEDBACK = "\nExpert feedback:\n"
"""The header MINT puts before the simulated user's feedback in a user turn."""

OBSERVATION_PREFIX = "Observation:\n"

COUNTDOWN = re.compile(
    r"\n?You have \d+ steps left and \d+ chances to propose solution left\.[^\n]*"
    r"(\nYou should take the last step to propose a solution\.)?\s*$"
)
"""MINT's budget notice at the end of each observation."""

_ASSISTANT_PREFIX = re.compile(r"^Assistant:[ \t]*\n?")
_SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL)


def strip_assistant_prefix(content: str) -> str:
    """MINT logs assistant turns as ``Assistant:\\n<reply>``; return ``<reply>``."""
    return _ASSISTANT_PREFIX.sub("", content, count=1)


def split_user_turn(content: str) -> tuple[str, str | None]:
    """``(observation, expert feedback or None)`` of a MINT user turn, count-down removed."""
    body = content.removeprefix(OBSERVATION_PREFIX)
    feedback = None
    if EXPERT_FEEDBACK in body:
        body, feedback = body.split(EXPERT_FEEDBACK, 1)
        feedback = feedback.strip()
    return COUNTDOWN.sub("", body).strip(), feedback


def mint_solution_text(message: str) -> str | None:
    """The answer MINT extracted from a reply, or None when MINT found none (invalid action).

    MINT joined the stripped contents of all closed ``<solution>...</solution>`` tags with
    newlines and judged that text.
    """
    parts = _SOLUTION.findall("\n" + message + "\n")
    answer = "\n".join(part.strip() for part in parts)
    return answer or None


# --- the line model ----------------------------------------------------------------------------


class MintMessage(BaseModel):
    """One message of ``state.history``."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


class MintState(BaseModel):
    """``state``: the conversation and MINT's outcome and counters."""

    model_config = ConfigDict(extra="ignore")

    # MINT's leaderboard reads ``len(history) // 2`` and nothing of its messages, so an empty
    # or irregular history is a line MINT counted: the importer records what is odd about it.
    history: list[MintMessage] = Field(default_factory=list)
    success: bool
    terminate_reason: str | None = None
    token_counter: dict[str, int] = Field(default_factory=dict)
    agent_action_count: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class MintTask(BaseModel):
    """``task``: which task the line is, and what MINT knew about it."""

    model_config = ConfigDict(extra="ignore")

    task_id: int | str
    task_name: str | None = None
    reference: Any = None
    prompt: str | None = None


class MintResultLine(BaseModel):
    """One line of MINT's ``results.jsonl``: one task's logged episode."""

    model_config = ConfigDict(extra="ignore")

    state: MintState
    task: MintTask


# --- the reader --------------------------------------------------------------------------------


class MintLogError(ValueError, MulliganError):
    """A line of a ``results.jsonl`` that is not a MINT result; names the file and line.

    ``path``, ``line`` and ``reason`` let a caller word the error its own way; ``not_json`` says
    the line is not JSON at all (a truncated line: MINT's own loader skipped those with a
    message, while a JSON line of the wrong shape stopped its leaderboard computation).
    """

    def __init__(self, path: Path, line: int, reason: str, *, not_json: bool = False) -> None:
        super().__init__(f"{path}, line {line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason
        self.not_json = not_json


_EXPECTED = "expected {'state': {'history', 'success', ...}, 'task': {'task_id', ...}}"


def parse_result_line(text: str, path: Path, line: int) -> MintResultLine:
    """One line's text as a :class:`MintResultLine`.

    Raises:
        MintLogError: the text is not JSON, or not shaped like a MINT result.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MintLogError(path, line, f"not valid JSON ({exc})", not_json=True) from None
    try:
        return MintResultLine.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise MintLogError(path, line, f"not a MINT result ({problems}); {_EXPECTED}") from None


def read_results(path: Path) -> Iterator[tuple[int, MintResultLine]]:
    """``(line number, line)`` for every non-blank line of a ``results.jsonl``.

    Raises:
        MintLogError: at the first line that is not a MINT result.
    """
    for number, line in read_results_as_mint(path):
        if isinstance(line, MintLogError):
            raise line
        yield number, line


def read_results_as_mint(path: Path) -> Iterator[tuple[int, MintResultLine | MintLogError]]:
    """Every non-blank line as MINT's leaderboard computation read it: a line that is not JSON
    (truncated) comes back as its :class:`MintLogError` (``not_json``) for the caller to skip
    and record, as MINT's loader skipped it; any other malformed line raises.

    Raises:
        MintLogError: a JSON line that is not shaped like a MINT result.
    """
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, parse_result_line(text, path, number)
            except MintLogError as exc:
                if not exc.not_json:
                    raise
                yield number, exc
