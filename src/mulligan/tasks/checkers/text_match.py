"""Answer-text normalisation, exact match and token F1 (SQuAD / HotpotQA style)."""

from __future__ import annotations

import re
import string
from collections import Counter

from mulligan.tasks.base import CheckResult, Task
from mulligan.tasks.checkers.verdicts import TextChecker, verdict

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace.

    This is the normalisation of the SQuAD and HotpotQA evaluation scripts.
    """
    text = text.lower().translate(_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """HotpotQA's answer F1: harmonic mean of token precision and recall after normalisation.

    As in HotpotQA's script, a yes/no/noanswer reference or prediction scores 0 unless both are
    the same word, so "yes" never earns partial credit against "no".
    """
    pred, ref = normalize_answer(prediction), normalize_answer(reference)
    special = {"yes", "no", "noanswer"}
    if (pred in special or ref in special) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


class ExactMatchChecker(TextChecker):
    """Correct iff the normalised answer equals the normalised reference; score is token F1."""

    name = "exact_match"
    inline_max_chars = 500
    """Judged in-process up to this length: :func:`normalize_answer` (``lower``, ``translate``,
    one regex of alternated literals between ``\\b`` anchors, ``split``) and a ``Counter`` of
    tokens are linear in the answer."""

    def judge(self, answer: str, task: Task) -> CheckResult:
        exact = normalize_answer(answer) == normalize_answer(task.reference)
        f1 = token_f1(answer, task.reference)
        return verdict(exact, f"exact match: {'yes' if exact else 'no'}; F1={f1:.3f}", score=f1)


class LongExactMatchChecker(ExactMatchChecker):
    """``exact_match`` for long free-form references (RefineBench's reach 29,000 characters):
    the same rule, with a higher answer-size limit (normalising is linear in the length)."""

    name = "exact_match_long"
    max_answer_chars = 60_000
    inline_max_chars = 0  # normalising a 29,000-character reference per check: in a worker
