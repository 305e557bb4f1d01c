"""Episodes turned into the trajectory viewer's data, and that data embedded safely in HTML.

The viewer gets one JSON document (see ``viewer_data``) with, per episode, its outcome and its
turns; each turn lists what happened in order: the model call, the parsed action (thought, code or
answer, and a line diff against the previous attempt of the same kind), the observation, the
verdict, the feedback with its provenance, errors. Text is kept verbatim (it is rendered with
``textContent`` in the page, never parsed as HTML) but bounded in length.

Size matters: a MINT run of ~600 episodes holds ~9 MB of events, mostly repeated text. Three
things keep the embedded document a few MB: long prompt paragraphs shared by many episodes (the
instructions and in-context example of a template) are stored once; a model reply is stored once
(the policy call's output *is* the action's ``raw`` text, a feedback call's output *is* the
feedback text); and the raw reply is dropped when it holds nothing beyond the parsed thought and
content (tags and whitespace only), since the viewer shows those.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mulligan.events import (
    ActionEvent,
    Episode,
    ErrorEvent,
    Event,
    FeedbackEvent,
    LeakFlags,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    VerdictEvent,
)

# One text field longer than this is cut (sandbox output is capped already, but an imported or
# hostile log is not): a single pathological field must not make the report unopenable.
MAX_TEXT_CHARS = 20_000
# Longest diff shown between two attempts, in lines.
MAX_DIFF_LINES = 400
# A prompt paragraph at least this long that several prompts share is stored once.
MIN_SHARED_TEXT = 32
_PARAGRAPH = "\n\n"

_TAGS = re.compile(r"</?(thought|execute|solution)>|^\s*Assistant:", re.MULTILINE)

# Outcome of an episode as the viewer filters it.
SOLVED, UNSOLVED, FAILED = "solved", "unsolved", "failed"


def outcome(episode: Episode) -> str:
    """``failed`` (the episode errored), ``solved`` or ``unsolved``."""
    if episode.status == "failed":
        return FAILED
    return SOLVED if episode.success else UNSOLVED


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters not shown in the report]"


def line_diff(before: str, after: str) -> list[list[str]]:
    """A unified line diff (3 lines of context) as ``[[op, line], ...]``.

    ``op`` is ``"+"`` (added), ``"-"`` (removed), ``" "`` (context) or ``"@"`` (hunk header).
    Empty when the two texts are equal.
    """
    lines: list[list[str]] = []
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    for line in diff:
        if line.startswith(("---", "+++")) and not lines:
            continue  # the file header: there are no files here
        op = "@" if line.startswith("@@") else line[:1] or " "
        lines.append([op, line[1:] if op != "@" else line])
        if len(lines) >= MAX_DIFF_LINES:
            lines.append(["@", f"… diff cut at {MAX_DIFF_LINES} lines"])
            break
    return lines


def _raw_adds_nothing(raw: str, action: ActionEvent) -> bool:
    """True when ``raw`` is only the parsed thought and content plus tags and whitespace."""
    rest = raw
    for part in (action.content, action.thought or ""):
        if part:
            rest = rest.replace(part, "", 1)
    return not _TAGS.sub("", rest).strip()


class _SharedTexts:
    """Long prompt paragraphs stored once, referenced by index from every prompt that has them.

    Prompts of one template differ in a few places (the task at the end, a budget number near the
    top) and share the rest (instructions, in-context example). Splitting on blank lines and
    interning the long paragraphs that occur more than once catches that sharing whatever the
    template looks like; ``"\\n\\n".join`` of the parts gives the text back exactly.
    """

    def __init__(self, episodes: Sequence[Episode]) -> None:
        counts: dict[str, int] = defaultdict(int)
        for episode in episodes:
            prompt = _prompt(episode)
            for message in prompt.messages if prompt else ():
                for part in set(message.content.split(_PARAGRAPH)):
                    if len(part) >= MIN_SHARED_TEXT:
                        counts[part] += 1
        self.texts = [text for text, count in counts.items() if count > 1]
        self._index = {text: i for i, text in enumerate(self.texts)}

    def message(self, content: str) -> list[str | int]:
        """The message as parts to join with a blank line: shared indices or own text."""
        parts: list[str | int] = []
        for part in clip(content).split(_PARAGRAPH):
            index = self._index.get(part)
            if index is not None:
                parts.append(index)
            elif parts and isinstance(parts[-1], str):
                parts[-1] += _PARAGRAPH + part  # keep runs of own text as one string
            else:
                parts.append(part)
        return parts


def _prompt(episode: Episode) -> PromptEvent | None:
    return next((e for e in episode.events if isinstance(e, PromptEvent)), None)


def _leak_flags(flags: LeakFlags) -> list[str]:
    return [
        name
        for name in ("exact", "normalized", "numeric", "option_letter", "code")
        if getattr(flags, name, False)
    ]


# The last action of each kind so far: kind -> (turn, content). Diffs and the verdict read it.
_Previous = dict[str, tuple[int, str]]


def _turns(episode: Episode) -> list[dict[str, Any]]:
    """The episode's events after the prompt, grouped by turn, each as a small dict."""
    events = [e for e in episode.events if not isinstance(e, PromptEvent)]
    turns: dict[int, list[dict[str, Any]]] = {}
    previous: _Previous = {}
    for index, event in enumerate(events):
        items = turns.setdefault(event.turn, [])  # every turn is listed, even one with no item
        following = events[index + 1] if index + 1 < len(events) else None
        item = _item(event, following, previous)
        if item is not None:
            items.append(item)
    return [
        {"turn": turn, "items": [_compact(item) for item in items]}
        for turn, items in sorted(turns.items())
    ]


def _item(event: Event, following: Event | None, previous: _Previous) -> dict[str, Any] | None:
    """One event as the viewer's item, or None for an event the viewer does not show."""
    if isinstance(event, ModelCallEvent):
        return _call_item(event, following)
    if isinstance(event, ActionEvent):
        return _action_item(event, previous)
    if isinstance(event, ObservationEvent):
        return _observation_item(event)
    if isinstance(event, VerdictEvent):
        return _verdict_item(event, previous)
    if isinstance(event, FeedbackEvent):
        return _feedback_item(event)
    if isinstance(event, ErrorEvent):
        return _error_item(event)
    return None


def _call_item(event: ModelCallEvent, following: Event | None) -> dict[str, Any]:
    # The reply is stored once: on the action (policy) or as the feedback (feedback role).
    same_as_next = (isinstance(following, ActionEvent) and following.raw == event.output) or (
        isinstance(following, FeedbackEvent) and following.content == event.output
    )
    return {
        "t": "call",
        "role": event.role,
        "model": event.model,
        "output": None if same_as_next else clip(event.output),
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "latency_s": round(event.latency_s, 3),
        "cost_usd": event.cost_usd,
        "cached": event.cached,
        "finish": event.finish_reason,
    }


def _action_item(event: ActionEvent, previous: _Previous) -> dict[str, Any]:
    """The action with a diff against the last one of its kind, which it then becomes."""
    before = previous.get(event.kind)
    diff = None
    if before is not None and event.kind != "invalid":
        diff = {"turn": before[0], "lines": line_diff(before[1], event.content)}
    previous[event.kind] = (event.turn, event.content)
    return {
        "t": "action",
        "kind": event.kind,
        "thought": clip(event.thought) if event.thought else None,
        "content": clip(event.content),
        "proposal": event.proposal,
        "repeat_of": getattr(event, "repeat_of", None),
        "raw": None if _raw_adds_nothing(event.raw, event) else clip(event.raw),
        "diff": diff,
    }


def _observation_item(event: ObservationEvent) -> dict[str, Any]:
    return {
        "t": "observation",
        "source": event.source,
        "content": clip(event.content),
        "error": event.error,
        "timed_out": event.timed_out,
        "duration_s": round(event.duration_s, 3),
    }


def _verdict_item(event: VerdictEvent, previous: _Previous) -> dict[str, Any]:
    judged = previous.get("solution")
    # The judged answer is normally the proposal just shown: don't print it twice.
    repeated = judged is not None and judged[0] == event.turn and judged[1] == event.answer
    return {
        "t": "verdict",
        "proposal": event.proposal,
        "answer": None if repeated else clip(event.answer),
        "correct": event.correct,
        "score": event.score,
        "checker": event.checker,
        "detail": clip(event.detail),
    }


def _feedback_item(event: FeedbackEvent) -> dict[str, Any]:
    """A feedback event for the viewer, with its leak audit and, if replayed, its origin."""
    origin = event.replayed_from
    return {
        "t": "feedback",
        "kind": event.kind,
        "source": event.source,
        "content": clip(event.content),
        "saw_reference": event.saw_reference,
        "expertise": event.expertise,
        "leak": _leak_flags(event.leak),
        "raw_leak": _leak_flags(event.original_leak),
        "intervention": event.intervention,
        "regenerations": event.regenerations,
        "replayed_from": None
        if origin is None
        else f"{origin.run_id} ({origin.run_dir}) {origin.suite}/{origin.task_id}"
        f" epoch {origin.epoch} turn {origin.turn}",
        "template_hash": event.template_hash,
    }


def _error_item(event: ErrorEvent) -> dict[str, Any]:
    return {
        "t": "error",
        "where": event.where,
        "message": clip(event.message),
        "fatal": event.fatal,
    }


def _compact(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` without None / False / 0 / "" values (the viewer reads a missing key as those).

    Roughly a sixth of a large report is keys like ``"cached":false`` otherwise.
    """
    return {
        k: v for k, v in item.items() if v is not None and v is not False and v != 0 and v != ""
    }


def episode_cost(episode: Episode) -> tuple[int, float, float]:
    """(tokens, model seconds, USD) over the model calls the episode made (a fork branch's
    replayed prefix calls were the source run's: ``Episode.is_replayed``)."""
    calls = episode.own_calls()
    return (
        sum(c.prompt_tokens + c.completion_tokens for c in calls),
        sum(c.latency_s for c in calls),
        sum(c.cost_usd for c in calls),
    )


def viewer_data(runs: Sequence[tuple[str, Sequence[Episode]]]) -> dict[str, Any]:
    """The trajectory viewer's document for ``[(run label, episodes), ...]``.

    Returns ``{"runs": [label, ...], "shared": [paragraph, ...], "episodes": [...]}``; each
    episode has ``run`` (index into ``runs``), ``id``, ``suite``, ``task``, ``outcome``,
    ``success_turn``, ``turns_used``, ``max_turns``, ``reason``, ``model``, ``error``,
    ``tokens``, ``seconds``, ``usd``, ``prompt`` (``[[role, parts], ...]``: the message is its
    parts joined by a blank line, a part being its text or an index into ``shared``) and
    ``turns``.
    """
    shared = _SharedTexts([e for _, episodes in runs for e in episodes])
    out: list[dict[str, Any]] = []
    for run_index, (_, episodes) in enumerate(runs):
        for episode in episodes:
            prompt = _prompt(episode)
            messages = [
                [message.role, shared.message(message.content)]
                for message in (prompt.messages if prompt else ())
            ]
            tokens, seconds, usd = episode_cost(episode)
            out.append(
                {
                    "run": run_index,
                    "id": episode.id,
                    "suite": episode.key.suite,
                    "task": episode.key.task_id,
                    "epoch": episode.key.epoch,
                    "outcome": outcome(episode),
                    "success_turn": episode.success_turn,
                    "turns_used": episode.turns_used,
                    "proposals_used": episode.proposals_used,
                    "max_turns": episode.max_turns,
                    "max_proposals": episode.max_proposals,
                    "reason": episode.terminate_reason,
                    "model": episode.model,
                    "error": clip(episode.error) if episode.error else None,
                    "tokens": tokens,
                    "seconds": round(seconds, 3),
                    "usd": usd,
                    "template": prompt.template if prompt else None,
                    "prompt": messages,
                    "turns": _turns(episode),
                }
            )
    return {"runs": [label for label, _ in runs], "shared": shared.texts, "episodes": out}


# Characters that could end the <script> element or start markup or an entity inside it. JSON
# allows them as \uXXXX escapes, which JSON.parse turns back into the same characters. U+2028/9
# are escaped too: harmless for JSON.parse, but they break older JavaScript parsers.
_SCRIPT_UNSAFE = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def script_json(data: Any) -> str:
    """``data`` as JSON safe to place verbatim inside ``<script type="application/json">``.

    No ``<``, ``>`` or ``&`` is left in the output, so no text inside the data (``</script>``,
    ``<!--``) can end the element or change how the HTML parser reads it.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # NaN / Infinity are not JSON (JSON.parse would reject the whole document): null them.
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    # Lone surrogates (possible in JSON-decoded model text) cannot be written as UTF-8: escape.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.translate(_SCRIPT_UNSAFE)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
