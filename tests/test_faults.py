"""Fault injection: a real server on 127.0.0.1 answers with 429s, 5xx, hangs, dropped
connections and malformed bodies in a scripted pattern; every call must succeed or fail with a
ModelError naming the cause, none lost, none duplicated, and each retry counted by cause."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.events import Message
from mulligan.models import ContextWindowExceeded, GenerateParams
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.retry import (
    AdaptiveLimit,
    BackendError,
    RetryPolicy,
    TransientFault,
    parse_retry_after,
    retry_wait,
)
from mulligan.store import RunStore
from mulligan.tasks import Task
from openai_server import Drop, Hang, OpenAIServer, Raw, Reply, Request, Response, Status

MAX_ATTEMPTS = 4
POLICY = RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_backoff_s=0.01, max_backoff_s=0.05)
PARAMS = GenerateParams(max_tokens=16)

# What the server does to each attempt of an episode, by episode number modulo 20; attempts past
# the list succeed. Faults map to the cause the backend must count. Half the episodes are clean:
# a server that rate-limits every other request would (rightly) pin the AIMD limit near 1 and
# make this test slow, not stronger.
FAULTS: dict[str, Response] = {
    "429": Status(429, "Rate limit reached", headers={"retry-after-ms": "20"}),
    "500": Status(500, "Internal server error"),
    "503": Status(503, "Service unavailable", headers={"Retry-After": "0"}),
    "hang": Hang(5.0),
    "drop": Drop(),
    "not-json": Raw(b'{"choices": [{"message": '),
    "no-choices": Raw(b'{"id": "x", "object": "chat.completion"}'),
}
CAUSE = {
    "429": "http_429",
    "500": "http_500",
    "503": "http_503",
    "hang": "timeout",
    "drop": "connection",
    "not-json": "malformed",
    "no-choices": "malformed",
}
PATTERNS: list[list[str]] = [
    *([] for _ in range(10)),
    ["429"],
    ["500"],
    ["503", "503"],
    ["hang"],
    ["drop"],
    ["not-json"],
    ["no-choices"],
    ["500"] * MAX_ATTEMPTS,  # never heals: the call must fail, naming http_500
    ["429", "500", "hang"],
    ["drop", "not-json", "503"],
]
EPISODES = 200


class ScriptedFaults:
    """Responder: episode ``n``'s attempt ``a`` gets ``PATTERNS[n % 20][a]``, then a reply."""

    def __init__(self) -> None:
        self.attempts: Counter[int] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        episode = int(request.last_user.removeprefix("episode "))
        with self.lock:
            attempt = self.attempts[episode]
            self.attempts[episode] += 1
        pattern = PATTERNS[episode % len(PATTERNS)]
        if attempt < len(pattern):
            return FAULTS[pattern[attempt]]
        return Reply(f"answer {episode}")


def _expected(episodes: int) -> tuple[Counter[str], dict[int, int], set[int]]:
    """Retries per cause, attempts per episode, and the episodes that must fail."""
    retries: Counter[str] = Counter()
    attempts: dict[int, int] = {}
    failing: set[int] = set()
    for episode in range(episodes):
        pattern = PATTERNS[episode % len(PATTERNS)]
        tried = min(len(pattern) + 1, MAX_ATTEMPTS)
        attempts[episode] = tried
        for fault in pattern[: tried - 1]:  # every attempt but the last was retried
            retries[CAUSE[fault]] += 1
        if len(pattern) >= MAX_ATTEMPTS:
            failing.add(episode)
    return retries, attempts, failing


@pytest.mark.parametrize(("stream", "episodes"), [(False, EPISODES), (True, 100)])
async def test_concurrent_episodes_under_scripted_faults(stream: bool, episodes: int) -> None:
    """200 single-turn episodes at once (100 when streaming, whose faults strike mid-stream)."""
    responder = ScriptedFaults()
    with OpenAIServer(responder) as server:
        model = OpenAICompatModel(
            "test-model",
            base_urls=server.base_url,
            # A hang (5 s) costs one timeout; real replies take milliseconds, but on a loaded
            # machine 100 streams at once can take over a second to start.
            timeout_s=2.5,
            retry=POLICY,
            max_concurrency=32,
            stream=stream,
        )

        async def episode(n: int) -> tuple[int, str]:
            messages = [Message(role="user", content=f"episode {n}")]
            try:
                completion = await model.generate(messages, PARAMS)
            except BackendError as e:
                return n, f"error:{e.cause}:{e.transient}:{e.attempts}:{e}"
            # Time to first token is measured only when streaming, and never exceeds latency.
            assert (completion.ttft_s is not None) == stream
            assert completion.ttft_s is None or completion.ttft_s <= completion.latency_s
            return n, completion.text

        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(episode(n) for n in range(episodes))), timeout=60
            )
        finally:
            await model.aclose()

    expected_retries, expected_attempts, failing = _expected(episodes)
    # None lost: one outcome per episode, and each is the episode's own answer or a named error.
    assert sorted(n for n, _ in outcomes) == list(range(episodes))
    for n, outcome in outcomes:
        if n in failing:
            assert outcome.startswith(f"error:http_500:True:{MAX_ATTEMPTS}:"), outcome
            assert f"gave up after {MAX_ATTEMPTS} attempts" in outcome
            assert "HTTP 500" in outcome
        else:
            assert outcome == f"answer {n}", (n, outcome)
    # None duplicated: the server saw exactly the attempts the script calls for, no more.
    assert dict(responder.attempts) == expected_attempts
    assert len(server.requests) == sum(expected_attempts.values())
    # Retries counted per cause, exactly.
    assert model.retry_stats.retries == expected_retries
    assert model.stats["requests"] == sum(expected_attempts.values())
    assert model.stats["succeeded"] == episodes - len(failing)
    assert model.stats["failed"] == len(failing) == model.stats["error.http_500"]
    # The 429s halved the limit at least once; it never exceeded its maximum.
    assert model.stats["limit_lowest.0"] < 32 and server.max_in_flight <= 32
    if stream:
        assert model.mean_ttft_s is not None and model.ttft_count == episodes - len(failing)
    print("retries by cause:", dict(sorted(model.retry_stats.retries.items())), model.stats)


# ------------------------------------------------------------------------------ final errors


@pytest.mark.parametrize(
    ("api_key", "model_id", "cause", "hint"),
    [
        ("wrong", "test-model", "http_401", "MULLIGAN_API_KEY"),
        ("sk-right", "no-such-model", "http_404", "does not know model 'no-such-model'"),
    ],
)
async def test_final_errors_fail_fast_without_retries(
    api_key: str, model_id: str, cause: str, hint: str
) -> None:
    with OpenAIServer(api_key="sk-right") as server:
        model = OpenAICompatModel(
            model_id, base_urls=server.base_url, api_key=api_key, retry=POLICY
        )
        try:
            with pytest.raises(BackendError) as info:
                await model.generate([Message(role="user", content="hi")], PARAMS)
        finally:
            await model.aclose()
    assert (info.value.cause, info.value.transient, info.value.attempts) == (cause, False, 1)
    assert hint in str(info.value) and "Not retried" in str(info.value)
    assert len(server.requests) == 1
    assert model.stats["retries"] == 0 and model.stats[f"error.{cause}"] == 1


async def test_context_length_400_is_context_window_exceeded() -> None:
    message = (
        "This model's maximum context length is 2048 tokens. However, you requested 2100 "
        "tokens (2000 in the messages, 100 in the completion)."
    )
    with OpenAIServer(lambda r: Status(400, message)) as server:
        model = OpenAICompatModel("test-model", base_urls=server.base_url, retry=POLICY)
        try:
            with pytest.raises(ContextWindowExceeded, match="maximum context length") as info:
                await model.generate([Message(role="user", content="long")], PARAMS)
        finally:
            await model.aclose()
    assert not info.value.transient and len(server.requests) == 1


async def test_other_400s_are_final_and_carry_the_server_message() -> None:
    with OpenAIServer(lambda r: Status(400, "temperature must be <= 2")) as server:
        model = OpenAICompatModel("test-model", base_urls=server.base_url, retry=POLICY)
        try:
            with pytest.raises(BackendError, match="temperature must be <= 2") as info:
                await model.generate([Message(role="user", content="hi")], PARAMS)
        finally:
            await model.aclose()
    assert not isinstance(info.value, ContextWindowExceeded)
    assert (info.value.cause, info.value.transient) == ("http_400", False)
    assert len(server.requests) == 1


# ------------------------------------------------------------------------------ Retry-After


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "3"}) == 0.25
    assert parse_retry_after(
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0
    ) == (pytest.approx(10.0))
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-1"}) is None
    assert parse_retry_after({}) is None


def test_waits_obey_retry_after_and_back_off_with_jitter() -> None:
    policy = RetryPolicy(initial_backoff_s=1.0, max_backoff_s=8.0, max_retry_after_s=30.0)
    told = TransientFault("http_429", "slow down", retry_after_s=12.0)
    assert retry_wait(policy, 1, told) == 12.0
    capped = TransientFault("http_429", "slow down", retry_after_s=3600.0)
    assert retry_wait(policy, 1, capped) == 30.0
    plain = TransientFault("http_500", "oops")
    for attempt in (1, 2, 3, 4, 5, 6):
        waits = [retry_wait(policy, attempt, plain) for _ in range(50)]
        ceiling = min(8.0, 1.0 * 2 ** (attempt - 1))
        assert all(0.0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered


async def test_the_client_waits_as_long_as_retry_after_says() -> None:
    calls = iter([Status(429, "slow", headers={"retry-after-ms": "300"})])

    def responder(request: Request) -> Response:
        return next(calls, Reply("ok"))

    with OpenAIServer(responder) as server:
        model = OpenAICompatModel("test-model", base_urls=server.base_url, retry=POLICY)
        try:
            completion = await model.generate([Message(role="user", content="hi")], PARAMS)
        finally:
            await model.aclose()
    assert completion.text == "ok"
    assert model.retry_stats.waited_s == pytest.approx(0.3)
    assert model.stats["retry.http_429"] == 1


# ------------------------------------------------------------------------------ AIMD


def test_aimd_halves_once_per_congestion_event_and_grows_by_one() -> None:
    limit = AdaptiveLimit(maximum=16)
    burst_generation = limit.generation
    for _ in range(10):  # ten 429s answering one burst: one decrease
        limit.on_congestion(burst_generation)
    assert limit.limit == 8
    limit.on_congestion(limit.generation)  # a 429 to a request sent after the decrease
    assert limit.limit == 4
    for _ in range(20):
        limit.on_success()
    assert limit.limit == 16  # bounded by the maximum
    for _ in range(10):
        limit.on_congestion(limit.generation)
    assert limit.limit == 1 and limit.lowest == 1  # bounded below by 1


async def test_concurrency_shrinks_under_429s_and_grows_back() -> None:
    state = {"rejections_left": 60}
    lock = threading.Lock()

    def responder(request: Request) -> Response:
        with lock:
            congested = state["rejections_left"] > 0
            state["rejections_left"] -= 1
        if congested:
            return Status(429, "Too many requests", headers={"retry-after-ms": "5"})
        return Reply("ok", delay_s=0.005)

    with OpenAIServer(responder) as server:
        model = OpenAICompatModel(
            "test-model",
            base_urls=server.base_url,
            max_concurrency=16,
            retry=RetryPolicy(max_attempts=100, initial_backoff_s=0.005, max_backoff_s=0.02),
        )
        try:
            first = await asyncio.gather(
                *(model.generate([Message(role="user", content=str(i))], PARAMS) for i in range(40))
            )
            shrunk_to = model.stats["limit_lowest.0"]
            server.max_in_flight = 0
            second = await asyncio.gather(
                *(model.generate([Message(role="user", content=str(i))], PARAMS) for i in range(40))
            )
        finally:
            await model.aclose()
    assert all(c.text == "ok" for c in (*first, *second))
    assert shrunk_to <= 2  # halved repeatedly while every request was rejected
    assert model.stats["limit.0"] == 16  # grew back, one per success, to the maximum
    assert model.stats["retry.http_429"] == 60  # every rejection was retried, none lost
    assert 1 < server.max_in_flight <= 16  # the second wave ran concurrently, within bounds


# ------------------------------------------------------------------- a whole run under faults


class TaskFaults(ScriptedFaults):
    """Like ScriptedFaults, keyed by the task number in the prompt; replies with the answer."""

    def __call__(self, request: Request) -> Response:
        episode = int(request.last_user.rsplit("task ", 1)[1].split()[0])
        with self.lock:
            attempt = self.attempts[episode]
            self.attempts[episode] += 1
        pattern = PATTERNS[episode % len(PATTERNS)]
        if attempt < len(pattern):
            return FAULTS[pattern[attempt]]
        return Reply(f"<thought> easy </thought> <solution> {episode * 3} </solution>")


async def test_a_200_episode_run_under_faults_loses_and_repeats_nothing(
    tmp_path: Path, sandboxes: object
) -> None:
    """The engine, the backend and the store together: every episode finished or failed with
    its cause, each exactly once; a resume retries only the failed ones."""
    tasks = [
        Task(
            id=str(n),
            suite="synthetic",
            category="reasoning",
            prompt=f"This is task {n} . What is 3 times {n}?",
            reference=str(n * 3),
            checker="gsm8k",
            gold_solution=str(n * 3),
        )
        for n in range(EPISODES)
    ]
    responder = TaskFaults()
    cfg = RunConfig(
        model="openai-compatible/test-model",
        turns=2,
        concurrency=64,
        cache="off",
        out=tmp_path / "run",
    )
    with OpenAIServer(responder) as server:
        # A hang (5 s) costs one timeout; at 1 s a loaded machine's first burst of connections
        # timed out before the in-process server read them, an attempt the server never saw.
        model = OpenAICompatModel(
            "test-model", base_urls=server.base_url, timeout_s=2.5, retry=POLICY, max_concurrency=32
        )
        try:  # a model passed in is the caller's to close
            summary = await execute_run(cfg, model=model, tasks=tasks, sandboxes=sandboxes)  # type: ignore[arg-type]
        finally:
            await model.aclose()
        _, expected_attempts, failing = _expected(EPISODES)
        assert dict(responder.attempts) == expected_attempts  # no request repeated or skipped
        assert (summary.finished, summary.failed, summary.solved) == (
            EPISODES - len(failing),
            len(failing),
            EPISODES - len(failing),
        )
        with RunStore.open_existing(cfg.execution.out) as store:
            episodes = list(store.episodes())
        assert sorted(int(e.key.task_id) for e in episodes) == list(range(EPISODES))
        for episode in episodes:
            if int(episode.key.task_id) in failing:
                assert episode.status == "failed" and "http_500" in (episode.error or "")
            else:
                assert episode.status == "finished" and episode.success_turn == 1
        print("retries by cause:", dict(sorted(model.retry_stats.retries.items())))

        # Resume: only the failed episodes are attempted again (and now they heal).
        before = sum(responder.attempts.values())
        model = OpenAICompatModel(
            "test-model", base_urls=server.base_url, timeout_s=2.5, retry=POLICY, max_concurrency=32
        )
        try:
            summary = await execute_run(
                cfg, resume=True, model=model, tasks=tasks, sandboxes=sandboxes
            )  # type: ignore[arg-type]
        finally:
            await model.aclose()
        assert summary.skipped == EPISODES - len(failing) and summary.solved == len(failing)
        assert sum(responder.attempts.values()) - before == len(failing)
