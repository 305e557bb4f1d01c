"""``hindsight``: Chain-of-Hindsight triples (worse attempt, feedback sentence, better attempt).

One record per wrong proposal that got feedback in an episode solved later: ``prompt`` is the
first prompt (the task), ``worse`` the wrong reply, ``feedback`` what the policy was told about
it, ``better`` the solving reply. A trainer joins them into its own hindsight sentences.
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, messages_json, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    for view in group:
        verdicts = [(t, t.verdict.correct) for t in view.turns if t.verdict is not None]
        better = next((t for t, ok in verdicts if ok), None)
        if better is None:
            continue
        for worse, ok in verdicts:
            if ok or worse.number >= better.number or not worse.feedback_text:
                continue
            yield {
                "prompt": messages_json(view.first_prompt),
                "worse": worse.reply.content,
                "feedback": worse.feedback_text,
                "better": better.reply.content,
                "provenance": provenance(view, worse),
            }


FORMAT = ExportFormat(
    name="hindsight",
    description="(worse attempt, feedback, better attempt) triples (Chain of Hindsight)",
    fields="prompt: [first user message], worse, feedback, better, provenance",
    build=build,
)
