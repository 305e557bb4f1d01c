"""Feedback metrics: what the policy was told, by whom, whether it leaked, and friction.

Leak *detection* lives in ``mulligan.feedback.leak`` and is recorded on each ``FeedbackEvent``
(``leak``, the flags of the text the policy received); this module only counts those events:

- ``feedback_counts``: per provider (kind, source, saw_reference) and per kind, the messages,
  the episodes that got at least one, and how many messages leaked; per kind also its friction;
  per source the leak audit below.
- ``leak_counts`` / ``leak_rate``: the leak audit per feedback ``source``: messages, leaked
  messages, a count per leak flag, and the solved episodes that came after one of its leaks.
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

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode, Event, Expertise, FeedbackEvent, FeedbackKind
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, ratio_estimate

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
    return ratio_estimate(numerators, denominators, bootstrap)


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


class KindCount(BaseModel):
    """Messages of one feedback kind, and its friction (``feedback_friction`` of that kind)."""

    model_config = ConfigDict(extra="forbid")

    kind: FeedbackKind
    messages: int = 0
    episodes: int = 0
    leaks: int = 0
    saw_reference: int = 0
    friction: Estimate | None = None


class SourceCount(BaseModel):
    """The leak audit of one feedback source (see ``LeakCount``); ``leak_rate`` = leaked/messages."""

    model_config = ConfigDict(extra="forbid")

    source: str
    messages: int
    leaked: int
    leak_rate: float
    by_flag: dict[str, int]
    solved_after_leak: int


class FeedbackCounts(BaseModel):
    """Feedback a group of episodes got, per provider, per kind and per source (each sorted)."""

    model_config = ConfigDict(extra="forbid")

    providers: list[ProviderCount]
    kinds: list[KindCount]
    sources: list[SourceCount]


def _given(episode: Episode) -> Iterable[FeedbackEvent]:
    return (e for e in episode.events if isinstance(e, FeedbackEvent) and e.kind != "none")


def feedback_counts(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> FeedbackCounts:
    """Per provider and per kind: messages, episodes that got one, leaked messages, and each
    kind's friction; per source: the leak audit of ``leak_counts``."""
    items = list(episodes)  # walked again for each kind's friction
    providers: dict[tuple[str, str, bool], ProviderCount] = {}
    kinds: dict[FeedbackKind, KindCount] = {}
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
            row.messages += 1
            row.leaks += event.leak.any
            row.episodes += key not in seen_providers
            seen_providers.add(key)
            kind = kinds.setdefault(event.kind, KindCount(kind=event.kind))
            kind.messages += 1
            kind.leaks += event.leak.any
            kind.saw_reference += event.saw_reference
            kind.episodes += event.kind not in seen_kinds
            seen_kinds.add(event.kind)
    for name, kind in kinds.items():
        kind.friction = feedback_friction(items, {name}, bootstrap)
    return FeedbackCounts(
        providers=sorted(providers.values(), key=lambda r: (r.kind, r.source)),
        kinds=[kinds[k] for k in sorted(kinds)],
        sources=[
            SourceCount(
                source=source,
                messages=count.events,
                leaked=count.leaked,
                leak_rate=count.rate,
                by_flag=count.by_flag,
                solved_after_leak=count.solved_after_leak,
            )
            for source, count in leak_counts(items).items()
        ],
    )


# --- leak audit --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeakCount:
    """Feedback events of one source, how many of them leaked, and how many solved episodes
    followed a leak (``solved_after_leak``: solved, with a leaked message from this source before
    the solving turn; such a solve may be the reference copied, not a second chance used)."""

    events: int
    leaked: int
    by_flag: dict[str, int] = field(default_factory=dict)
    solved_after_leak: int = 0

    @property
    def rate(self) -> float:
        return self.leaked / self.events if self.events else 0.0


def _feedback_events(items: Iterable[Event | Episode]) -> Iterable[FeedbackEvent]:
    for item in items:
        if isinstance(item, Episode):
            yield from (e for e in item.events if isinstance(e, FeedbackEvent))
        elif isinstance(item, FeedbackEvent):
            yield item


def leak_counts(items: Iterable[Event | Episode]) -> dict[str, LeakCount]:
    """Per feedback ``source``: events, leaked events, a count per flag and, for episodes,
    the solved episodes that this source's leaks came before (bare events carry no outcome)."""
    items = list(items)  # walked twice: once for the events, once for the outcomes
    totals: dict[str, list[int]] = {}
    flags: dict[str, dict[str, int]] = {}
    for event in _feedback_events(items):
        count = totals.setdefault(event.source, [0, 0, 0])
        count[0] += 1
        if event.leak.any:
            count[1] += 1
            per_flag = flags.setdefault(event.source, {})
            for name, value in event.leak.model_dump().items():
                if value:
                    per_flag[name] = per_flag.get(name, 0) + 1
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
            totals[source][2] += 1
    return {
        source: LeakCount(events=n, leaked=k, by_flag=flags.get(source, {}), solved_after_leak=s)
        for source, (n, k, s) in sorted(totals.items())
    }


def leak_rate(items: Iterable[Event | Episode]) -> dict[str, float]:
    """Share of feedback events that leak the reference, per provider ``source``.

    ``items`` may be events (non-feedback events are ignored) or whole episodes. Rates are
    computed from the flags recorded on the events, i.e. on the text the policy received.
    """
    return {source: count.rate for source, count in leak_counts(items).items()}
