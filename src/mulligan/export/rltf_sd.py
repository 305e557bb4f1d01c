"""``rltf-sd``: RLTF's self-distillation triples (first prompt, feedback, improved attempt).

One record per episode that was solved after feedback on a wrong proposal: ``prompt`` is the
first prompt alone (the single-turn policy's input), ``completion`` the solving reply (the
target), ``first_attempt`` the first wrong proposal's reply and ``feedback`` what the policy
was told about it.
"""

from __future__ import annotations

from collections.abc import Iterator

from mulligan.export.base import ExportFormat, FormatOptions, Record
from mulligan.export.source import TaskGroup, messages_json, provenance


def build(group: TaskGroup, options: FormatOptions) -> Iterator[Record]:
    for view in group:
        verdicts = [(t, t.verdict.correct) for t in view.turns if t.verdict is not None]
        wrong = next((t for t, ok in verdicts if not ok and t.feedback_text), None)
        right = next((t for t, ok in verdicts if ok), None)
        if wrong is None or right is None or right.number <= wrong.number:
            continue
        yield {
            "prompt": messages_json(view.first_prompt),
            "completion": messages_json([right.reply]),
            "first_attempt": wrong.reply.content,
            "feedback": wrong.feedback_text,
            "provenance": provenance(view, right),
        }


FORMAT = ExportFormat(
    name="rltf-sd",
    description="(first prompt, feedback, improved attempt) self-distillation triples (RLTF)",
    fields="prompt: [first user message], completion: [solving reply], first_attempt, "
    "feedback, provenance",
    build=build,
)
