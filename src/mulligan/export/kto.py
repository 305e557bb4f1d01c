"""``kto``: every policy turn, unpaired, with a desirable flag (TRL's unpaired preference form).

One record per policy turn: ``prompt`` (the exact messages the call received), ``completion``
(the reply, as one assistant message) and ``label``: true for a right proposal, or a tool call in
an episode that was solved; false for a wrong proposal, an invalid action, or a tool call in an
episode that was not solved (:func:`~mulligan.export.source.desirable`).
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, desirable, messages_json, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    for view in group:
        for turn in view.turns:
            yield {
                "prompt": messages_json(turn.context),
                "completion": messages_json([turn.reply]),
                "label": desirable(view, turn),
                "provenance": provenance(view, turn),
            }


FORMAT = ExportFormat(
    name="kto",
    description="each policy turn with a desirable label (TRL KTO, unpaired preference)",
    fields="prompt: messages, completion: [assistant message], label: bool, provenance",
    build=build,
)
