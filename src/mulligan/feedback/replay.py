"""Frozen feedback: reuse the feedback recorded in an earlier run where the policy repeats itself.

``replay:<run-dir>`` reads the FeedbackEvents of every episode in that run (via
:class:`~mulligan.store.RunStore`), indexed by suite, task id and the *history* of actions up to
and including the turn: ``((kind, content) of turn 1, ..., (kind, content) of turn t)``. When the
current policy's actions so far are identical to a recorded episode's, the feedback recorded at
that turn is given again (provenance, template hash and leak audit included), marked with
where it came from (``FeedbackEvent.replayed_from``: the recorded run's id and directory, the
episode and turn it was given in, and when) and stamped with the time it is given now; when
they differ anywhere, the live provider is called. Once an episode diverges from every
recording, all its later turns are live.

Recorded events of one turn are handed to the live chain's providers by kind, in order (the
first recorded ``textual`` event to the first provider of kind ``textual``, ...), so the chain
built from the recorded run's own spec reproduces the recording exactly.

``stats`` counts turns served from the recording (``replayed``) and turns sent to the live chain
(``live``); ``calls`` counts the same per provider, and events given per provider, and
:meth:`ReplayedFeedback.counters` reports them (with the live provider's own counters) for the
run's manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mulligan.errors import MulliganError
from mulligan.events import ActionEvent, Episode, FeedbackEvent, FeedbackOrigin, utcnow
from mulligan.feedback.base import FeedbackContext, FeedbackProvider, provider_kind
from mulligan.models.base import counters_of

History = tuple[tuple[str, str], ...]
REPLAY_KIND = "replay"
"""The spec kind (``replay:<run-dir>``) and the prefix of a replayed provider's name."""


class ReplayError(MulliganError, ValueError):
    """The replay source cannot be used (no run there, or no feedback spec to fall back on)."""


class ReplayIndex:
    """Recorded feedback of one run, by ``(suite, task_id, action history)``.

    Args:
        run_dir: the run directory (holding ``mulligan.sqlite``).
    """

    def __init__(self, run_dir: Path | str) -> None:
        from mulligan.store import RunStore, StoreError  # the store imports events only

        self.run_dir = Path(run_dir)
        try:
            store = RunStore.open_existing(self.run_dir)
        except StoreError as exc:
            raise ReplayError(f"replay: {exc}") from exc
        self._entries: dict[tuple[str, str, History], list[FeedbackEvent]] = {}
        try:
            run = store.run()
            config = run.manifest.get("config", {}) if run else {}
            self.feedback_spec: str | None = (
                config.get("feedback") if isinstance(config, dict) else None
            )
            for episode in store.episodes(with_events=True):
                self._add(episode)
        finally:
            store.close()
        self.stats: Counter[str] = Counter()

    def _add(self, episode: Episode) -> None:
        key = episode.key
        history: list[tuple[str, str]] = []
        feedback: dict[int, list[FeedbackEvent]] = {}
        for event in episode.events:
            if isinstance(event, FeedbackEvent):
                origin = FeedbackOrigin(
                    run_id=episode.run_id,
                    run_dir=str(self.run_dir),
                    suite=key.suite,
                    task_id=key.task_id,
                    epoch=key.epoch,
                    turn=event.turn,
                    at=event.at,
                )
                marked = event.model_copy(update={"replayed_from": origin})
                feedback.setdefault(event.turn, []).append(marked)
        for event in episode.events:
            if isinstance(event, ActionEvent):
                history.append((event.kind, event.content))
                entry = (key.suite, key.task_id, tuple(history))
                # The first recording of a history wins; epochs that repeat it add nothing.
                self._entries.setdefault(entry, feedback.get(event.turn, []))

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, ctx: FeedbackContext) -> list[FeedbackEvent] | None:
        """The feedback recorded after the same history, or None if it was never recorded."""
        history = tuple(
            (e.kind, e.content)
            for e in ctx.events
            if isinstance(e, ActionEvent) and e.turn <= ctx.turn
        )
        return self._entries.get((ctx.task.suite, ctx.task.id, history))


def assign_recorded(
    kinds: Sequence[str | None], recorded: Sequence[FeedbackEvent]
) -> list[FeedbackEvent | None]:
    """Hand recorded events to providers: each takes the first unclaimed event of its kind.

    A provider of unknown kind takes the next unclaimed event in order.
    """
    claimed = [False] * len(recorded)
    out: list[FeedbackEvent | None] = []
    for kind in kinds:
        pick: FeedbackEvent | None = None
        for i, event in enumerate(recorded):
            if not claimed[i] and (kind is None or event.kind == kind):
                claimed[i] = True
                pick = event
                break
        out.append(pick)
    return out


class ReplayedFeedback:
    """One position of a replayed chain: the recorded event when the history matches, else
    the live provider's feedback.

    Args:
        live: the provider called when the history was never recorded.
        index: the shared recording.
        position: this provider's place in the chain.
        kinds: the kinds of every provider in the chain (to hand out recorded events).
    """

    def __init__(
        self,
        live: FeedbackProvider,
        index: ReplayIndex,
        position: int,
        kinds: Sequence[str | None],
    ) -> None:
        self.live = live
        self.index = index
        self.position = position
        self.kinds = list(kinds)
        self.name = f"{REPLAY_KIND}:{live.name}"
        self.kind = provider_kind(live)
        self.calls: Counter[str] = Counter()

    @property
    def stats(self) -> Counter[str]:
        """Turns replayed and turns live, for the whole chain."""
        return self.index.stats

    def counters(self) -> dict[str, int]:
        """For this position: ``turns.replayed`` / ``turns.live``, the turns answered from the
        recording and by the live provider; ``events.replayed`` / ``events.live``, the feedback
        events each of them gave the policy; then the live provider's own counters, prefixed
        ``live.``."""
        return {
            "turns.replayed": self.calls["replayed"],
            "turns.live": self.calls["live"],
            "events.replayed": self.calls["events.replayed"],
            "events.live": self.calls["events.live"],
            **counters_of(self.live, "live."),
        }

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        recorded = self.index.lookup(ctx)
        if self.position == 0:
            self.index.stats["replayed" if recorded is not None else "live"] += 1
        if recorded is None:
            self.calls["live"] += 1
            event = await self.live.feedback(ctx)
            self.calls["events.live"] += event is not None
            return event
        self.calls["replayed"] += 1
        event = assign_recorded(self.kinds, recorded)[self.position]
        if event is None:
            return None
        self.calls["events.replayed"] += 1
        # Given now, in this turn: the recorded time and turn stay in ``replayed_from``.
        return event.model_copy(update={"turn": ctx.turn, "at": utcnow()})


def replay_chain(index: ReplayIndex, live: Sequence[FeedbackProvider]) -> list[FeedbackProvider]:
    """Wrap a live chain so that it replays ``index`` wherever the history matches."""
    kinds = [provider_kind(p) for p in live]
    return [ReplayedFeedback(p, index, i, kinds) for i, p in enumerate(live)]
