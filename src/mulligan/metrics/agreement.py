"""How good is the simulated user? Its feedback's verdict against the checker's, per source.

Each feedback event given on a turn with a proposal is paired with that proposal's checker
verdict. What the feedback *says* about the proposal (:func:`stated_verdict`):

- ``binary`` events: the checker's own ``rule:checker-verdict`` ("Your answer is wrong.") says
  wrong; a model's binary verdict ("This is GOOD." / "This is BAD.", ``llm:binary``) is parsed
  with :func:`~mulligan.prompts.verdict.parse_binary_verdict`;
- ``unary`` ("Let's try again.") says wrong;
- textual kinds (``textual``, ``critique``, ``self``, ``checklist``): the verdict the judge read
  from the text when the run had ``--judge-reads-feedback`` (``FeedbackEvent.stated_verdict``);
  unread otherwise;
- ``tests``, ``challenge`` and ``none`` are not counted (tests are the checker's own
  evidence; a challenge's claim is an adversary by design, see ``metrics.refinement``).

Per source, a confusion matrix (rows: checker right / wrong; columns: feedback says right /
wrong / unread) and, over the read messages (each a ratio over episodes, cluster bootstrap):

- agreement = (says right & right + says wrong & wrong) / read;
- false-praise rate = says right & checker wrong / (checker wrong & read);
- false-alarm rate  = says wrong & checker right / (checker right & read).

Under MINT's ``at-correct`` protocol model feedback follows wrong proposals only, so only the
"checker wrong" row fills (false praise is measurable, false alarms are not); ``--stop never``
fills both rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode, FeedbackEvent, VerdictEvent
from mulligan.metrics.stats import DEFAULT_BOOTSTRAP, BootstrapConfig, Estimate, count_rate_estimate
from mulligan.prompts.verdict import parse_binary_verdict

CHECKER_VERDICT_SOURCE = "rule:checker-verdict"
_TEXTUAL = frozenset({"textual", "critique", "self", "checklist"})


def stated_verdict(event: FeedbackEvent) -> bool | None:
    """What ``event`` says about the proposal it follows: right (True), wrong (False), or
    None (unread, or a kind that states no verdict)."""
    if event.stated_verdict is not None:
        return event.stated_verdict
    if event.kind == "unary":
        return False
    if event.kind == "binary":
        if event.source == CHECKER_VERDICT_SOURCE:
            return False
        return parse_binary_verdict(event.content)
    return None


def _counted(event: FeedbackEvent) -> bool:
    return event.kind in _TEXTUAL or event.kind in ("binary", "unary")


class ConfusionMatrix(BaseModel):
    """Feedback messages by (checker verdict, what the feedback says)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    right_says_right: int = 0
    right_says_wrong: int = 0
    right_unread: int = 0
    wrong_says_right: int = 0
    wrong_says_wrong: int = 0
    wrong_unread: int = 0


class SourceAgreement(BaseModel):
    """One feedback source's agreement with the checker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    kinds: list[str]
    messages: int
    confusion: ConfusionMatrix
    agreement: Estimate
    false_praise: Estimate
    false_alarm: Estimate


@dataclass
class _Tally:
    kinds: set[str] = field(default_factory=set)
    cells: dict[str, int] = field(default_factory=dict)
    # per episode: (agree, read, praise, wrong_read, alarm, right_read)
    episodes: dict[str, list[float]] = field(default_factory=dict)

    def add(self, episode: str, checker: bool, says: bool | None) -> None:
        row = "right" if checker else "wrong"
        col = "unread" if says is None else "says_right" if says else "says_wrong"
        cell = f"{row}_{col}"
        self.cells[cell] = self.cells.get(cell, 0) + 1
        counts = self.episodes.setdefault(episode, [0.0] * 6)
        if says is None:
            return
        counts[0] += says == checker
        counts[1] += 1
        if not checker:
            counts[2] += says
            counts[3] += 1
        else:
            counts[4] += not says
            counts[5] += 1


def _pairs(episode: Episode) -> Iterable[tuple[FeedbackEvent, VerdictEvent]]:
    verdicts = {e.turn: e for e in episode.events if isinstance(e, VerdictEvent)}
    for event in episode.events:
        if isinstance(event, FeedbackEvent) and event.turn in verdicts and _counted(event):
            yield event, verdicts[event.turn]


def feedback_agreement(
    episodes: Iterable[Episode], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> list[SourceAgreement]:
    """Per feedback source (sorted), its confusion matrix against the checker and its rates."""
    tallies: dict[str, _Tally] = {}
    for episode in episodes:
        for event, verdict in _pairs(episode):
            tally = tallies.setdefault(event.source, _Tally())
            tally.kinds.add(event.kind)
            tally.add(episode.id, verdict.correct, stated_verdict(event))
    out = []
    for source, tally in sorted(tallies.items()):
        per = list(tally.episodes.values())

        def rate(num: int, den: int, per: list[list[float]] = per) -> Estimate:
            return count_rate_estimate([p[num] for p in per], [p[den] for p in per], bootstrap)

        out.append(
            SourceAgreement(
                source=source,
                kinds=sorted(tally.kinds),
                messages=sum(tally.cells.values()),
                confusion=ConfusionMatrix(**tally.cells),
                agreement=rate(0, 1),
                false_praise=rate(2, 3),
                false_alarm=rate(4, 5),
            )
        )
    return out
