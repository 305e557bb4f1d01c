"""Sticky routing: each episode's turns go to the replica that served its first turn (a
server's prefix cache keeps the conversation), and move only when that replica is down."""

from __future__ import annotations

import asyncio

from mulligan.events import Message
from mulligan.models import GenerateParams
from mulligan.models.base import CallContext
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.retry import AdaptiveLimit, EndpointPool, RetryPolicy
from mulligan.tasks import Task
from openai_server import Drop, OpenAIServer, Reply, Request, Response

PARAMS = GenerateParams(max_tokens=16)
FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.02)


def _task(n: int) -> Task:
    return Task(
        id=str(n),
        suite="synthetic",
        category="reasoning",
        prompt=f"episode {n}",
        reference="0",
        checker="gsm8k",
        gold_solution="0",
    )


def _answer(request: Request) -> Response:
    return Reply("ok", delay_s=0.01)


def _dying(request: Request) -> Response:
    return Drop()


def _episode_of(request: Request) -> str:
    return str(request.body["messages"][0]["content"])


async def _episode(model: OpenAICompatModel, n: int, turns: int) -> None:
    task = _task(n)
    messages = [Message(role="user", content=f"episode {n}")]
    for turn in range(1, turns + 1):
        await model.generate(messages, PARAMS, CallContext(task=task, turn=turn))
        messages += [
            Message(role="assistant", content="ok"),
            Message(role="user", content="again"),
        ]


async def test_every_turn_of_an_episode_goes_to_one_replica() -> None:
    with OpenAIServer(_answer) as a, OpenAIServer(_answer) as b:
        model = OpenAICompatModel(
            "test-model", base_urls=[a.base_url, b.base_url], retry=FAST_RETRY
        )
        try:
            await asyncio.gather(*(_episode(model, n, turns=4) for n in range(12)))
        finally:
            await model.aclose()
    on_a = {_episode_of(r) for r in a.requests}
    on_b = {_episode_of(r) for r in b.requests}
    assert len(on_a | on_b) == 12 and not on_a & on_b  # no episode was split
    assert on_a and on_b  # and both replicas worked
    assert len(a.requests) + len(b.requests) == 48
    assert model.stats["sticky_moves"] == 0


async def test_episodes_of_a_dead_replica_move_and_stay_moved() -> None:
    with OpenAIServer(_answer) as a, OpenAIServer(_answer) as b:
        model = OpenAICompatModel(
            "test-model", base_urls=[a.base_url, b.base_url], retry=FAST_RETRY
        )
        try:
            tasks = [_task(n) for n in range(6)]
            first = [Message(role="user", content=f"episode {n}") for n in range(6)]
            await asyncio.gather(
                *(
                    model.generate([m], PARAMS, CallContext(task=t, turn=1))
                    for m, t in zip(first, tasks, strict=True)
                )
            )
            homed_on_a = {_episode_of(r) for r in a.requests}
            a.responder = _dying  # replica A goes away: it drops every connection from now on
            for turn in (2, 3):
                for m, t in zip(first, tasks, strict=True):
                    await model.generate([m], PARAMS, CallContext(task=t, turn=turn))
        finally:
            await model.aclose()
    assert homed_on_a  # the first turns were spread over both
    # Each episode that lived on A moved once (to B) and stayed there: its third turn cost
    # no retry and no further move.
    assert model.stats["sticky_moves"] == len(homed_on_a)
    assert model.stats["retry.connection"] <= len(homed_on_a)
    assert len(b.requests) == (6 - len(homed_on_a)) + 12  # B answered every later turn
    assert len(a.requests) == len(homed_on_a) + model.stats["retry.connection"]


def test_homes_are_bounded_and_a_full_home_is_waited_for() -> None:
    pool: EndpointPool[str] = EndpointPool(
        ["a", "b"], [AdaptiveLimit(1), AdaptiveLimit(1)], sticky=True, max_keys=3
    )
    assert pool._pick("e1") == 0
    pool.limits[0].in_flight = 1  # e1's home is busy
    assert pool._pick("e1") is None  # wait for it, rather than lose its cached prefix
    assert pool._pick("e2") == 1  # a new episode goes where there is room
    pool.limits[0].in_flight = 0
    for key in ("e3", "e4", "e5"):
        pool._pick(key)
    assert len(pool._homes) == 3 and "e1" not in pool._homes
