"""What success costs: tokens, model seconds and money per solved task, from ``ModelCallEvent``s.

Cost per solved task charges every episode's spending to the tasks that were solved::

    C = sum_i cost_i / sum_i 1[episode i solved]

cost_i summed over the episode's model calls of the chosen roles (policy, feedback, judge): tokens
= prompt + completion tokens, seconds = ``latency_s``, money = ``cost_usd``. Unsolved episodes
add to the numerator only: their spending is the price of the successes. C is undefined (None)
when nothing was solved.

A fork run's branches replay their parents' first turns from the source run's log
(``engine/fork.py``): those policy calls are in the branch's events (they are part of the exact
message lists) but were paid by the source run, so nothing here counts them
(:meth:`Episode.is_replayed`); ``replayed_calls`` says how many were left out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode, ModelCallEvent, ModelRole
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, ratio_estimate


class CostTotals(BaseModel):
    """Sums over model calls."""

    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, call: ModelCallEvent) -> None:
        self.calls += 1
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.latency_s += call.latency_s
        self.cost_usd += call.cost_usd


class CostSummary(BaseModel):
    """Spending of a group of episodes, by model role, and per solved task."""

    model_config = ConfigDict(extra="forbid")

    episodes: int
    solved: int
    roles: list[ModelRole]
    by_role: dict[str, CostTotals]
    replayed_calls: int = 0  # fork branches' replayed prefix calls, not counted
    tokens_per_solved: Estimate
    seconds_per_solved: Estimate
    usd_per_solved: Estimate


def cost_per_solved(
    episodes: Iterable[Episode],
    roles: Collection[ModelRole] = ("policy", "feedback", "judge"),
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> CostSummary:
    """Tokens, seconds and USD per solved task, counting the model calls of ``roles``."""
    by_role: dict[str, CostTotals] = {}
    tokens: list[float] = []
    seconds: list[float] = []
    usd: list[float] = []
    solved: list[float] = []
    replayed = 0
    for episode in episodes:
        ep_tokens = ep_seconds = ep_usd = 0.0
        for event in episode.events:
            if not isinstance(event, ModelCallEvent):
                continue
            if episode.is_replayed(event):  # the source run paid for it
                replayed += 1
                continue
            by_role.setdefault(event.role, CostTotals()).add(event)
            if event.role in roles:
                ep_tokens += event.prompt_tokens + event.completion_tokens
                ep_seconds += event.latency_s
                ep_usd += event.cost_usd
        tokens.append(ep_tokens)
        seconds.append(ep_seconds)
        usd.append(ep_usd)
        solved.append(float(episode.success))
    return CostSummary(
        episodes=len(solved),
        solved=int(sum(solved)),
        roles=sorted(roles),
        by_role=dict(sorted(by_role.items())),
        replayed_calls=replayed,
        tokens_per_solved=ratio_estimate(tokens, solved, bootstrap),
        seconds_per_solved=ratio_estimate(seconds, solved, bootstrap),
        usd_per_solved=ratio_estimate(usd, solved, bootstrap),
    )
