"""The replay backend: answers from MINT's logged results.jsonl and from our own run directories,
with clear errors for missing turns and prefix checks against the logged conversation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conftest import shared_mint_dir
from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    Message,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
)
from mulligan.models import CallContext, GenerateParams, ScriptedModel, UnknownModelError, get_model
from mulligan.models.replay import ReplayModel, ReplayModelError
from mulligan.store import RunStore
from mulligan.tasks import Task
from mulligan.tasks.mint_log import strip_assistant_prefix

PARAMS = GenerateParams()
MINT_CONFIG = "gpt-3.5-turbo-0613/F=None/max5_p2+tool+cd"


def _task(task_id: str, suite: str = "gsm8k") -> Task:
    return Task(
        id=task_id,
        suite=suite,
        category="reasoning",
        prompt="What is 6 times 7?",
        reference="42",
        checker="gsm8k",
        gold_solution="42",
    )


def _ctx(task_id: str, turn: int, epoch: int = 0, suite: str = "gsm8k") -> CallContext:
    return CallContext(task=_task(task_id, suite), turn=turn, epoch=epoch)


# ------------------------------------------------------------------------------ MINT logs


@pytest.fixture(scope="module")
def mint_outputs() -> Path:
    path = shared_mint_dir() / "outputs" / MINT_CONFIG
    if not path.is_dir():
        pytest.skip(f"MINT's logged outputs not found at {path} (shared third-party data)")
    return path


def _mint_record(results: Path, task_id: str) -> dict[str, object]:
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if str(record["task"]["task_id"]) == task_id:
            return record  # type: ignore[no-any-return]
    raise AssertionError(f"task {task_id} not in {results}")


async def test_replays_mint_results_turn_by_turn(mint_outputs: Path) -> None:
    results = mint_outputs / "reasoning" / "gsm8k" / "results.jsonl"
    model = ReplayModel(results)
    record = _mint_record(results, "2")
    history = [Message.model_validate(m) for m in record["state"]["history"]]  # type: ignore[index]
    assistant = [m.content for m in history if m.role == "assistant"]
    assert len(assistant) == 3 and all(a.startswith("Assistant:\n") for a in assistant)

    conversation = history[:1]
    for turn, logged in enumerate(assistant, 1):
        completion = await model.generate(conversation, PARAMS, _ctx("2", turn))
        assert completion.text == logged.removeprefix("Assistant:\n")
        assert not completion.text.startswith("Assistant:")
        assert completion.model == f"replay/{results}"
        # Rebuild the logged conversation: the reply, then MINT's observation.
        conversation = history[: 2 * turn + 1]
    # The conversation always followed the log.
    assert (model.prefix_checked, model.prefix_matched) == (3, 3)

    with pytest.raises(
        ReplayModelError, match=r"gsm8k/2 \(epoch 0\) has no reply for turn 4"
    ) as info:
        await model.generate(conversation, PARAMS, _ctx("2", 4))
    assert not info.value.transient
    with pytest.raises(ReplayModelError, match="no logged episode for task gsm8k/9999"):
        await model.generate(conversation, PARAMS, _ctx("9999", 1))
    with pytest.raises(ReplayModelError, match="no logged episode for task humaneval/2"):
        await model.generate(conversation, PARAMS, _ctx("2", 1, suite="humaneval"))


async def test_prefix_checks_say_where_a_conversation_left_the_log(mint_outputs: Path) -> None:
    results = mint_outputs / "reasoning" / "gsm8k" / "results.jsonl"
    record = _mint_record(results, "2")
    history = [Message.model_validate(m) for m in record["state"]["history"]]  # type: ignore[index]
    model = ReplayModel(results)
    ctx = _ctx("2", 3)
    logged = [
        Message(role=m.role, content=strip_assistant_prefix(m.content))
        if m.role == "assistant"
        else m
        for m in history[:5]
    ]
    assert model.prefix_matches(logged, ctx)
    assert model.prefix_matches(list(history[:5]), ctx)  # with MINT's prefix: same after strip

    wrong_prompt = [Message(role="user", content="Another task"), *logged[1:]]
    assert "prompt message 0" in model.prefix_matches(wrong_prompt, ctx).reason
    other_reply = [*logged[:1], Message(role="assistant", content="<solution> 7 </solution>")]
    assert "turn 1 reply differs" in model.prefix_matches(other_reply, ctx).reason
    other_observation = [*logged[:2], Message(role="user", content="Observation:\nOut[1]: 99")]
    found = model.prefix_matches(other_observation, ctx)
    assert not found and "message 2 (user, after turn 1)" in found.reason

    # count (default) tallies, strict refuses.
    await model.generate(other_observation, PARAMS, _ctx("2", 2))
    assert (model.prefix_checked, model.prefix_matched) == (1, 0)
    assert model.summary()["mismatch_turns"] == {2: 1}
    strict = ReplayModel(results, verify="strict")
    with pytest.raises(ReplayModelError, match="left the logged one"):
        await strict.generate(other_observation, PARAMS, _ctx("2", 2))


async def test_a_tree_of_mint_outputs_is_one_source(mint_outputs: Path) -> None:
    model = ReplayModel(mint_outputs)
    suites = {suite for suite, _, _ in model.trajectories}
    assert {"gsm8k", "math", "mmlu", "humaneval", "mbpp", "theoremqa", "hotpotqa"} <= suites
    reply = await model.generate(
        [Message(role="user", content="x")], PARAMS, _ctx("0", 1, suite="mbpp")
    )
    assert reply.text
    # Several configurations below one directory log every task more than once.
    with pytest.raises(ReplayModelError, match="logged twice"):
        ReplayModel(mint_outputs.parent)


def test_registry_name_and_errors(mint_outputs: Path) -> None:
    results = mint_outputs / "reasoning" / "gsm8k" / "results.jsonl"
    model = get_model(f"replay/{results}")
    assert isinstance(model, ReplayModel) and model.name == f"replay/{results}"
    with pytest.raises(UnknownModelError, match="does not exist"):
        get_model(f"replay/{results.parent / 'missing.jsonl'}")


def test_malformed_mint_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k" / "results.jsonl"
    path.parent.mkdir()
    # Line 1 is a minimal MINT result (mulligan.tasks.mint_log's schema); line 2 is not.
    good = {
        "task": {"task_id": 1},
        "state": {"history": [{"role": "user", "content": "Q"}], "success": False},
    }
    path.write_text(json.dumps(good) + '\n{"task": {}}\n')
    with pytest.raises(ReplayModelError, match=r"results.jsonl:2: not a MINT result line"):
        ReplayModel(path)


# ------------------------------------------------------------------------------ run directories


def _stored_episode(task_id: str, epoch: int = 0) -> Episode:
    prompt = (Message(role="user", content=f"Task {task_id}: what is 6 times 7?"),)
    events = [
        PromptEvent(turn=0, messages=prompt, template="mint", template_hash="abc"),
        ModelCallEvent(
            turn=1,
            model="openai-compatible/m",
            output="<thought> compute </thought>\n<execute>\nprint(6 * 7)\n",  # cut at stop
            prompt_tokens=50,
            completion_tokens=12,
            finish_reason="stop",
        ),
        ActionEvent(turn=1, kind="execute", content="print(6 * 7)", raw="..."),
        ObservationEvent(turn=1, source="sandbox", content="42"),
        ModelCallEvent(
            turn=2,
            model="openai-compatible/m",
            output="<solution> 42 </solution>",
            prompt_tokens=80,
            completion_tokens=5,
        ),
    ]
    return Episode(
        key=EpisodeKey(suite="gsm8k", task_id=task_id, epoch=epoch),
        run_id="run-1",
        config_hash="cfg",
        model="openai-compatible/m",
        max_turns=5,
        max_proposals=2,
        events=events,
        success=True,
        success_turn=2,
        turns_used=2,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    with RunStore(path) as store:
        store.create_run("run-1", "cfg", {})
        store.save_episode(_stored_episode("7"))
        store.save_episode(_stored_episode("8"))
    return path


async def test_replays_a_run_directory(run_dir: Path) -> None:
    model = get_model(f"replay/{run_dir}")
    assert isinstance(model, ReplayModel) and len(model.trajectories) == 2
    prompt = [Message(role="user", content="Task 7: what is 6 times 7?")]
    first = await model.generate(prompt, PARAMS, _ctx("7", 1))
    assert first.text.endswith("print(6 * 7)\n")
    assert (first.prompt_tokens, first.completion_tokens) == (50, 12)
    # The episode keeps the reply with the cut tag closed (actions.restore_stop): still a match.
    conversation = [
        *prompt,
        Message(role="assistant", content=first.text.rstrip() + "\n</execute>"),
        Message(role="user", content="Observation:\n42"),  # not in the store: not compared
    ]
    second = await model.generate(conversation, PARAMS, _ctx("7", 2))
    assert second.text == "<solution> 42 </solution>"
    assert model.prefix_match_rate == 1.0
    with pytest.raises(ReplayModelError, match=r"gsm8k/7 \(epoch 0\) has no reply for turn 3"):
        await model.generate(conversation, PARAMS, _ctx("7", 3))
    with pytest.raises(ReplayModelError, match="no logged episode for task gsm8k/7 epoch 1"):
        await model.generate(prompt, PARAMS, _ctx("7", 1, epoch=1))
    await model.generate([Message(role="user", content="Task 8: ?")], PARAMS, _ctx("8", 1))
    assert model.prefix_checked == 3 and model.prefix_matched == 2


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayModelError, match=r"neither mulligan\.sqlite"):
        ReplayModel(tmp_path)


@pytest.fixture
async def sandbox_pool() -> AsyncIterator[object]:
    try:
        from mulligan.sandbox import SandboxLimits, SandboxPool
    except ImportError as e:  # being written in parallel
        pytest.skip(f"mulligan.sandbox is not usable yet: {e}")
    pool = SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=10.0))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


async def test_replaying_a_run_reproduces_it(tmp_path: Path, sandbox_pool: object) -> None:
    """Run episodes, store them, replay them through the same loop: same actions, all matched."""
    from mulligan.episode import EpisodeLimits, run_episode
    from mulligan.tasks import get_checker

    tasks = [_task(str(i)).model_copy(update={"gold_solution": "42"}) for i in range(3)]
    limits = EpisodeLimits(max_turns=3, max_proposals=2, in_context_example=False)

    async def run(policy: object, task: Task) -> Episode:
        return await run_episode(
            task=task,
            policy=policy,  # type: ignore[arg-type]
            params=PARAMS,
            checker=get_checker(task.checker),
            sandboxes=sandbox_pool,  # type: ignore[arg-type]
            feedback=[],
            limits=limits,
            run_id="orig",
            config_hash="cfg",
        )

    original = [await run(ScriptedModel("execute-then-answer"), t) for t in tasks]
    run_dir = tmp_path / "orig"
    with RunStore(run_dir) as store:
        store.create_run("orig", "cfg", {})
        for episode in original:
            store.save_episode(episode)

    replay = ReplayModel(run_dir, verify="strict")
    replayed = [await run(replay, t) for t in tasks]

    def actions(episode: Episode) -> list[tuple[str, str]]:
        return [(e.kind, e.content) for e in episode.events if isinstance(e, ActionEvent)]

    for before, after in zip(original, replayed, strict=True):
        assert after.error is None, after.error
        assert actions(after) == actions(before)
        assert (after.success, after.success_turn) == (before.success, before.success_turn)
    assert replay.prefix_checked == replay.prefix_matched == 6
