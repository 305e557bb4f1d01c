"""``dpo``: preference pairs in TRL's conversational form (``prompt``, ``chosen``, ``rejected``).

Two levels, marked in ``level``:

- ``turn``: two policy turns whose calls received byte-identical message lists (same task; at
  turn 1 any two epochs, later turns only branches forked from one episode) with different
  replies, one desirable and one not (:func:`~mulligan.export.source.desirable`). ``prompt`` is
  that shared context; ``chosen`` / ``rejected`` one assistant message each.
- ``trajectory``: a solved and an unsolved episode of the same task with byte-identical first
  prompts; ``chosen`` / ``rejected`` are the rest of each conversation (observations and
  feedback included: a DPO trainer scores every token of them).

At most ``max_pairs`` pairs per shared context or prompt, in the order episodes are stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import (
    EpisodeView,
    PolicyTurn,
    TaskGroup,
    desirable,
    digest,
    messages_json,
    provenance,
)


def _turn_pairs(group: TaskGroup, max_pairs: int) -> Iterator[Record]:
    by_context: dict[str, list[tuple[EpisodeView, PolicyTurn]]] = {}
    for view in group:
        for turn in view.turns:
            by_context.setdefault(digest(messages_json(turn.context)), []).append((view, turn))
    for items in by_context.values():
        good = [item for item in items if desirable(*item)]
        bad = [item for item in items if not desirable(*item)]
        pairs = ((g, b) for g, b in itertools.product(good, bad) if g[1].reply != b[1].reply)
        for (gv, gt), (bv, bt) in itertools.islice(pairs, max_pairs):
            yield {
                "level": "turn",
                "prompt": messages_json(gt.context),
                "chosen": messages_json([gt.reply]),
                "rejected": messages_json([bt.reply]),
                "provenance": {"chosen": provenance(gv, gt), "rejected": provenance(bv, bt)},
            }


def _trajectory_pairs(group: TaskGroup, max_pairs: int) -> Iterator[Record]:
    by_prompt: dict[str, list[EpisodeView]] = {}
    for view in group:
        if view.turns:
            by_prompt.setdefault(digest(messages_json(view.first_prompt)), []).append(view)
    for views in by_prompt.values():
        solved = [v for v in views if v.episode.success]
        unsolved = [v for v in views if not v.episode.success]
        for win, lose in itertools.islice(itertools.product(solved, unsolved), max_pairs):
            prompt = win.first_prompt
            yield {
                "level": "trajectory",
                "prompt": messages_json(prompt),
                "chosen": messages_json(win.conversation[len(prompt) :]),
                "rejected": messages_json(lose.conversation[len(prompt) :]),
                "provenance": {"chosen": provenance(win), "rejected": provenance(lose)},
            }


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    yield from _turn_pairs(group, options.max_pairs)
    yield from _trajectory_pairs(group, options.max_pairs)


FORMAT = ExportFormat(
    name="dpo",
    description="preference pairs: turns with byte-identical context, solved vs unsolved "
    "episodes (TRL DPO, conversational)",
    fields="level: turn|trajectory, prompt/chosen/rejected: messages, "
    "provenance: {chosen, rejected}",
    build=build,
)
