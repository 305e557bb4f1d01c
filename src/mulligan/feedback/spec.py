"""Feedback specs: the grammar, the registry of kinds, and building a provider chain.

Grammar::

    spec    := "replay:" RUN_DIR  |  part ("+" part)*
    part    := KIND (":" option)*
    option  := FLAG  |  KEY "=" VALUE

Parts run in order after every action; later providers see earlier providers' events. Examples:
``none``, ``binary``, ``unary``, ``tests:partial``, ``tests:share=0.25``, ``llm``,
``llm:no-reference:novice``, ``llm:binary``, ``llm:persona=busy``, ``critic``, ``checklist``,
``self``, ``tests+llm:expert``, ``binary+llm:no-reference``, ``llm:leak=regenerate:regen=3``.
Every part also accepts ``leak=flag|redact|regenerate`` and ``regen=N`` (see
:class:`~mulligan.feedback.leak.LeakPolicy`).

MINT's settings by name: its "no feedback" setting is ``binary`` (it says "Your answer is
wrong."), its "with feedback" setting is ``binary+llm`` (that line plus a simulated user that
sees the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from mulligan.feedback.base import FeedbackProvider
from mulligan.feedback.binary import BinaryFeedback
from mulligan.feedback.checklist import ChecklistFeedback
from mulligan.feedback.critic import CritiqueFeedback
from mulligan.feedback.leak import LEAK_MODES, LeakGuardedFeedback, LeakMode, LeakPolicy
from mulligan.feedback.llm import PERSONAS, SimulatedUserFeedback
from mulligan.feedback.none import NoFeedback
from mulligan.feedback.replay import ReplayIndex, replay_chain
from mulligan.feedback.self_critique import SelfFeedback
from mulligan.feedback.testcases import COVERAGES, Coverage
from mulligan.feedback.unary import UnaryFeedback
from mulligan.feedback.unit_tests import UnitTestFeedback
from mulligan.models.base import Model

Need = Literal["feedback_model", "policy_model", "runner"]
REPLAY_PREFIX = "replay:"

# Option groups: within a group at most one flag may be given (``llm:novice:expert`` is an error).
_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "unary": {"phrasing": ("fixed",)},
    "tests": {"coverage": COVERAGES, "cells": ("cells",)},
    "llm": {
        "reference": ("reference", "no-reference"),
        "form": ("textual", "binary"),
        "expertise": ("novice", "expert"),
    },
    "critic": {"reference": ("reference", "no-reference")},
    "checklist": {"reference": ("reference", "no-reference")},
}
_KEYS: dict[str, tuple[str, ...]] = {
    "tests": ("share", "timeout"),
    "llm": ("persona",),
}
_COMMON_KEYS: tuple[str, ...] = ("leak", "regen")


@dataclass(frozen=True, slots=True)
class FeedbackPart:
    """One ``+``-separated part of a spec: a kind, its flags by group, and its key=value options."""

    kind: str
    flags: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, str] = field(default_factory=dict)
    text: str = ""

    def flag(self, group: str, default: str) -> str:
        return self.flags.get(group, default)


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What ``mulligan feedback list`` says about a kind."""

    kind: str
    shows: str
    sees_reference: str
    options: tuple[str, ...]
    needs: tuple[Need, ...]
    build: Callable[[FeedbackPart, Model | None, Model | None], FeedbackProvider]


def _need(model: Model | None, what: str, part: FeedbackPart) -> Model:
    if model is None:
        raise ValueError(
            f"feedback {part.text!r} needs a {what} model; pass "
            f"{'feedback_model' if what == 'feedback' else 'policy_model'}= to get_feedback"
        )
    return model


def _reference(part: FeedbackPart, default: bool) -> bool:
    return part.flag("reference", "reference" if default else "no-reference") == "reference"


def _build_tests(part: FeedbackPart, _f: Model | None, _p: Model | None) -> FeedbackProvider:
    share_text = part.values.get("share")
    coverage = part.flag("coverage", "partial" if share_text else "full")
    if share_text is not None and coverage != "partial":
        raise ValueError(f"feedback {part.text!r}: share= goes with partial coverage only")
    share = _number(part, "share", 0.5)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"feedback {part.text!r}: share must be in (0, 1], got {share}")
    return UnitTestFeedback(
        cast(Coverage, coverage),
        share=share,
        cells="cells" in part.flags,
        test_timeout_s=_number(part, "timeout", 5.0),
    )


def _build_llm(part: FeedbackPart, feedback: Model | None, _p: Model | None) -> FeedbackProvider:
    verdict = part.flag("form", "textual") == "binary"
    if verdict and "expertise" in part.flags:
        raise ValueError(
            f"feedback {part.text!r}: a binary verdict has no expertise level; "
            "drop novice/expert or use textual feedback"
        )
    persona = part.values.get("persona")
    if persona is not None and persona not in PERSONAS:
        raise ValueError(
            f"feedback {part.text!r}: unknown persona {persona!r}; known: "
            f"{', '.join(sorted(PERSONAS))} (pass any other text to SimulatedUserFeedback)"
        )
    return SimulatedUserFeedback(
        _need(feedback, "feedback", part),
        reference=_reference(part, True),
        verdict=verdict,
        expertise="novice" if part.flag("expertise", "expert") == "novice" else "expert",
        persona=persona,
    )


def _number(part: FeedbackPart, key: str, default: float) -> float:
    text = part.values.get(key)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"feedback {part.text!r}: {key}= needs a number, got {text!r}") from None


FEEDBACK_PROVIDERS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            "none",
            "nothing at all, not even a verdict",
            "never",
            (),
            (),
            lambda part, f, p: NoFeedback(),
        ),
        KindInfo(
            "unary",
            "'Let's try again.'-style text after a wrong proposal only",
            "conditioned on the checker's verdict (the same bit as binary)",
            ("fixed",),
            (),
            lambda part, f, p: UnaryFeedback(fixed="phrasing" in part.flags),
        ),
        KindInfo(
            "binary",
            "'Your answer is wrong.' after a wrong proposal (MINT's exact wording)",
            "conditioned on the checker's verdict",
            (),
            (),
            lambda part, f, p: BinaryFeedback(),
        ),
        KindInfo(
            "tests",
            "compile errors, then failing unit tests with input, expected and actual values "
            "(code tasks)",
            "yes: runs the task's unit tests (not with coverage none)",
            ("full", "partial", "none", "share=<0..1>", "cells", "timeout=<seconds>"),
            ("runner",),
            _build_tests,
        ),
        KindInfo(
            "llm",
            "a simulated user's natural-language feedback, or its good/bad verdict",
            "by default (MINT); no-reference hides it",
            (
                "reference",
                "no-reference",
                "textual",
                "binary",
                "expert",
                "novice",
                f"persona=<{'|'.join(sorted(PERSONAS))}>",
            ),
            ("feedback_model",),
            _build_llm,
        ),
        KindInfo(
            "critic",
            "the first wrong step of the latest turn and why",
            "by default; no-reference hides it",
            ("reference", "no-reference"),
            ("feedback_model",),
            lambda part, f, p: CritiqueFeedback(
                _need(f, "feedback", part), reference=_reference(part, True)
            ),
        ),
        KindInfo(
            "checklist",
            "the task's checklist items, each satisfied or not (tasks with "
            "metadata['checklist'] only)",
            "only with the reference option",
            ("no-reference", "reference"),
            ("feedback_model",),
            lambda part, f, p: ChecklistFeedback(
                _need(f, "feedback", part), reference=_reference(part, False)
            ),
        ),
        KindInfo(
            "self",
            "the policy's own critique of its latest proposal (self-refinement baseline)",
            "never",
            (),
            ("policy_model",),
            lambda part, f, p: SelfFeedback(_need(p, "policy", part)),
        ),
    )
}
"""Every feedback kind by name."""


def _known_kinds() -> str:
    return ", ".join([*FEEDBACK_PROVIDERS, "replay:<run-dir>"])


def _parse_part(text: str, spec: str) -> FeedbackPart:
    pieces = [p.strip() for p in text.split(":")]
    kind = pieces[0]
    if kind not in FEEDBACK_PROVIDERS:
        raise ValueError(f"unknown feedback kind {kind!r} in {spec!r}; known: {_known_kinds()}")
    groups = _GROUPS.get(kind, {})
    keys = (*_KEYS.get(kind, ()), *_COMMON_KEYS)
    flags: dict[str, str] = {}
    values: dict[str, str] = {}
    for option in pieces[1:]:
        if "=" in option:
            key, _, value = option.partition("=")
            key, value = key.strip(), value.strip()
            if key not in keys or not value:
                raise ValueError(_bad_option(option, kind, spec))
            if key in values:
                raise ValueError(f"option {key}= given twice for {kind!r} in {spec!r}")
            values[key] = value
            continue
        group = next((g for g, choices in groups.items() if option in choices), None)
        if group is None:
            raise ValueError(_bad_option(option, kind, spec))
        if group in flags and flags[group] != option:
            raise ValueError(
                f"options {flags[group]!r} and {option!r} of {kind!r} in {spec!r} "
                "contradict each other; choose one"
            )
        flags[group] = option
    if "leak" in values and values["leak"] not in LEAK_MODES:
        raise ValueError(
            f"leak={values['leak']!r} in {spec!r}; choose one of {', '.join(LEAK_MODES)}"
        )
    if "regen" in values and not values["regen"].isdigit():
        raise ValueError(f"regen={values['regen']!r} in {spec!r} must be a whole number")
    return FeedbackPart(kind=kind, flags=flags, values=values, text=text)


def _bad_option(option: str, kind: str, spec: str) -> str:
    known = [*FEEDBACK_PROVIDERS[kind].options, "leak=<flag|redact|regenerate>", "regen=<N>"]
    return (
        f"unknown option {option!r} for feedback kind {kind!r} in {spec!r}; "
        f"options of {kind}: {', '.join(known)}"
    )


def parse_feedback_spec(spec: str) -> tuple[FeedbackPart, ...]:
    """The parts of a spec, validated (raises ValueError naming the spec and the known ones).

    A ``replay:`` spec parses to one part of kind ``replay`` whose ``values['run_dir']`` is the
    directory; its live chain comes from that run's manifest when it is built.
    """
    text = spec.strip()
    if text.startswith(REPLAY_PREFIX):
        run_dir = text[len(REPLAY_PREFIX) :].strip()
        if not run_dir:
            raise ValueError(f"feedback {spec!r}: replay needs a run directory, replay:<run-dir>")
        return (FeedbackPart(kind="replay", values={"run_dir": run_dir}, text=text),)
    parts = [p.strip() for p in text.split("+")]
    if not text or any(not p for p in parts):
        raise ValueError(
            f"feedback spec {spec!r} has an empty part; write kinds joined by '+', "
            f"e.g. 'tests+llm:expert' (known: {_known_kinds()})"
        )
    return tuple(_parse_part(p, spec) for p in parts)


def feedback_needs(spec: str) -> set[Need]:
    """What building and running a spec requires (models, a code runner); replay: nothing known
    until its run is read."""
    needs: set[Need] = set()
    for part in parse_feedback_spec(spec):
        if part.kind in FEEDBACK_PROVIDERS:
            needs.update(FEEDBACK_PROVIDERS[part.kind].needs)
    return needs


def get_feedback(
    spec: str,
    feedback_model: Model | None = None,
    policy_model: Model | None = None,
    *,
    leak: LeakMode | LeakPolicy = "flag",
) -> list[FeedbackProvider]:
    """The ordered provider chain for a spec (see the module docstring for the grammar).

    Args:
        spec: e.g. ``"tests+llm:expert"``.
        feedback_model: the model behind ``llm``, ``critic`` and ``checklist``.
        policy_model: the policy, for ``self``.
        leak: what to do when feedback leaks the reference (default: record it); a part's own
            ``leak=`` / ``regen=`` options override it.

    Every provider except ``none`` is wrapped in a :class:`LeakGuardedFeedback`, so its events
    carry leak flags. ``none`` composed with other kinds is dropped.
    """
    base = leak if isinstance(leak, LeakPolicy) else LeakPolicy(mode=leak)
    parts = parse_feedback_spec(spec)
    if parts[0].kind == "replay":
        index = ReplayIndex(parts[0].values["run_dir"])
        if not index.feedback_spec:
            raise ValueError(
                f"feedback {spec!r}: the run in {index.run_dir} records no feedback spec to "
                "fall back on"
            )
        live = get_feedback(index.feedback_spec, feedback_model, policy_model, leak=base)
        return replay_chain(index, live)
    providers: list[FeedbackProvider] = []
    for part in parts:
        provider = FEEDBACK_PROVIDERS[part.kind].build(part, feedback_model, policy_model)
        if isinstance(provider, NoFeedback):
            providers.append(provider)
            continue
        policy = LeakPolicy(
            mode=cast(LeakMode, part.values.get("leak", base.mode)),
            max_regenerations=int(part.values.get("regen", base.max_regenerations)),
            code_threshold=base.code_threshold,
        )
        providers.append(LeakGuardedFeedback(provider, policy))
    return [p for p in providers if p.name != "none"] if len(providers) > 1 else providers


def describe_feedback_kinds() -> list[dict[str, Any]]:
    """One entry per kind, for ``mulligan feedback list``.

    Keys: ``kind``, ``options`` (list), ``shows`` (what the policy is told), ``sees_reference``
    (whether and when the provider may see the ground truth) and ``needs`` (models, sandbox).
    """
    rows: list[dict[str, Any]] = [
        {
            "kind": info.kind,
            "options": [
                *info.options,
                *(["leak=<mode>", "regen=<N>"] if info.kind != "none" else []),
            ],
            "shows": info.shows,
            "sees_reference": info.sees_reference,
            "needs": list(info.needs),
        }
        for info in FEEDBACK_PROVIDERS.values()
    ]
    rows.append(
        {
            "kind": "replay:<run-dir>",
            "options": [],
            "shows": "the feedback recorded in an earlier run wherever the policy repeats its "
            "actions; that run's feedback spec, live, elsewhere",
            "sees_reference": "as the recorded run's providers",
            "needs": [],
        }
    )
    return rows
