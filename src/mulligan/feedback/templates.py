"""The feedback providers' prompt templates: the files in ``prompts/feedback/``, loaded by the one
template loader, :mod:`mulligan.prompts.templates`.

A provider names its template by file name (``"critic.j2"``). Each file is self-contained
(in-context example included), so its hash pins every word the feedback model was shown; the
hash is recorded on every feedback event (``FeedbackEvent.template_hash``).
"""

from __future__ import annotations

from mulligan.prompts.templates import PromptTemplate, model_template_versions
from mulligan.prompts.templates import load_template as load_prompt_template

FOLDER = "feedback"
"""The folder under ``prompts/`` that holds the feedback templates."""

FeedbackTemplate = PromptTemplate
"""A feedback provider's template (any prompt template; the name says what it is used for)."""


def load_template(name: str) -> PromptTemplate:
    """The feedback template ``prompts/feedback/<name>``; FileNotFoundError if there is none."""
    return load_prompt_template(f"{FOLDER}/{name}")


def template_versions() -> dict[str, dict[str, str]]:
    """``{name: {"version": ..., "hash": ...}}`` of the feedback and judge templates (for run
    manifests' ``feedback_templates``; see :func:`mulligan.prompts.model_template_versions`)."""
    return model_template_versions()
