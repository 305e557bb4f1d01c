"""Feedback metrics: what the policy was told, by whom, whether it leaked, and friction.

Leak *detection* lives in ``mulligan.feedback.leak`` and is recorded on each ``FeedbackEvent``:
``leak``, the flags of the text the policy received (the *residual* leak), and ``raw_leak``, the
flags of the provider's own text before the leak guard redacted or regenerated it (the *raw*
leak: what the provider did; equal to ``leak`` under ``leak=flag``; events stored before it was
kept count their ``leak`` as raw). This module only counts those events:

- ``feedback_counts``: per provider (kind, source, saw_reference) and per kind, the messages,
  the episodes that got at least one, how many messages leaked (``leaks``: residual;
  ``raw_leaks``: raw) and how many were replayed from a recorded run; per kind also its
  friction; per source the leak audit below; ``replayed`` / ``live`` messages in all.
- ``leak_counts`` / ``leak_rate``: the leak audit per feedback ``source``: messages, residual
  leaks (``leaked``, ``by_flag``) and raw leaks (``raw_leaked``, ``raw_by_flag``), the guard's
  interventions (redacted, regenerated, gave_up) and new drafts, the messages replayed from a
  recorded run, and the solved episodes that came after one of its residual leaks.
- ``feedback_friction``: #{episodes unsolved that got qualifying feedback}
  / #{episodes that got qualifying feedback}, where qualifying feedback saw the reference
  (``saw_reference``), did not leak it (``not leak.any``), and came before the episode was
  solved (Feedback Friction's notion: the feedback knew the answer, did not give it away, and the
  model still did not get there). A ratio of sums over episodes, so its bootstrap resamples
  whole episodes (see ``mulligan.metrics.stats``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from mulligan.events import Episode, Event, Expertise, FeedbackEvent, FeedbackKind, LeakFlags
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, count_rate_estimate

# --- friction ----------------------------------------------------------------------------------


def _qualifying_feedback(
    episode: Episode, kinds: Collection[FeedbackKind] | None
) -> list[FeedbackEvent]:
    solved_at = episode.success_turn
    return [
        e
        for e in episode.events
        if isinstance(e, FeedbackEvent)
        and e.kind != "none"
        and (kinds is None or e.kind in kinds)
        and e.saw_reference
        and not e.leak.any
        # Feedback at or after the solving turn cannot have been what the model failed to use.
        and (solved_at is None or e.turn < solved_at)
    ]


def feedback_friction(
    episodes: Iterable[Episode],
    kinds: Collection[FeedbackKind] | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> Estimate:
    """Share of episodes left unsolved although they got reference-aware, non-leaking feedback.

    ``kinds`` restricts which feedback counts (e.g. ``{"textual"}`` to leave out the bare
    "Your answer is wrong." verdict, which also saw the reference); None counts every kind.
    """
    numerators: list[float] = []
    denominators: list[float] = []
    for episode in episodes:
        qualified = bool(_qualifying_feedback(episode, kinds))
        denominators.append(float(qualified))
        numerators.append(float(qualified and not episode.success))
    return count_rate_estimate(numerators, denominators, bootstrap)


# --- who gave feedback -------------------------------------------------------------------------


class ProviderCount(BaseModel):
    """Messages of one feedback provider (kind, source, saw_reference) the policy received."""

    model_config = ConfigDict(extra="forbid")

    kind: FeedbackKind
    source: str
    saw_reference: bool
    expertise: Expertise
    messages: int = 0
    episodes: int = 0
    leaks: int = 0
    raw_leaks: int = 0
    replayed: int = 0


class KindCount(BaseModel):
    """Messages of one feedback kind, and its friction (``feedback_friction`` of that kind)."""

    model_config = ConfigDict(extra="forbid")

    kind: FeedbackKind
    messages: int = 0
    episodes: int = 0
    leaks: int = 0
    raw_leaks: int = 0
    replayed: int = 0
    saw_reference: int = 0
    friction: Estimate | None = None


class SourceCount(BaseModel):
    """The leak audit of one feedback source (see ``LeakCount``): ``leaked`` / ``leak_rate`` /
    ``by_flag`` count the text the policy received, ``raw_*`` the provider's own text."""

    model_config = ConfigDict(extra="forbid")

    source: str
    messages: int
    leaked: int
    leak_rate: float
    by_flag: dict[str, int]
    solved_after_leak: int
    raw_leaked: int = 0
    raw_leak_rate: float = 0.0
    raw_by_flag: dict[str, int] = Field(default_factory=dict)
    interventions: dict[str, int] = Field(default_factory=dict)
    regenerations: int = 0
    replayed: int = 0


class FeedbackCounts(BaseModel):
    """Feedback a group of episodes got, per provider, per kind and per source (each sorted)."""

    model_config = ConfigDict(extra="forbid")

    providers: list[ProviderCount]
    kinds: list[KindCount]
    sources: list[SourceCount]
    replayed: int = 0
    live: int = 0


def _given(episode: Episode) -> Iterable[FeedbackEvent]:
    return (e for e in episode.events if isinstance(e, FeedbackEvent) and e.kind != "none")


def feedback_counts(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> FeedbackCounts:
    """Per provider and per kind: messages, episodes that got one, leaked messages (residual and
    raw), replayed messages, and each kind's friction; per source: the audit of ``leak_counts``;
    and the messages replayed from a recorded run vs produced live."""
    items = list(episodes)  # walked again for each kind's friction
    providers: dict[tuple[str, str, bool], ProviderCount] = {}
    kinds: dict[FeedbackKind, KindCount] = {}
    replayed = live = 0
    for episode in items:
        seen_providers: set[tuple[str, str, bool]] = set()
        seen_kinds: set[FeedbackKind] = set()
        for event in _given(episode):
            key = (event.kind, event.source, event.saw_reference)
            row = providers.setdefault(
                key,
                ProviderCount(
                    kind=event.kind,
                    source=event.source,
                    saw_reference=event.saw_reference,
                    expertise=event.expertise,
                ),
            )
            kind = kinds.setdefault(event.kind, KindCount(kind=event.kind))
            for counts in (row, kind):
                counts.messages += 1
                counts.leaks += event.leak.any
                counts.raw_leaks += event.original_leak.any
                counts.replayed += event.replayed_from is not None
            row.episodes += key not in seen_providers
            seen_providers.add(key)
            kind.saw_reference += event.saw_reference
            kind.episodes += event.kind not in seen_kinds
            seen_kinds.add(event.kind)
            replayed += event.replayed_from is not None
            live += event.replayed_from is None
    for name, kind in kinds.items():
        kind.friction = feedback_friction(items, {name}, bootstrap)
    return FeedbackCounts(
        providers=sorted(providers.values(), key=lambda r: (r.kind, r.source)),
        kinds=[kinds[k] for k in sorted(kinds)],
        sources=[_source_count(source, count) for source, count in leak_counts(items).items()],
        replayed=replayed,
        live=live,
    )


def _source_count(source: str, count: LeakCount) -> SourceCount:
    return SourceCount(
        source=source,
        messages=count.events,
        leaked=count.leaked,
        leak_rate=count.rate,
        by_flag=count.by_flag,
        solved_after_leak=count.solved_after_leak,
        raw_leaked=count.raw_leaked,
        raw_leak_rate=count.raw_rate,
        raw_by_flag=count.raw_by_flag,
        interventions=count.interventions,
        regenerations=count.regenerations,
        replayed=count.replayed,
    )


# --- leak audit --------------------------------------------------------------------------------


@dataclass(slots=True)
class LeakCount:
    """Feedback events of one source and their leak audit.

    ``leaked`` / ``by_flag``: events whose delivered text leaked (residual); ``raw_leaked`` /
    ``raw_by_flag``: events whose provider text leaked, before any redaction or regeneration;
    ``interventions``: events per leak-guard intervention other than none (``redacted``,
    ``regenerated``, ``gave_up``) and ``regenerations`` the new drafts asked for; ``replayed``:
    events served from a recorded run. ``solved_after_leak``: solved episodes with a residual
    leak from this source before the solving turn (such a solve may be the reference copied,
    not a second chance used).
    """

    events: int = 0
    leaked: int = 0
    by_flag: dict[str, int] = field(default_factory=dict)
    solved_after_leak: int = 0
    raw_leaked: int = 0
    raw_by_flag: dict[str, int] = field(default_factory=dict)
    interventions: dict[str, int] = field(default_factory=dict)
    regenerations: int = 0
    replayed: int = 0

    @property
    def rate(self) -> float:
        return self.leaked / self.events if self.events else 0.0

    @property
    def raw_rate(self) -> float:
        return self.raw_leaked / self.events if self.events else 0.0

    def add(self, event: FeedbackEvent) -> None:
        """Count one event of this source."""
        self.events += 1
        self.leaked += _count_flags(event.leak, self.by_flag)
        self.raw_leaked += _count_flags(event.original_leak, self.raw_by_flag)
        if event.intervention != "none":
            self.interventions[event.intervention] = (
                self.interventions.get(event.intervention, 0) + 1
            )
        self.regenerations += event.regenerations
        self.replayed += event.replayed_from is not None


def _count_flags(flags: LeakFlags, per_flag: dict[str, int]) -> bool:
    """Add ``flags``' set flags to ``per_flag``; whether any was set."""
    for name, value in flags.model_dump().items():
        if value:
            per_flag[name] = per_flag.get(name, 0) + 1
    return flags.any


def _feedback_events(items: Iterable[Event | Episode]) -> Iterable[FeedbackEvent]:
    for item in items:
        if isinstance(item, Episode):
            yield from (e for e in item.events if isinstance(e, FeedbackEvent))
        elif isinstance(item, FeedbackEvent):
            yield item


def leak_counts(items: Iterable[Event | Episode]) -> dict[str, LeakCount]:
    """Per feedback ``source``: the audit of :class:`LeakCount`; ``solved_after_leak`` only for
    episodes (bare events carry no outcome)."""
    items = list(items)  # walked twice: once for the events, once for the outcomes
    counts: dict[str, LeakCount] = {}
    for event in _feedback_events(items):
        counts.setdefault(event.source, LeakCount()).add(event)
    for episode in (item for item in items if isinstance(item, Episode)):
        solved_at = episode.success_turn
        if not episode.success or solved_at is None:
            continue
        # Feedback given at the solving turn came after the solution: it cannot have helped.
        for source in {
            e.source
            for e in episode.events
            if isinstance(e, FeedbackEvent) and e.leak.any and e.turn < solved_at
        }:
            counts[source].solved_after_leak += 1
    return dict(sorted(counts.items()))


def leak_rate(items: Iterable[Event | Episode]) -> dict[str, float]:
    """Share of feedback events that leak the reference, per provider ``source``.

    ``items`` may be events (non-feedback events are ignored) or whole episodes. Rates are
    computed from the flags recorded on the events for the text the policy received (the
    residual leak); ``LeakCount.raw_rate`` is the provider's own rate.
    """
    return {source: count.rate for source, count in leak_counts(items).items()}
