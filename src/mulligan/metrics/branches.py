"""Sibling branches of a fork run (:mod:`mulligan.engine.fork`): how many groups share a context,
and how many turn-level pairs they give.

Branches with the same parent episode and branch turn are *siblings*: their message lists are
identical up to the branch turn. Their outcome *at the branch turn* is whether the turn they
sampled first was a correct proposal (``success_turn == branch_turn``). Within a group of n
siblings of which s succeeded there, ``s * (n - s)`` sibling pairs differ in that outcome: the
turn-level preference pairs (same context, one better turn) that DPO-style training reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode


class BranchSummary(BaseModel):
    """Sibling groups of a fork run and the pairs they give (module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: int
    """(parent, branch turn) groups with at least two branches."""
    branches: int
    """Branch episodes in those groups."""
    solved_at_branch_turn: int
    pairs: int
    """Sibling pairs whose outcomes at the branch turn differ."""
    groups_with_pair: int


def sibling_groups(episodes: Iterable[Episode]) -> dict[tuple[str, int], list[Episode]]:
    """Branch episodes by (parent episode, branch turn); ordinary episodes are left out."""
    groups: dict[tuple[str, int], list[Episode]] = defaultdict(list)
    for episode in episodes:
        if episode.parent_episode is not None and episode.branch_turn is not None:
            groups[(episode.parent_episode, episode.branch_turn)].append(episode)
    return dict(sorted(groups.items()))


def solved_at_branch_turn(episode: Episode) -> bool:
    """Whether the branch's first sampled turn was a correct proposal."""
    return episode.branch_turn is not None and episode.success_turn == episode.branch_turn


def branch_summary(episodes: Iterable[Episode]) -> BranchSummary | None:
    """The sibling groups' counts, or None when no episode is a branch."""
    groups = sibling_groups(episodes)
    if not groups:
        return None
    siblings = [group for group in groups.values() if len(group) >= 2]
    solved = [sum(map(solved_at_branch_turn, group)) for group in siblings]
    pairs = [s * (len(group) - s) for s, group in zip(solved, siblings, strict=True)]
    return BranchSummary(
        groups=len(siblings),
        branches=sum(len(group) for group in siblings),
        solved_at_branch_turn=sum(solved),
        pairs=sum(pairs),
        groups_with_pair=sum(p > 0 for p in pairs),
    )
