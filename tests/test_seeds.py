"""Issue 12, item 5: every model call gets its own seed, derived from the run's ``--seed`` per
(task, epoch, turn), sent to the backend and recorded on its ``ModelCallEvent``. Before, the
runner built one set of parameters, so on seed-honouring backends every epoch replayed epoch 0."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import Episode, Message, ModelCallEvent
from mulligan.feedback import get_feedback
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.models.base import SEED_BITS, call_seed
from mulligan.models.local import LocalModel
from mulligan.models.roles import RoleModel
from mulligan.store import RunStore
from mulligan.tasks import Task, get_checker, load_tasks
from openai_server import OpenAIServer, Reply, Request, Response


def _calls(episode: Episode) -> list[ModelCallEvent]:
    return [e for e in episode.events if isinstance(e, ModelCallEvent)]


def test_call_seed_is_a_documented_stable_hash() -> None:
    # Pinned: a change of recipe changes every run's samples, so it must be deliberate
    # (and versioned in the hashed text), never a side effect.
    assert call_seed(0, "policy", "gsm8k", "t1", 0, 1) == 109006659
    assert call_seed(7, "feedback", "mbpp", "3", 2, 4, 1) == 93175558
    seeds = {
        call_seed(run, "policy", "mint", f"task{t}", epoch, turn)
        for run in (0, 1)
        for t in range(20)
        for epoch in range(5)
        for turn in range(1, 6)
    }
    assert len(seeds) == 2 * 20 * 5 * 5  # no two calls share a seed
    assert all(0 <= s < 2**SEED_BITS for s in seeds)
    # The parts cannot run into each other: ("a:1", epoch 0) is not ("a", epoch 1...).
    assert call_seed(0, "policy", "s", "a:1", 0, 1) != call_seed(0, "policy", "s", "a", 1, 0)


def _seed_responder(request: Request) -> Response:
    return Reply(f"no action, seed {request.body.get('seed')}")


async def _run(
    tmp_path: Path, mint_dir: Path, sandboxes: object, server: OpenAIServer, name: str
) -> list[Episode]:
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run

    cfg = RunConfig(
        suite="mint",
        tasks=("gsm8k",),
        data_dir=mint_dir,
        limit=2,
        turns=2,
        epochs=2,
        temperature=0.7,
        seed=11,
        cache="off",
        model="openai-compatible/test-model",
        base_url=server.base_url,
        out=tmp_path / name,
    )
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        return sorted(store.episodes(), key=lambda e: (e.key.task_id, e.key.epoch))


async def test_epochs_get_their_own_seeds_and_reruns_the_same(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    with OpenAIServer(_seed_responder) as server:
        first = await _run(tmp_path, mint_dir, sandboxes, server, "a")
        sent = [r.body["seed"] for r in server.requests]
        second = await _run(tmp_path, mint_dir, sandboxes, server, "b")
    assert len(first) == 4 and len(sent) == 8
    by_call = {(e.key.task_id, e.key.epoch, c.turn): c.seed for e in first for c in _calls(e)}
    assert len(set(by_call.values())) == 8  # every (task, epoch, turn) its own seed
    assert sorted(by_call.values()) == sorted(sent)  # what was recorded is what was sent
    for episode in first:  # each reply echoes the seed its request carried
        for call in _calls(episode):
            assert call.output == f"no action, seed {call.seed}"
            key = episode.key
            assert call.seed == call_seed(
                11, "policy", key.suite, key.task_id, key.epoch, call.turn
            )
    assert {
        (e.key.task_id, e.key.epoch, c.turn): c.seed for e in second for c in _calls(e)
    } == by_call  # the same calls, the same seeds


class FakeLlama:
    """What ``LocalModel`` uses of ``llama_cpp.Llama``; records every completion's kwargs."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def n_ctx(self) -> int:
        return 4096

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        return list(range(len(text.split())))

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {
            "choices": [{"message": {"content": "thinking"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        }


async def test_the_seed_reaches_the_llama_cpp_call(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    model = LocalModel(gguf, name="local/m.gguf")
    llama = FakeLlama()
    model._llm = llama  # type: ignore[assignment]
    model._formatter = lambda messages: SimpleNamespace(  # type: ignore[assignment]
        prompt=" ".join(m["content"] for m in messages), added_special=False
    )
    task = load_tasks("mint", ["gsm8k"], mint_dir, 1)[0]
    seeds = []
    for epoch in range(2):
        episode = await run_episode(
            task=task,
            policy=model,
            params=GenerateParams(temperature=0.8, seed=3),
            checker=get_checker(task.checker),
            sandboxes=sandboxes,  # type: ignore[arg-type]
            feedback=get_feedback("none"),
            limits=EpisodeLimits(max_turns=2),
            run_id="r",
            config_hash="h",
            epoch=epoch,
        )
        seeds += [c.seed for c in _calls(episode)]
    assert [c["seed"] for c in llama.calls] == seeds
    assert seeds == [
        call_seed(3, "policy", task.suite, task.id, epoch, turn)
        for epoch in range(2)
        for turn in (1, 2)
    ]


class Recording:
    name = "test/recording"
    cacheable = False

    def __init__(self) -> None:
        self.params: list[GenerateParams] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.params.append(params)
        return Completion(text="ok", model=self.name)

    async def aclose(self) -> None:
        return None


def _task(task_id: str = "t") -> Task:
    return Task(
        id=task_id,
        suite="gsm8k",
        category="reasoning",
        prompt="p",
        reference="1",
        checker="gsm8k",
        gold_solution="1",
    )


async def test_feedback_and_judge_roles_derive_and_record_their_seeds() -> None:
    inner = Recording()
    role = RoleModel(inner, "feedback", run_seed=5)
    params = GenerateParams(temperature=0.7, seed=0)
    events = []
    for epoch in range(2):
        for attempt in range(2):  # a provider's regeneration: its own seed salts the call's
            context = CallContext(task=_task(), turn=1, epoch=epoch)
            completion = await role.generate(
                [], params.model_copy(update={"seed": attempt}), context
            )
            events.append(completion.to_event(1, "feedback", 0.7))
    sent = [p.seed for p in inner.params]
    assert len(set(sent)) == 4
    assert sent[0] == call_seed(5, "feedback", "gsm8k", "t", 0, 1, 0)
    assert [e.seed for e in events] == sent  # stamped on the completion, so recorded
    # Without a context (or a run seed) the caller's seed is sent unchanged.
    await RoleModel(inner, "judge", run_seed=5).generate([], params)
    await RoleModel(inner, "judge").generate([], params, CallContext(task=_task(), turn=1))
    assert [p.seed for p in inner.params[-2:]] == [0, 0]


def test_stores_written_before_the_seed_field_still_load() -> None:
    old = ModelCallEvent(turn=1, model="m", output="x").model_dump(mode="json")
    del old["seed"]
    event = ModelCallEvent.model_validate_json(json.dumps(old))
    assert event.seed is None


@pytest.mark.parametrize("seed", [0, 123])
def test_run_seed_changes_every_call_seed(seed: int) -> None:
    other = seed + 1
    assert call_seed(seed, "policy", "s", "t", 0, 1) != call_seed(other, "policy", "s", "t", 0, 1)


async def test_self_feedback_calls_get_per_epoch_seeds(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    """``self`` feedback asks the policy in the feedback role: its calls too get their own seeds."""
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run

    def wrong_answer(request: Request) -> Response:
        return Reply(f"seed {request.body.get('seed')} <solution> 999 </solution>")

    with OpenAIServer(wrong_answer) as server:  # type: ignore[arg-type]
        cfg = RunConfig(
            suite="mint",
            tasks=("gsm8k",),
            data_dir=mint_dir,
            limit=1,
            turns=2,
            epochs=2,
            temperature=0.7,
            feedback="self",
            cache="off",
            model="openai-compatible/test-model",
            base_url=server.base_url,
            out=tmp_path / "run",
        )
        await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    critiques = [c for e in episodes for c in _calls(e) if c.role == "feedback"]
    assert critiques and all(c.seed is not None for c in critiques)
    assert len({c.seed for c in critiques}) == len(critiques)
    assert len(critiques) == 4  # two turns with a wrong proposal, two epochs
    assert all(c.output.startswith(f"seed {c.seed} ") for c in critiques)
