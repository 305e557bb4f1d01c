"""Feedback providers: what the policy is told after it acts, with provenance.

Build a chain from a spec with :func:`get_feedback` (``"tests+llm:expert"``, or a
:class:`FeedbackSpec` parsed once; grammar in :mod:`mulligan.feedback.spec`), list the kinds with
:func:`describe_feedback_kinds`, add one with :func:`register_feedback_kind`, and detect leaks
with :func:`find_leaks` (counting them is ``mulligan.metrics.leak_counts``).
"""

from __future__ import annotations

from mulligan.feedback.base import FeedbackContext, FeedbackProvider, RevisableFeedback
from mulligan.feedback.binary import BinaryFeedback
from mulligan.feedback.challenge import ChallengeFeedback
from mulligan.feedback.checklist import ChecklistFeedback
from mulligan.feedback.critic import CritiqueFeedback
from mulligan.feedback.leak import (
    LeakGuardedFeedback,
    LeakMode,
    LeakPolicy,
    LeakReport,
    detect_leak,
    find_leaks,
    redact,
)
from mulligan.feedback.llm import PERSONAS, SimulatedUserFeedback
from mulligan.feedback.model_feedback import ModelFeedback
from mulligan.feedback.none import NoFeedback
from mulligan.feedback.replay import ReplayedFeedback, ReplayError, ReplayIndex, replay_chain
from mulligan.feedback.self_critique import SelfFeedback
from mulligan.feedback.spec import (
    FEEDBACK_PROVIDERS,
    FeedbackPart,
    FeedbackSpec,
    Flags,
    KindInfo,
    Value,
    describe_feedback_kinds,
    feedback_needs,
    get_feedback,
    parse_feedback_spec,
    register_feedback_kind,
    verdict_parts,
)
from mulligan.feedback.templates import FeedbackTemplate, load_template, template_versions
from mulligan.feedback.unary import UnaryFeedback
from mulligan.feedback.unit_tests import MissingCodeRunner, UnitTestFeedback
from mulligan.prompts.verdict import parse_binary_verdict

__all__ = [
    "FEEDBACK_PROVIDERS",
    "PERSONAS",
    "BinaryFeedback",
    "ChallengeFeedback",
    "ChecklistFeedback",
    "CritiqueFeedback",
    "FeedbackContext",
    "FeedbackPart",
    "FeedbackProvider",
    "FeedbackSpec",
    "FeedbackTemplate",
    "Flags",
    "KindInfo",
    "LeakGuardedFeedback",
    "LeakMode",
    "LeakPolicy",
    "LeakReport",
    "MissingCodeRunner",
    "ModelFeedback",
    "NoFeedback",
    "ReplayError",
    "ReplayIndex",
    "ReplayedFeedback",
    "RevisableFeedback",
    "SelfFeedback",
    "SimulatedUserFeedback",
    "UnaryFeedback",
    "UnitTestFeedback",
    "Value",
    "describe_feedback_kinds",
    "detect_leak",
    "feedback_needs",
    "find_leaks",
    "get_feedback",
    "load_template",
    "parse_binary_verdict",
    "parse_feedback_spec",
    "redact",
    "register_feedback_kind",
    "replay_chain",
    "template_versions",
    "verdict_parts",
]
