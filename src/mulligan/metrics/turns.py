"""How early tasks get solved: MRR and recall over turns (ConvCodeWorld), mean turns to success.

With t_i the turn of episode i's first correct proposal (None if unsolved) and K the turn budget:

- MRR    = (1/N) * sum_i 1[t_i <= K] / t_i            (ConvCodeWorld's mean reciprocal rank)
- Recall = (1/N) * sum_i 1[t_i <= K]                  (ConvCodeWorld's recall; equals SR@K)
- Mean turns to success = sum_i t_i 1[t_i <= K] / sum_i 1[t_i <= K]   (over solved episodes)

K defaults to each episode's own budget (``max_turns``), so an unsolved episode always scores 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from mulligan.events import Episode
from mulligan.metrics.stats import (
    DEFAULT_BOOTSTRAP,
    BootstrapConfig,
    Estimate,
    mean_estimate,
    proportion_estimate,
    ratio_estimate,
)


def _solved_turn(episode: Episode, max_k: int | None) -> int | None:
    """The turn of the first correct proposal if it is within the budget, else None."""
    budget = episode.max_turns if max_k is None else max_k
    turn = episode.success_turn
    return turn if turn is not None and turn <= budget else None


def mean_reciprocal_rank(
    episodes: Iterable[Episode],
    max_k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """MRR over turns: mean of 1/t_i, 0 for episodes not solved within K turns."""
    values = []
    for episode in episodes:
        turn = _solved_turn(episode, max_k)
        values.append(1.0 / turn if turn else 0.0)
    return mean_estimate(values, bootstrap)


def recall_at_budget(
    episodes: Iterable[Episode],
    max_k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """ConvCodeWorld's recall: the share of episodes solved within K turns."""
    return proportion_estimate([_solved_turn(e, max_k) is not None for e in episodes], bootstrap)


def mean_turns_to_success(
    episodes: Iterable[Episode],
    max_k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """Mean turn of the first correct proposal over episodes solved within K turns.

    Undefined (value None) when nothing was solved; unsolved episodes do not count as K or K+1,
    which would mix speed with success.
    """
    numerators: list[float] = []
    denominators: list[float] = []
    for episode in episodes:
        turn = _solved_turn(episode, max_k)
        numerators.append(float(turn or 0))
        denominators.append(1.0 if turn else 0.0)
    return ratio_estimate(numerators, denominators, bootstrap)
