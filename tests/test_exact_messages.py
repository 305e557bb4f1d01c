"""What the policy saw is stored exactly: each call's message list and sampling parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import (
    Episode,
    EpisodeKey,
    Message,
    MissingMessages,
    ModelCallEvent,
    PromptEvent,
)
from mulligan.feedback import get_feedback
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.store import RunStore
from mulligan.tasks import Task, get_checker, load_tasks


class RecordingModel:
    """Replies from a fixed list; keeps the exact JSON of every message list it received."""

    def __init__(self, replies: list[str]) -> None:
        self.name = "test/recording"
        self.replies = replies
        self.received: list[str] = []
        self.params: list[GenerateParams] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.received.append(_wire(messages))
        self.params.append(params)
        return Completion(text=self.replies[len(self.received) - 1], model=self.name)

    async def aclose(self) -> None:
        return None


def _wire(messages: list[Message]) -> str:
    """The bytes a backend would serialise: role and content of each message, in order."""
    return "\n".join(m.model_dump_json() for m in messages)


def _task(mint_dir: Path) -> Task:
    return load_tasks("mint", ["gsm8k"], mint_dir, 1)[0]  # reference '6'


async def test_stored_messages_are_what_the_backend_received(
    mint_dir: Path, sandboxes: object, tmp_path: Path
) -> None:
    replies = [
        "<thought> try </thought> <solution> 7 </solution>",
        "<execute>\nprint(3 * 2)\n",  # cut at the stop sequence: the loop closes the tag
        "no action at all",
        "<solution> 6 </solution>",
    ]
    model = RecordingModel(replies)
    task = _task(mint_dir)
    episode = await run_episode(
        task=task,
        policy=model,
        params=GenerateParams(temperature=0.7, top_p=0.9, max_tokens=300, seed=11),
        checker=get_checker(task.checker),
        sandboxes=sandboxes,  # type: ignore[arg-type]
        feedback=get_feedback("binary"),
        limits=EpisodeLimits(max_turns=5, max_proposals=3),
        run_id="r",
        config_hash="h",
        epoch=2,
    )
    assert episode.success_turn == 4
    with RunStore(tmp_path / "run") as store:
        store.create_run("r", "h", {})
        store.save_episode(episode)
    with RunStore.open_existing(tmp_path / "run") as store:
        stored = store.episode(episode.id)
    assert stored is not None
    calls = stored.policy_calls()
    assert [_wire(seen) for _, seen in calls] == model.received  # byte for byte
    for (call, _), params in zip(calls, model.params, strict=True):
        assert (call.temperature, call.top_p, call.max_tokens) == (0.7, 0.9, 300)
        assert (call.seed, call.stop) == (params.seed, params.stop)
    assert len({call.seed for call, _ in calls}) == 4  # one derived seed per call
    # The conversation is stored once: every message is a prompt message or one MessageEvent.
    events = [e.type for e in stored.events]
    assert events.count("message") == 4 + 3  # 4 replies, 3 user turns after turns 1-3
    assert len(stored.conversation()) == 1 + 7


def test_an_episode_without_recorded_messages_says_so() -> None:
    prompt = PromptEvent(
        turn=0, messages=(Message(role="user", content="q"),), template="t", template_hash="h"
    )
    episode = Episode(
        key=EpisodeKey(suite="s", task_id="t"),
        run_id="r",
        config_hash="h",
        model="m",
        max_turns=1,
        max_proposals=1,
        events=[prompt, ModelCallEvent(turn=1, model="m", output="x")],
    )
    with pytest.raises(MissingMessages, match="stored before mulligan recorded"):
        episode.policy_calls()
