"""``feedback-model``: (context, attempt) -> feedback, for training a feedback model (RLTF's
feedback-modelling objective, critic models).

One record per feedback event with text: ``context`` is the exact message list the policy's call
received, ``attempt`` its reply, ``feedback`` the text the policy was then given (after the leak
guard), with its ``kind`` and ``source``. Feedback of kind ``none`` says nothing and gives no
record; ``--feedback-kind`` narrows the targets to its kinds.
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, messages_json, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    kinds = options.feedback_kinds
    for view in group:
        for turn in view.turns:
            for event in turn.feedback:
                if event.kind == "none" or not event.content or (kinds and event.kind not in kinds):
                    continue
                yield {
                    "context": messages_json(turn.context),
                    "attempt": turn.reply.content,
                    "feedback": event.content,
                    "kind": event.kind,
                    "source": event.source,
                    "provenance": provenance(view, turn),
                }


FORMAT = ExportFormat(
    name="feedback-model",
    description="(context, attempt) -> feedback targets, for training a feedback model",
    fields="context: messages, attempt, feedback, kind, source, provenance",
    build=build,
)
