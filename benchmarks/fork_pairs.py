"""Sibling groups and turn-level pairs of a fork run, with one pair shown.

Usage::

    python benchmarks/fork_pairs.py FORK_RUN_DIR

Prints the run's fork section (source, T, N, parents, skipped), its sibling groups and the
turn-level pairs they give (siblings whose outcome at the branch turn differs, see
``mulligan.metrics.branches``), the prefix mismatches, and one pair: the last context message
both siblings saw, then each sibling's reply at the branch turn with its verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mulligan.events import ActionEvent, Episode, ErrorEvent, VerdictEvent
from mulligan.metrics import branch_summary, sibling_groups
from mulligan.metrics.branches import solved_at_branch_turn
from mulligan.store import RunStore


def _reply(episode: Episode, turn: int) -> str:
    return next(
        (e.raw for e in episode.events if isinstance(e, ActionEvent) and e.turn == turn), ""
    )


def _verdict(episode: Episode, turn: int) -> str:
    found = [e for e in episode.events if isinstance(e, VerdictEvent) and e.turn == turn]
    return (
        f"{found[0].answer!r} judged {'correct' if found[0].correct else 'wrong'}"
        if found
        else "no proposal"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    with RunStore.open_existing(args.run) as store:
        stored = store.run()
        episodes = list(store.episodes())
    manifest = stored.manifest if stored else {}
    print("fork:", json.dumps(manifest.get("fork"), sort_keys=True))
    print("counters:", json.dumps(manifest.get("counters", {}).get("fork")))
    summary = branch_summary(episodes)
    print("branches:", summary.model_dump() if summary else None)
    mismatched = sum(
        any(isinstance(e, ErrorEvent) and e.where == "fork-prefix" for e in ep.events)
        for ep in episodes
    )
    print(f"episodes: {len(episodes)}, with a prefix mismatch: {mismatched}")
    for (parent, turn), group in sibling_groups(episodes).items():
        good = [e for e in group if solved_at_branch_turn(e)]
        bad = [e for e in group if not solved_at_branch_turn(e)]
        if good and bad:
            print(f"\none pair: parent {parent}, branch turn {turn}")
            for label, episode in (("chosen", good[0]), ("rejected", bad[0])):
                print(f"--- {label} (branch {episode.branch}): {_verdict(episode, turn)}")
                print(_reply(episode, turn)[:600])
            break


if __name__ == "__main__":
    main()
