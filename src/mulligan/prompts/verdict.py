"""Reading a good/bad verdict out of a model's reply (feedback or judge), negation included,
and a checklist's per-item verdicts (:func:`parse_checklist`, ``3. YES - reason`` lines).

MINT decides "binary" feedback by looking for the substring GOOD in the model's output, so
"This is NOT GOOD." counts as good. :func:`parse_binary_verdict` instead

1. reads an explicit verdict line (``VERDICT: GOOD`` / ``Verdict - not correct``), the last
   one if several, and judges its value with the clause rules below;
2. otherwise judges every clause of every non-question sentence: a polarity word ("good",
   "correct", "wrong", "error", ...) counts for or against, flipped by a negator ("not",
   "isn't", "no", "never", ...) up to four words before it, and downgraded by a hedge
   ("almost correct" is not correct);
3. combines them: a sentence that states a conclusion ("overall", "so", "in conclusion", ...)
   decides; otherwise any negative judgement makes the verdict bad (a binary "good" must be
   unambiguous), any positive one makes it good, and no judgement at all gives None.
"""

from __future__ import annotations

import re

_POSITIVE = frozenset(
    {
        "good", "correct", "right", "valid", "accurate", "fine", "ok", "okay", "acceptable",
        "perfect", "great", "excellent", "solved", "success", "successful", "works", "work",
        "worked", "working", "pass", "passes", "passed", "sound",
    }
)  # fmt: skip
_NEGATIVE = frozenset(
    {
        "bad", "wrong", "incorrect", "invalid", "inaccurate", "mistaken", "erroneous",
        "flawed", "error", "errors", "mistake", "mistakes", "bug", "bugs", "buggy",
        "problem", "problems", "issue", "issues", "fail", "fails", "failed", "failing",
        "unacceptable", "incomplete", "off",
    }
)  # fmt: skip
_NEGATORS = frozenset(
    {
        "not", "no", "never", "nothing", "none", "neither", "nor", "without", "hardly",
        "barely", "cannot", "lacks", "lacking", "nowhere",
    }
)  # fmt: skip
# Hedges only weaken praise: "almost correct" is not correct, "almost wrong" is still odd.
_HEDGES = frozenset({"almost", "nearly", "partially", "partly", "mostly", "somewhat"})
# "the correct answer is 5" states the reference, it does not judge the attempt.
_ATTRIBUTIVE_NOUNS = frozenset(
    {
        "answer", "solution", "result", "value", "approach", "way", "method", "formula",
        "option", "choice", "output", "code", "one", "number", "function",
    }
)  # fmt: skip
_COPULAS = frozenset({"is", "are", "was", "were", "be", "it's", "that's", "this's"})
_CONCLUSION = frozenset(
    {"overall", "conclusion", "so", "therefore", "thus", "hence", "verdict", "final", "summary"}
)
_SCOPE = 4  # how many words after a negator it still negates

_VERDICT_LINE = re.compile(
    r"^[\W_]*(?:final\s+)?(?:verdict|judg(?:e)?ment|assessment|evaluation|rating)\s*"
    r"[:=\-–—]\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\b(?:but|however|although|though|whereas|yet)\b")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _is_negator(word: str) -> bool:
    return word in _NEGATORS or word.endswith("n't")


def _clause_polarity(words: list[str]) -> list[bool]:
    """The judgements one clause makes, in order: True for good, False for bad."""
    if len(words) == 1 and words[0] in ("yes", "no"):
        return [words[0] == "yes"]  # a bare "No." answers "is it correct?"
    out: list[bool] = []
    for i, word in enumerate(words):
        if word in _POSITIVE:
            polarity = True
        elif word in _NEGATIVE:
            polarity = False
        else:
            continue
        if (
            polarity
            and i >= 1
            and words[i - 1] == "the"
            and i + 1 < len(words)
            and words[i + 1] in _ATTRIBUTIVE_NOUNS
            and not (i >= 2 and words[i - 2] in _COPULAS)
        ):
            continue
        window = words[max(0, i - _SCOPE) : i]
        if sum(_is_negator(w) for w in window) % 2 == 1:
            polarity = not polarity
        elif polarity and any(w in _HEDGES for w in window):
            polarity = False
        out.append(polarity)
    return out


def _sentence_polarity(sentence: str) -> list[bool]:
    out: list[bool] = []
    for clause in _CLAUSE_BREAK.split(sentence):
        words = _WORD.findall(clause)
        if words:
            out.extend(_clause_polarity(words))
    return out


def _judge(text: str) -> bool | None:
    conclusions: list[bool] = []
    judgements: list[bool] = []
    for match in _SENTENCE.finditer(text.lower().replace("’", "'")):
        sentence = match.group(0).strip()
        if not sentence or sentence.endswith("?"):
            continue  # a question is not a judgement ("Is the unit right?")
        found = _sentence_polarity(sentence)
        if not found:
            continue
        judgements.extend(found)
        if set(_WORD.findall(sentence)) & _CONCLUSION:
            conclusions.extend(found)
    decisive = conclusions or judgements
    if not decisive:
        return None
    return all(decisive)


def parse_binary_verdict(text: str) -> bool | None:
    """Whether ``text`` judges the attempt good (True), bad (False), or neither (None).

    Examples: "This is GOOD." -> True; "This is NOT GOOD." -> False; "The answer is not
    correct" -> False; "Not bad at all." -> True; "VERDICT: BAD" -> False; "Let me think" ->
    None.
    """
    for line in reversed(_VERDICT_LINE.findall(text)):
        value = _judge(line.rstrip(".!") + ".")
        if value is not None:
            return value
    return _judge(text)


_ITEM = re.compile(
    r"^\s*(?:item\s*)?(\d+)\s*[.):\-]?\s*\**\s*(yes|no|satisfied|not\s+satisfied|unsatisfied)\b"
    r"\**\s*[-–—:,.]?\s*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def parse_checklist(reply: str, n: int) -> list[tuple[bool | None, str]]:
    """``(satisfied, reason)`` for items 1..n of a ``<number>. YES|NO - <reason>`` reply;
    ``(None, "")`` where the reply says nothing about an item (the first line per item counts).
    """
    found: dict[int, tuple[bool | None, str]] = {}
    for m in _ITEM.finditer(reply):
        number = int(m.group(1))
        if 1 <= number <= n and number not in found:
            verdict = m.group(2).lower()
            found[number] = (verdict in ("yes", "satisfied"), m.group(3).strip())
    return [found.get(i, (None, "")) for i in range(1, n + 1)]
