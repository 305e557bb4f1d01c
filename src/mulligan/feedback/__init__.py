"""Feedback providers: what the policy is told after it acts, with provenance."""

from __future__ import annotations

from mulligan.feedback.base import FeedbackContext, FeedbackProvider
from mulligan.feedback.binary import BinaryFeedback
from mulligan.feedback.none import NoFeedback

FEEDBACK_PROVIDERS: dict[str, type[NoFeedback] | type[BinaryFeedback]] = {
    "none": NoFeedback,
    "binary": BinaryFeedback,
}


def get_feedback(spec: str) -> list[FeedbackProvider]:
    """Providers for a spec such as ``none`` or ``binary`` (``+`` composes them in order)."""
    providers: list[FeedbackProvider] = []
    for part in spec.split("+"):
        name = part.strip()
        if name not in FEEDBACK_PROVIDERS:
            known = ", ".join(sorted(FEEDBACK_PROVIDERS))
            raise ValueError(f"unknown feedback kind {name!r} in {spec!r}; known: {known}")
        providers.append(FEEDBACK_PROVIDERS[name]())
    return [p for p in providers if p.name != "none"] if len(providers) > 1 else providers


__all__ = [
    "FEEDBACK_PROVIDERS",
    "BinaryFeedback",
    "FeedbackContext",
    "FeedbackProvider",
    "NoFeedback",
    "get_feedback",
]
