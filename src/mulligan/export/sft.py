"""``sft``: successful trajectories as chat ``messages``, with a per-message train mask.

One record per solved episode: the exact conversation up to the solving reply, each message a
``{"role", "content", "train"}`` dict; ``train`` is true for the policy's turns (learned) and
false for the prompt, observations and feedback (context). It is TRL's conversational language
modelling form (``messages``): ``SFTConfig(assistant_only_loss=True)`` learns exactly the
messages marked ``train``; chat templates ignore the extra key.
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    for view in group:
        if not view.episode.success or not view.turns:
            continue
        messages = [
            {"role": m.role, "content": m.content, "train": m.role == "assistant"}
            for m in view.conversation
        ]
        yield {"messages": messages, "provenance": provenance(view)}


FORMAT = ExportFormat(
    name="sft",
    description="solved trajectories as chat messages with a per-message train mask (TRL SFT)",
    fields="messages: [{role, content, train}] (train: a policy turn, learned), provenance",
    build=build,
)
