"""Feedback specs: the grammar, the registry of kinds, the parsed spec, and building a chain.

Grammar::

    spec    := "replay:" RUN_DIR  |  part ("+" part)*
    part    := KIND (":" option)*
    option  := FLAG  |  KEY "=" VALUE

Parts run in order after every action; later providers see earlier providers' events. Examples:
``none``, ``binary``, ``unary``, ``tests:partial``, ``tests:share=0.25``, ``llm``,
``llm:no-reference:novice``, ``llm:binary``, ``llm:persona=busy``, ``critic``, ``checklist``,
``self``, ``tests+llm:expert``, ``binary+llm:no-reference``, ``llm:leak=regenerate:regen=3``,
``challenge``, ``challenge:right:indirect``, ``challenge:none``.
Every part also accepts ``leak=flag|redact|regenerate`` and ``regen=N`` (see
:class:`~mulligan.feedback.leak.LeakPolicy`).

A spec is parsed once, into a :class:`FeedbackSpec` (``RunConfig.feedback`` holds one); it
serialises back to its text, so config hashes and stored manifests hold the spec as written.

Spec kinds and the ``FeedbackEvent.kind`` values their providers produce (``KindInfo.events``):

============  =====================================
spec kind     event kinds
============  =====================================
none          none (it never emits an event)
unary         unary
binary        binary
tests         tests
llm           textual, or binary with ``llm:binary``
critic        critique
checklist     checklist
self          self
challenge     challenge
replay:DIR    those of the recorded run's spec
============  =====================================

A new kind is one :class:`KindInfo` passed to :func:`register_feedback_kind`.

MINT's settings by name: its "no feedback" setting is ``binary`` (it says "Your answer is
wrong."), its "with feedback" setting is ``binary+llm`` (that line plus a simulated user that
sees the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from mulligan.events import FeedbackKind
from mulligan.feedback.base import FeedbackProvider
from mulligan.feedback.binary import BinaryFeedback
from mulligan.feedback.challenge import CLAIMS, STYLES, ChallengeFeedback, ClaimMode, Style
from mulligan.feedback.checklist import ChecklistFeedback
from mulligan.feedback.critic import CritiqueFeedback
from mulligan.feedback.leak import LEAK_MODES, LeakGuardedFeedback, LeakMode, LeakPolicy
from mulligan.feedback.llm import PERSONAS, SimulatedUserFeedback
from mulligan.feedback.none import NoFeedback
from mulligan.feedback.replay import REPLAY_KIND, ReplayIndex, replay_chain
from mulligan.feedback.self_critique import SelfFeedback
from mulligan.feedback.testcases import COVERAGES, Coverage
from mulligan.feedback.unary import UnaryFeedback
from mulligan.feedback.unit_tests import UnitTestFeedback
from mulligan.models.base import Model

Need = Literal["feedback_model", "policy_model", "runner"]
REPLAY_PREFIX = f"{REPLAY_KIND}:"


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
class Flags:
    """A group of flags of which a part may give at most one (``llm:novice:expert`` is an error).

    List the default first: ``mulligan feedback list`` shows the choices in this order.
    """

    group: str
    choices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Value:
    """A ``key=value`` option; ``placeholder`` says what the value is (``<0..1>``)."""

    key: str
    placeholder: str


Option = Flags | Value
Builder = Callable[[FeedbackPart, Model | None, Model | None], FeedbackProvider]

# Options every kind but ``none`` accepts: how its provider's leaks are handled.
COMMON_OPTIONS: tuple[Value, ...] = (
    Value("leak", f"<{'|'.join(LEAK_MODES)}>"),
    Value("regen", "<N>"),
)


@dataclass(frozen=True, slots=True)
class KindInfo:
    """A feedback kind: how to build its provider from a part, the options it accepts, what it
    needs, the event kinds it produces, and what ``mulligan feedback list`` says about it.

    Attributes:
        kind: the name in specs.
        shows: what the policy is told.
        sees_reference: whether and when the provider may see the ground truth.
        options: the flags and ``key=value`` options, in the order they are listed.
        needs: models and a code runner the provider needs.
        build: ``build(part, feedback_model, policy_model)`` -> the provider (raises ValueError
            on options that do not go together).
        events: the ``FeedbackEvent.kind`` values its provider produces.
        reveals_verdict: ``reveals_verdict(part)``: whether the part's feedback depends on the
            checker's verdict of the latest proposal (given after wrong ones only, or written
            with the reference in view). Under ``--stop never`` only such parts tell the policy
            whether it was right; a test checks every other kind's text and timing against it.
    """

    kind: str
    shows: str
    sees_reference: str
    options: tuple[Option, ...]
    needs: tuple[Need, ...]
    build: Builder
    events: tuple[FeedbackKind, ...]
    reveals_verdict: Callable[[FeedbackPart], bool] = lambda part: False

    def option_names(self) -> tuple[str, ...]:
        """The options as listed: each flag, and ``key=<placeholder>``."""
        out: list[str] = []
        for option in self.options:
            if isinstance(option, Flags):
                out.extend(option.choices)
            else:
                out.append(f"{option.key}={option.placeholder}")
        return tuple(out)

    def flag_group(self, flag: str) -> str | None:
        """The group a flag belongs to, or None if this kind has no such flag."""
        return next(
            (o.group for o in self.options if isinstance(o, Flags) and flag in o.choices), None
        )

    def keys(self) -> tuple[str, ...]:
        """The ``key=`` options this kind accepts, the common ones included."""
        return tuple(o.key for o in (*self.options, *COMMON_OPTIONS) if isinstance(o, Value))


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


_REFERENCE = Flags("reference", ("reference", "no-reference"))

FEEDBACK_PROVIDERS: dict[str, KindInfo] = {}
"""Every feedback kind by name (add one with :func:`register_feedback_kind`)."""


def register_feedback_kind(info: KindInfo, *, replace: bool = False) -> None:
    """Make ``info.kind`` usable in feedback specs (and listed by ``mulligan feedback list``).

    Raises ValueError for a name the grammar cannot hold, or one already registered unless
    ``replace`` is true.
    """
    name = info.kind
    if not name or name != name.strip() or any(c in name for c in ":+=") or name == REPLAY_KIND:
        raise ValueError(f"feedback kind name {name!r} is not usable in a spec")
    if name in FEEDBACK_PROVIDERS and not replace:
        raise ValueError(f"feedback kind {name!r} is already registered")
    if not info.events:
        raise ValueError(f"feedback kind {name!r} must name the event kinds it produces")
    FEEDBACK_PROVIDERS[name] = info


for _info in (
    KindInfo(
        "none",
        "nothing at all, not even a verdict",
        "never",
        (),
        (),
        lambda part, f, p: NoFeedback(),
        events=("none",),
    ),
    KindInfo(
        "unary",
        "'Let's try again.'-style text after a wrong proposal only",
        "conditioned on the checker's verdict (the same bit as binary)",
        (Flags("phrasing", ("fixed",)),),
        (),
        lambda part, f, p: UnaryFeedback(fixed="phrasing" in part.flags),
        events=("unary",),
        reveals_verdict=lambda part: True,
    ),
    KindInfo(
        "binary",
        "'Your answer is wrong.' after a wrong proposal (MINT's exact wording)",
        "conditioned on the checker's verdict",
        (),
        (),
        lambda part, f, p: BinaryFeedback(),
        events=("binary",),
        reveals_verdict=lambda part: True,
    ),
    KindInfo(
        "tests",
        "compile errors, then failing unit tests with input, expected and actual values "
        "(code tasks)",
        "yes: runs the task's unit tests (not with coverage none)",
        (
            Flags("coverage", COVERAGES),
            Value("share", "<0..1>"),
            Flags("cells", ("cells",)),
            Value("timeout", "<seconds>"),
        ),
        ("runner",),
        _build_tests,
        events=("tests",),
        reveals_verdict=lambda part: True,  # failing tests, and silence once they pass
    ),
    KindInfo(
        "llm",
        "a simulated user's natural-language feedback, or its good/bad verdict",
        "by default (MINT); no-reference hides it",
        (
            _REFERENCE,
            Flags("form", ("textual", "binary")),
            Flags("expertise", ("expert", "novice")),
            Value("persona", f"<{'|'.join(sorted(PERSONAS))}>"),
        ),
        ("feedback_model",),
        _build_llm,
        events=("textual", "binary"),
        reveals_verdict=lambda part: _reference(part, True),
    ),
    KindInfo(
        "critic",
        "the first wrong step of the latest turn and why",
        "by default; no-reference hides it",
        (_REFERENCE,),
        ("feedback_model",),
        lambda part, f, p: CritiqueFeedback(
            _need(f, "feedback", part), reference=_reference(part, True)
        ),
        events=("critique",),
        reveals_verdict=lambda part: _reference(part, True),
    ),
    KindInfo(
        "checklist",
        "the task's checklist items, each satisfied or not (tasks with a checklist only)",
        "only with the reference option",
        (Flags("reference", ("no-reference", "reference")),),
        ("feedback_model",),
        lambda part, f, p: ChecklistFeedback(
            _need(f, "feedback", part), reference=_reference(part, False)
        ),
        events=("checklist",),
        reveals_verdict=lambda part: _reference(part, False),
    ),
    KindInfo(
        "self",
        "the policy's own critique of its latest proposal (self-refinement baseline)",
        "never",
        (),
        ("policy_model",),
        lambda part, f, p: SelfFeedback(_need(p, "policy", part)),
        events=("self",),
    ),
    KindInfo(
        "challenge",
        "'Are you sure? I think the answer is X.' after every proposal (sycophancy), X wrong "
        "(default), right or none; direct or indirect",
        "builds X from the reference (see feedback/challenge.py)",
        (Flags("claim", CLAIMS), Flags("style", STYLES)),
        (),
        lambda part, f, p: ChallengeFeedback(
            cast(ClaimMode, part.flag("claim", "wrong")), cast(Style, part.flag("style", "direct"))
        ),
        events=("challenge",),
        reveals_verdict=lambda part: part.flag("claim", "wrong") == "right",
    ),
):
    register_feedback_kind(_info)


def verdict_parts(spec: str | FeedbackSpec) -> list[str]:
    """The parts of ``spec`` whose feedback reveals the checker's verdict (``KindInfo
    .reveals_verdict``); a replay spec reveals what its recorded run's did (not known here)."""
    parsed = FeedbackSpec.parse(spec)
    return [
        part.text
        for part in parsed.parts
        if part.kind in FEEDBACK_PROVIDERS and FEEDBACK_PROVIDERS[part.kind].reveals_verdict(part)
    ]


def _known_kinds() -> str:
    return ", ".join([*FEEDBACK_PROVIDERS, f"{REPLAY_PREFIX}<run-dir>"])


def _parse_part(text: str, spec: str) -> FeedbackPart:
    pieces = [p.strip() for p in text.split(":")]
    kind = pieces[0]
    info = FEEDBACK_PROVIDERS.get(kind)
    if info is None:
        raise ValueError(f"unknown feedback kind {kind!r} in {spec!r}; known: {_known_kinds()}")
    keys = info.keys()
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
        group = info.flag_group(option)
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
    common = [f"{o.key}={o.placeholder}" for o in COMMON_OPTIONS]
    known = [*FEEDBACK_PROVIDERS[kind].option_names(), *common]
    return (
        f"unknown option {option!r} for feedback kind {kind!r} in {spec!r}; "
        f"options of {kind}: {', '.join(known)}"
    )


def _parse(spec: str) -> tuple[FeedbackPart, ...]:
    text = spec.strip()
    if text.startswith(REPLAY_PREFIX):
        run_dir = text[len(REPLAY_PREFIX) :].strip()
        if not run_dir:
            raise ValueError(f"feedback {spec!r}: replay needs a run directory, replay:<run-dir>")
        return (FeedbackPart(kind=REPLAY_KIND, values={"run_dir": run_dir}, text=text),)
    parts = [p.strip() for p in text.split("+")]
    if not text or any(not p for p in parts):
        raise ValueError(
            f"feedback spec {spec!r} has an empty part; write kinds joined by '+', "
            f"e.g. 'tests+llm:expert' (known: {_known_kinds()})"
        )
    return tuple(_parse_part(p, spec) for p in parts)


@dataclass(frozen=True, slots=True, eq=False)
class FeedbackSpec:
    """A parsed, validated feedback spec; build one with :meth:`parse`.

    It keeps the text as written: ``str(spec)`` and its pydantic serialisation give that text
    back, so a config that holds one hashes and stores exactly as the plain string did. Two
    specs are equal when their texts are.

    Attributes:
        text: the spec as written.
        parts: its parts in order (one part of kind ``replay`` for ``replay:<run-dir>``).
    """

    text: str
    parts: tuple[FeedbackPart, ...]

    @classmethod
    def parse(cls, spec: str | FeedbackSpec) -> FeedbackSpec:
        """Parse ``spec`` (raises ValueError naming the spec and the known kinds)."""
        if isinstance(spec, FeedbackSpec):
            return spec
        return cls(text=spec, parts=_parse(spec))

    @property
    def replay_dir(self) -> Path | None:
        """The recorded run's directory of a ``replay:`` spec, else None."""
        first = self.parts[0]
        return Path(first.values["run_dir"]) if first.kind == REPLAY_KIND else None

    def needs(self) -> set[Need]:
        """What building and running the spec requires (models, a code runner); for a replay
        spec nothing is known until its run is read."""
        needs: set[Need] = set()
        for part in self.parts:
            if part.kind in FEEDBACK_PROVIDERS:
                needs.update(FEEDBACK_PROVIDERS[part.kind].needs)
        return needs

    def __iter__(self) -> Iterator[FeedbackPart]:
        return iter(self.parts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"FeedbackSpec({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeedbackSpec) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Validates from the text (or an already parsed spec) and serialises back to the text.
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def parse_feedback_spec(spec: str | FeedbackSpec) -> tuple[FeedbackPart, ...]:
    """The parts of a spec, validated (raises ValueError naming the spec and the known ones).

    A ``replay:`` spec parses to one part of kind ``replay`` whose ``values['run_dir']`` is the
    directory; its live chain comes from that run's manifest when it is built.
    """
    return FeedbackSpec.parse(spec).parts


def feedback_needs(spec: str | FeedbackSpec) -> set[Need]:
    """What building and running a spec requires (models, a code runner); replay: nothing known
    until its run is read."""
    return FeedbackSpec.parse(spec).needs()


def get_feedback(
    spec: str | FeedbackSpec,
    feedback_model: Model | None = None,
    policy_model: Model | None = None,
    *,
    leak: LeakMode | LeakPolicy = "flag",
) -> list[FeedbackProvider]:
    """The ordered provider chain for a spec (see the module docstring for the grammar).

    Args:
        spec: e.g. ``"tests+llm:expert"``, or a parsed :class:`FeedbackSpec`.
        feedback_model: the model behind ``llm``, ``critic`` and ``checklist``.
        policy_model: the policy, for ``self``.
        leak: what to do when feedback leaks the reference (default: record it); a part's own
            ``leak=`` / ``regen=`` options override it.

    Every provider except ``none`` is wrapped in a :class:`LeakGuardedFeedback`, so its events
    carry leak flags. ``none`` composed with other kinds is dropped.
    """
    base = leak if isinstance(leak, LeakPolicy) else LeakPolicy(mode=leak)
    parsed = FeedbackSpec.parse(spec)
    if parsed.replay_dir is not None:
        index = ReplayIndex(parsed.replay_dir)
        if not index.feedback_spec:
            raise ValueError(
                f"feedback {parsed.text!r}: the run in {index.run_dir} records no feedback spec "
                "to fall back on"
            )
        live = get_feedback(index.feedback_spec, feedback_model, policy_model, leak=base)
        return replay_chain(index, live)
    providers: list[FeedbackProvider] = []
    for part in parsed.parts:
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
                *info.option_names(),
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
            "kind": f"{REPLAY_PREFIX}<run-dir>",
            "options": [],
            "shows": "the feedback recorded in an earlier run wherever the policy repeats its "
            "actions; that run's feedback spec, live, elsewhere",
            "sees_reference": "as the recorded run's providers",
            "needs": [],
        }
    )
    return rows
