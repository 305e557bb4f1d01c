"""Model families from model names, and the check that a run grades a policy with its own kin.

A feedback or judge model of the policy's own family shares its blind spots (and its
self-preference): its agreement with the checker, and the policy's gain from its feedback, are
not what a different grader would give. :func:`shared_family` says when two roles' models are the
same model or the same family; the engine warns at run start and the report repeats it.

A family is read from the model's name: the provider prefix and any path or ``@server`` are
dropped, then the first known family name in it counts (``qwen2.5-coder-0.5b`` and
``Qwen/Qwen2.5-7B-Instruct`` are both ``qwen``), else the name's leading letters. Scripted and
replay models have no family.
"""

from __future__ import annotations

import re

KNOWN_FAMILIES: tuple[str, ...] = (
    "qwen",
    "llama",
    "mistral",
    "mixtral",
    "gemma",
    "phi",
    "deepseek",
    "smollm",
    "gpt",
    "o1",
    "o3",
    "o4",
    "claude",
    "command",
    "granite",
    "olmo",
    "yi",
    "internlm",
    "starcoder",
    "codegen",
    "falcon",
)
"""Family names recognised anywhere in a model's name, longest match first."""

_NO_FAMILY = frozenset({"scripted", "replay"})
_LEADING = re.compile(r"[a-z]+")


def model_family(name: str) -> str | None:
    """The family of ``provider/model`` (e.g. ``local/qwen2.5-coder-1.5b`` -> ``qwen``); None
    for scripted and replay models, whose answers are not a model's."""
    provider, _, rest = name.partition("/")
    if provider in _NO_FAMILY:
        return None
    base = (rest or provider).split("@", 1)[0].lower()
    stem = base.rstrip("/").rsplit("/", 1)[-1] or base
    for family in sorted(KNOWN_FAMILIES, key=len, reverse=True):
        if re.search(rf"(?:^|[^a-z]){re.escape(family)}", stem):
            return family
    found = _LEADING.search(stem)
    return found.group(0) if found else None


def shared_family(policy: str, other: str) -> str | None:
    """Why ``other`` (a feedback or judge model) is no independent grader of ``policy``: ``"same
    model"``, ``"same family (<name>)"``, or None when they differ."""
    if model_family(policy) is None or model_family(other) is None:
        return None
    if policy == other:
        return "same model"
    family = model_family(policy)
    return f"same family ({family})" if family == model_family(other) else None


def role_overlap_warnings(policy: str, roles: dict[str, str | None]) -> list[str]:
    """One line per role (``feedback``, ``judge``) whose model is the policy's or of its
    family, saying what it biases."""
    lines = []
    for role, model in roles.items():
        if model is None:
            continue
        why = shared_family(policy, model)
        if why is not None:
            lines.append(
                f"{role} model {model} and policy {policy}: {why}; its verdicts and feedback "
                "may share the policy's blind spots and favour its answers"
            )
    return lines
