"""What happens between attempts: recovery, regression and repeated answers.

The unit is the *proposal* (a ``VerdictEvent``: a solution judged when it was proposed). Let
episode i make proposals p_1..p_m with correctness c_1..c_m. Every rate is a ratio of sums over
episodes (see ``mulligan.metrics.stats``), so its bootstrap resamples whole episodes:

- Recovery rate   = P(c_{j+1} | not c_j)
                  = #{j : not c_j and c_{j+1}} / #{j : not c_j and p_{j+1} exists}
- Regression rate = P(not c_{j+1} | c_j)
                  = #{j : c_j and not c_{j+1}} / #{j : c_j and p_{j+1} exists}
  (0 pairs under MINT's protocol, which stops at the first correct proposal: the rate is None.)
- Repeated-answer rate = #{j : norm(p_j) = norm(p_l) for some wrong p_l, l < j}
                         / #{j : some p_l with l < j was wrong}
  i.e. how often a proposal made after a wrong one repeats an answer already judged wrong,
  answers compared under ``mulligan.actions.answer_key``.

Feedback friction, the rate of not using feedback that knew the answer, is in
``mulligan.metrics.feedback`` with the other feedback metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from mulligan.actions import answer_key
from mulligan.events import Episode, VerdictEvent
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, count_rate_estimate


def proposals(episode: Episode) -> list[VerdictEvent]:
    """The judged proposals of an episode, in the order they were made."""
    return [e for e in episode.events if isinstance(e, VerdictEvent)]


def _transition_counts(episode: Episode, after_correct: bool) -> tuple[float, float]:
    """(changed, pairs): consecutive proposal pairs whose first is correct == after_correct."""
    verdicts = proposals(episode)
    pairs = changed = 0
    for first, second in pairwise(verdicts):
        if first.correct == after_correct:
            pairs += 1
            changed += second.correct != after_correct
    return float(changed), float(pairs)


def recovery_rate(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """P(next proposal correct | this proposal wrong), over consecutive proposal pairs."""
    counts = [_transition_counts(e, after_correct=False) for e in episodes]
    return count_rate_estimate([c[0] for c in counts], [c[1] for c in counts], bootstrap)


def regression_rate(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """P(next proposal wrong | this proposal correct), over consecutive proposal pairs."""
    counts = [_transition_counts(e, after_correct=True) for e in episodes]
    return count_rate_estimate([c[0] for c in counts], [c[1] for c in counts], bootstrap)


def _repeat_counts(episode: Episode) -> tuple[float, float]:
    wrong_answers: set[str] = set()
    repeats = eligible = 0
    for verdict in proposals(episode):
        answer = answer_key(verdict.answer)
        if wrong_answers:
            eligible += 1
            repeats += answer in wrong_answers
        if not verdict.correct:
            wrong_answers.add(answer)
    return float(repeats), float(eligible)


def repeated_answer_rate(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> Estimate:
    """Share of proposals made after a wrong one that repeat an answer already judged wrong."""
    counts = [_repeat_counts(e) for e in episodes]
    return count_rate_estimate([c[0] for c in counts], [c[1] for c in counts], bootstrap)
