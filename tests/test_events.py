"""The transcript schema round-trips through JSON without loss."""

from __future__ import annotations

from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    FeedbackEvent,
    LeakFlags,
    Message,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    VerdictEvent,
)


def _episode() -> Episode:
    return Episode(
        key=EpisodeKey(suite="gsm8k", task_id="7", epoch=1),
        run_id="r",
        config_hash="c",
        model="scripted/reference",
        max_turns=3,
        max_proposals=2,
        events=[
            PromptEvent(
                turn=0,
                messages=(Message(role="user", content="Task"),),
                template="mint",
                template_hash="ab",
            ),
            ModelCallEvent(turn=1, model="m", output="<execute>1</execute>", prompt_tokens=5),
            ActionEvent(turn=1, kind="execute", content="1", raw="<execute>1</execute>"),
            ObservationEvent(turn=1, source="sandbox", content="Out[1]: 1"),
            ActionEvent(
                turn=2, kind="solution", content="6", raw="<solution>6</solution>", proposal=1
            ),
            VerdictEvent(turn=2, proposal=1, answer="6", correct=True, score=1.0, checker="int"),
            FeedbackEvent(
                turn=2, kind="binary", source="rule:x", content="ok", leak=LeakFlags(exact=True)
            ),
        ],
        success=True,
        success_turn=2,
        turns_used=2,
        proposals_used=1,
        terminate_reason="solved",
    )


def test_round_trip_is_lossless() -> None:
    episode = _episode()
    again = Episode.model_validate_json(episode.model_dump_json())
    assert again == episode
    assert [type(e) for e in again.events] == [type(e) for e in episode.events]
    assert again.events[-1].leak.any  # type: ignore[union-attr]


def test_per_turn_success() -> None:
    episode = _episode()
    assert episode.per_turn_success == [False, True, True]
    assert episode.prompt_tokens == 5
    assert episode.id == "gsm8k/7#1"
