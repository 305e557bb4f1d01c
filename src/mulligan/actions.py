"""Parsing a policy reply into one MINT-style action: execute code, propose a solution, or invalid.

Two answer formats (:data:`AnswerFormat`). ``tagged`` is MINT's: ``<thought>...</thought>`` then
either ``<execute>code</execute>`` or ``<solution>answer</solution>``. As in MINT, a solution wins
over code when a reply has both. Generation stops at a closing tag (see ``STOP_SEQUENCES``), so a
reply may end inside an open tag; that tag is closed here rather than treated as invalid.
``reply`` is the refinement protocol of RefineBench and Self-Refine: no tools, the whole reply
is the answer (:func:`parse_reply`), so every non-empty turn is a proposal.

:func:`is_well_formed` says whether a reply follows the format to the letter (what training data
should teach; the lenient parser also accepts a solution inside an unclosed thought).

:func:`answer_key` is the canonical form of a proposed answer under which the loop spots a
repeated wrong answer (and the repeated-answer metric counts one).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Literal

from mulligan.events import ActionKind

AnswerFormat = Literal["tagged", "reply"]
"""How a reply carries its answer: ``tagged`` (MINT: ``<execute>`` or ``<solution>``) or
``reply`` (no tools; the reply itself, less any ``<thought>`` block, is the answer)."""

# The model must not write the environment's turn itself: stop at a closing tag or at an
# "Observation:" line it starts to invent.
STOP_SEQUENCES: tuple[str, ...] = ("</execute>", "</solution>", "\nObservation:")
REPLY_STOP_SEQUENCES: tuple[str, ...] = ("\nObservation:",)
"""The ``reply`` format's: the reply is the answer, so only an invented turn is cut."""

_SPACES = re.compile(r"\s+")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
# Wrappers models put around an answer that do not change it.
_WRAPPERS = "\"'`$ "

_THOUGHT = re.compile(r"<thought>(.*?)(?:</thought>|$)", re.DOTALL)
_TAG = {
    "solution": re.compile(r"<solution>(.*?)(?:</solution>|$)", re.DOTALL),
    "execute": re.compile(r"<execute>(.*?)(?:</execute>|$)", re.DOTALL),
}


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """An action parsed from a reply; ``reply`` is the text to keep in the conversation."""

    kind: ActionKind
    content: str
    thought: str | None
    reply: str


def restore_stop(text: str) -> str:
    """Close a tag the stop sequence cut off, so the transcript reads as the model meant it."""
    for tag in ("execute", "solution"):
        opened = text.rfind(f"<{tag}>")
        if opened != -1 and text.find(f"</{tag}>", opened) == -1:
            return text.rstrip() + f"\n</{tag}>"
    return text


def parse_action(text: str) -> ParsedAction:
    """Parse one reply. Returns the action; never raises on malformed text (that is 'invalid')."""
    reply = restore_stop(text)
    thought_match = _THOUGHT.search(reply)
    thought = thought_match.group(1).strip() if thought_match else None
    solution = _TAG["solution"].search(reply)
    if solution is not None and solution.group(1).strip():
        return ParsedAction("solution", _strip_fence(solution.group(1)).strip(), thought, reply)
    execute = _TAG["execute"].search(reply)
    if execute is not None and execute.group(1).strip():
        return ParsedAction("execute", _strip_fence(execute.group(1)), thought, reply)
    return ParsedAction("invalid", "", thought, reply)


_WHOLE_FENCE = re.compile(r"```[^\n`]*\n((?:(?!```).)*?)\n?```", re.DOTALL)


def parse_reply(text: str) -> ParsedAction:
    """Parse one reply under the ``reply`` format: a proposal of the reply's text, less any
    closed ``<thought>`` block (or, leniently, of its ``<solution>`` block where it writes one),
    unwrapped when the whole is one Markdown fence (a program for a code task); an empty
    answer is 'invalid'. Never raises."""
    thought_match = _THOUGHT.search(text)
    thought = thought_match.group(1).strip() if thought_match else None
    solution = _TAG["solution"].search(text)
    if solution is not None and solution.group(1).strip():
        answer = solution.group(1)
    else:
        answer = _without_thoughts(text)
    answer = answer.strip()
    fenced = _WHOLE_FENCE.fullmatch(answer)
    if fenced is not None:
        answer = fenced.group(1).strip()
    return ParsedAction("solution" if answer else "invalid", answer, thought, text)


def _without_thoughts(text: str) -> str:
    """``text`` less its closed ``<thought>...</thought>`` blocks. A scan with ``str.find``, not
    a regex substitution: a lazy pattern tried from every one of thousands of unclosed
    ``<thought>`` tags that model output can hold would take quadratic time."""
    kept: list[str] = []
    start = 0
    while (opened := text.find("<thought>", start)) != -1:
        closed = text.find("</thought>", opened)
        if closed == -1:
            break
        kept.append(text[start:opened])
        start = closed + len("</thought>")
    kept.append(text[start:])
    return "".join(kept)


def parse_in_format(text: str, answer_format: AnswerFormat) -> ParsedAction:
    """Parse one reply under ``answer_format``."""
    return parse_reply(text) if answer_format == "reply" else parse_action(text)


def stop_sequences(answer_format: AnswerFormat) -> tuple[str, ...]:
    """The stop sequences the policy is called with under ``answer_format``."""
    return REPLY_STOP_SEQUENCES if answer_format == "reply" else STOP_SEQUENCES


_ANY_TAG = re.compile(r"</?(thought|execute|solution)>")


def is_well_formed(reply: str, answer_format: AnswerFormat = "tagged") -> bool:
    """True when ``reply`` (a stop-cut reply is closed first, as :func:`parse_action` does) is
    an optional ``<thought>...</thought>`` followed by exactly one non-empty ``<execute>`` or
    ``<solution>`` block, each tag opened and closed once, in that order, with nothing before
    the first tag or after the block. Under the ``reply`` format: a reply with an answer."""
    if answer_format == "reply":
        return parse_reply(reply).kind == "solution"
    text = restore_stop(reply)
    tags = [(m.group(0), m.start(), m.end()) for m in _ANY_TAG.finditer(text)]
    names = [tag for tag, _, _ in tags]
    if names[:2] == ["<thought>", "</thought>"]:
        names = names[2:]
    if names not in (["<execute>", "</execute>"], ["<solution>", "</solution>"]):
        return False
    (_, _, opened), (_, closed, end) = tags[-2], tags[-1]
    outside = text[: tags[0][1]] + text[end:]
    return bool(text[opened:closed].strip()) and not outside.strip()


def _strip_fence(code: str) -> str:
    """Strip a Markdown fence and common indentation that models often wrap code in."""
    lines = code.strip("\n").splitlines()
    if lines and lines[0].strip().startswith("```"):
        lines = lines[1:]
    if lines and lines[-1].strip().startswith("```"):
        lines = lines[:-1]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def answer_key(answer: str) -> str:
    """A canonical form of an answer for "is this the same answer again?".

    Lower-cased, whitespace collapsed, surrounding quotes / backticks / ``$`` and a trailing
    period stripped; numbers canonicalised so that ``6``, ``6.0`` and ``6,000``/``6000`` compare
    by value (``6.0`` -> ``6``). It is deliberately shallow: it is for spotting repeats, not for
    grading (checkers do that, with their own normalisation).
    """
    text = _SPACES.sub(" ", answer.strip().lower())
    text = text.strip(_WRAPPERS).rstrip(".").strip(_WRAPPERS)
    candidate = text.replace(",", "") if _THOUSANDS.match(text) else text
    try:
        number = float(candidate)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):  # nan / inf stay text
        return text
    return str(int(number)) if number.is_integer() else repr(number)
