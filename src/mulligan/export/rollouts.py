"""``rollouts``: whole episodes with per-turn rewards, for multi-turn RL libraries.

One record per episode, solved or not: ``messages`` (the exact conversation up to the last
reply, each with ``train`` true on the policy's turns) and ``turns``, one entry per policy turn:
the index of its reply in ``messages``, its action kind, whether the action was invalid or a
refused repeat, whether a proposal was right, and its ``reward``: 1 on the turn that solves the
task, else ``-turn_penalty`` (``--turn-penalty``, default 0). ``return`` is their sum.
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    for view in group:
        if not view.turns:
            continue
        turns = []
        for turn in view.turns:
            solved = turn.verdict is not None and turn.verdict.correct
            turns.append(
                {
                    "turn": turn.number,
                    "message_index": len(turn.context),
                    "action": turn.action.kind if turn.action is not None else "invalid",
                    "invalid": turn.invalid,
                    "refused_repeat": turn.action is not None and turn.action.repeat_of is not None,
                    "correct": None if turn.verdict is None else turn.verdict.correct,
                    "reward": 1.0 if solved else -options.turn_penalty or 0.0,  # never -0.0
                }
            )
        messages = [
            {"role": m.role, "content": m.content, "train": m.role == "assistant"}
            for m in view.conversation
        ]
        yield {
            "messages": messages,
            "turns": turns,
            "return": sum(t["reward"] for t in turns),
            "success": view.episode.success,
            "terminate_reason": view.episode.terminate_reason,
            "provenance": provenance(view),
        }


FORMAT = ExportFormat(
    name="rollouts",
    description="whole episodes with per-turn rewards (1 on success, -turn penalty otherwise)",
    fields="messages: [{role, content, train}], turns: [{turn, message_index, action, invalid, "
    "refused_repeat, correct, reward}], return, success, terminate_reason, provenance",
    build=build,
)
