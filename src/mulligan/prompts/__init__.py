"""Every prompt a model is shown: the template files beside this package and their one loader.

:mod:`mulligan.prompts.templates` loads any template (policy, feedback, judge) with its version
and hash; :mod:`mulligan.prompts.policy` renders the policy's first message (MINT's, or the ``reply`` format's) and holds the
environment's wording; :mod:`mulligan.prompts.verdict` reads a good/bad verdict out of a model's
reply to a template that asks for one.
"""

from mulligan.prompts.policy import (
    EMPTY_REPLY,
    EXAMPLES,
    NO_OUTPUT,
    POLICY_TEMPLATE,
    REPEATED_ANSWER,
    REPLY_TEMPLATE,
    WRONG_ACTION,
    countdown,
    example_name,
    render_mint_prompt,
    render_reply_prompt,
    revision_countdown,
    task_text,
)
from mulligan.prompts.templates import (
    USER_MARKER,
    PromptTemplate,
    load_template,
    model_template_versions,
    template_hash,
    template_names,
    template_source,
    to_messages,
)
from mulligan.prompts.verdict import parse_binary_verdict, parse_checklist

__all__ = [
    "EMPTY_REPLY",
    "EXAMPLES",
    "NO_OUTPUT",
    "POLICY_TEMPLATE",
    "REPEATED_ANSWER",
    "REPLY_TEMPLATE",
    "USER_MARKER",
    "WRONG_ACTION",
    "PromptTemplate",
    "countdown",
    "example_name",
    "load_template",
    "model_template_versions",
    "parse_binary_verdict",
    "parse_checklist",
    "render_mint_prompt",
    "render_reply_prompt",
    "revision_countdown",
    "task_text",
    "template_hash",
    "template_names",
    "template_source",
    "to_messages",
]
