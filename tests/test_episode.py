"""The episode loop itself: what the policy sees, budgets, friction mitigations."""

from __future__ import annotations

from pathlib import Path

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import Message
from mulligan.feedback import get_feedback
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.tasks import Task, get_checker, load_tasks


class RecordingModel:
    """Replies from a fixed list and records every conversation and parameter it was given."""

    def __init__(self, replies: list[str]) -> None:
        self.name = "test/recording"
        self.replies = replies
        self.seen: list[list[Message]] = []
        self.params: list[GenerateParams] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.seen.append(list(messages))
        self.params.append(params)
        return Completion(text=self.replies[len(self.seen) - 1], model=self.name)

    async def aclose(self) -> None:
        return None


def _gsm8k(mint_dir: Path) -> Task:
    return load_tasks("mint", ["gsm8k"], mint_dir, 1)[0]  # reference '6'


async def _run(task: Task, model: RecordingModel, sandboxes: object, **kw: object) -> object:
    feedback = str(kw.pop("feedback", "none"))
    return await run_episode(
        task=task,
        policy=model,
        params=GenerateParams(temperature=0.0),
        checker=get_checker(task.checker),
        sandboxes=sandboxes,  # type: ignore[arg-type]
        feedback=get_feedback(feedback),
        limits=EpisodeLimits(**kw),  # type: ignore[arg-type]
        run_id="r",
        config_hash="h",
    )


async def test_none_feedback_tells_the_policy_nothing_but_the_countdown(
    mint_dir: Path, sandboxes: object
) -> None:
    model = RecordingModel(["<solution> 7 </solution>", "<solution> 6 </solution>"])
    episode = await _run(_gsm8k(mint_dir), model, sandboxes, max_turns=3, max_proposals=2)
    assert episode.success_turn == 2  # type: ignore[attr-defined]
    after_wrong = model.seen[1][-1]
    assert after_wrong.role == "user"
    assert after_wrong.content == (
        "Observation:\nYou have 2 steps left and 1 chances to propose solution left."
    )


async def test_binary_feedback_says_wrong(mint_dir: Path, sandboxes: object) -> None:
    model = RecordingModel(["<solution> 7 </solution>", "<solution> 6 </solution>"])
    await _run(_gsm8k(mint_dir), model, sandboxes, feedback="binary", max_turns=3)
    assert "Your answer is wrong." in model.seen[1][-1].content


async def test_execute_observation_and_stop_sequences(mint_dir: Path, sandboxes: object) -> None:
    model = RecordingModel(["<execute>\nprint(3 * 2)\n", "<solution> 6 </solution>"])
    episode = await _run(_gsm8k(mint_dir), model, sandboxes, max_turns=2)
    assert "</execute>" in model.params[0].stop
    assert model.seen[1][-2].content.endswith("</execute>")  # the cut-off tag was closed
    assert model.seen[1][-1].content.startswith("Observation:\n6\nYou have 1 steps left")
    assert episode.success_turn == 2  # type: ignore[attr-defined]


async def test_reject_repeats_costs_no_proposal(mint_dir: Path, sandboxes: object) -> None:
    replies = ["<solution> 7 </solution>", "<solution> 7.0 </solution>", "<solution> 6 </solution>"]
    model = RecordingModel(replies)
    episode = await _run(
        _gsm8k(mint_dir), model, sandboxes, max_turns=3, max_proposals=2, reject_repeats=True
    )
    assert episode.success_turn == 3  # type: ignore[attr-defined]
    assert episode.proposals_used == 2  # type: ignore[attr-defined]
    actions = [e for e in episode.events if e.type == "action"]  # type: ignore[attr-defined]
    assert [a.repeat_of for a in actions] == [None, 1, None]
    assert "already proposed this answer (proposal 1)" in model.seen[2][-1].content
    # Without the mitigation the repeat uses up the last proposal and the episode fails.
    model = RecordingModel(replies)
    episode = await _run(_gsm8k(mint_dir), model, sandboxes, max_turns=3, max_proposals=2)
    assert not episode.success and episode.terminate_reason == "max_proposals"  # type: ignore[attr-defined]


async def test_progressive_temperature(mint_dir: Path, sandboxes: object) -> None:
    model = RecordingModel(["no action"] * 4)
    episode = await _run(
        _gsm8k(mint_dir), model, sandboxes, max_turns=4, temperature_step=0.3, temperature_max=0.7
    )
    assert [p.temperature for p in model.params] == [0.0, 0.3, 0.6, 0.7]
    assert len({p.seed for p in model.params}) == 4
    calls = [e for e in episode.events if e.type == "model_call"]  # type: ignore[attr-defined]
    assert [c.temperature for c in calls] == [0.0, 0.3, 0.6, 0.7]


async def test_context_window_ends_the_episode_cleanly(mint_dir: Path, sandboxes: object) -> None:
    from mulligan.models import ContextWindowExceeded

    class Full(RecordingModel):
        async def generate(
            self,
            messages: list[Message],
            params: GenerateParams,
            context: CallContext | None = None,
        ) -> Completion:
            if len(messages) > 1:
                raise ContextWindowExceeded("prompt of 5000 tokens does not fit 4096")
            return await super().generate(messages, params, context)

    episode = await _run(_gsm8k(mint_dir), Full(["<execute>1</execute>"]), sandboxes, max_turns=3)
    assert episode.status == "finished"  # type: ignore[attr-defined]
    assert episode.terminate_reason == "context_exhausted"  # type: ignore[attr-defined]
    assert episode.turns_used == 1  # type: ignore[attr-defined]
