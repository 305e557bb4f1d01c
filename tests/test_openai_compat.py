"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1: chat and completion
modes, multi-turn episodes (scripted replies and the real SmolLM2), load balancing across
replicas, the registry names, and the price table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mulligan.events import Message, ModelCallEvent
from mulligan.models import GenerateParams, UnknownModelError, get_model
from mulligan.models.openai_compat import (
    OPENAI_BASE_URL,
    OpenAICompatModel,
    mint_completion_prompt,
    split_base_urls,
)
from mulligan.models.pricing import PriceTable, PriceTableError
from mulligan.models.retry import RetryPolicy
from mulligan.tasks import Task
from openai_server import LocalModelResponder, OpenAIServer, Reply, Request, Response

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)
PARAMS = GenerateParams(max_tokens=32)


def _model(*urls: str, **kw: object) -> OpenAICompatModel:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("timeout_s", 5.0)
    return OpenAICompatModel("test-model", base_urls=list(urls), **kw)  # type: ignore[arg-type]


def _turn_responder(request: Request) -> Response:
    """Answers 'reply <n>' where n counts the assistant messages already in the conversation."""
    n = sum(1 for m in request.body.get("messages", []) if m["role"] == "assistant")
    return Reply(f"reply {n + 1}", prompt_tokens=10 * (n + 1), completion_tokens=2)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(_turn_responder) as s:
        yield s


# ------------------------------------------------------------------------------ chat / completion


async def test_chat_turns_grow_and_usage_is_recorded(server: OpenAIServer) -> None:
    prices = PriceTable.from_toml(
        '[models."openai-compatible/test-model"]\ninput = 1.0\noutput = 2.0'
    )
    model = _model(server.base_url, prices=prices)
    messages = [Message(role="user", content="Start.")]
    try:
        for turn in range(1, 4):
            completion = await model.generate(messages, PARAMS)
            assert completion.text == f"reply {turn}"
            assert completion.model == "openai-compatible/test-model"
            assert (completion.prompt_tokens, completion.completion_tokens) == (10 * turn, 2)
            assert completion.cost_usd == pytest.approx((10 * turn * 1.0 + 2 * 2.0) / 1e6)
            assert completion.latency_s > 0 and completion.finish_reason == "stop"
            messages += [
                Message(role="assistant", content=completion.text),
                Message(role="user", content=f"Observation {turn}"),
            ]
    finally:
        await model.aclose()
    sent = [r.body for r in server.requests]
    assert [len(b["messages"]) for b in sent] == [1, 3, 5]
    assert sent[0] == {
        "model": "test-model",
        "messages": [{"role": "user", "content": "Start."}],
        "temperature": 0.0,
        "top_p": 1.0,
        "max_tokens": 32,
        "seed": 0,
    }
    assert model.stats["requests"] == 3 and model.stats["retries"] == 0
    assert model.counters() == model.stats  # what a run's manifest keeps


async def test_completion_mode_sends_a_mint_style_prompt(server: OpenAIServer) -> None:
    model = _model(server.base_url, mode="completion")
    messages = [
        Message(role="user", content="Task: 1+1?"),
        Message(role="assistant", content="<execute> 1+1 </execute>"),
        Message(role="user", content="Observation: 2"),
    ]
    params = GenerateParams(max_tokens=8, stop=("</solution>",))
    try:
        completion = await model.generate(messages, params)
    finally:
        await model.aclose()
    request = server.requests[0]
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == (
        "\n\nHuman: Task: 1+1?\n\nAssistant: <execute> 1+1 </execute>"
        "\n\nHuman: Observation: 2\n\nAssistant:"
    )
    assert request.body["stop"] == ["</solution>"]
    assert completion.text.startswith("echo") or completion.text.startswith("reply")


@pytest.mark.parametrize("mode", ["chat", "completion"])
async def test_streaming_assembles_the_reply_and_measures_ttft(mode: str) -> None:
    def responder(request: Request) -> Response:
        return Reply("one two three four", prompt_tokens=7, completion_tokens=4, chunk_delay_s=0.02)

    with OpenAIServer(responder) as server:
        model = _model(server.base_url, mode=mode, stream=True)
        try:
            completion = await model.generate([Message(role="user", content="count")], PARAMS)
        finally:
            await model.aclose()
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert completion.text == "one two three four"
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 4)
    assert model.ttft_count == 1 and model.mean_ttft_s is not None
    # The first word came before the rest (several 20 ms gaps later).
    assert 0 < model.mean_ttft_s < completion.latency_s
    assert model.stats["ttft_ms.max"] >= 0


def test_mint_completion_prompt_keeps_system_first() -> None:
    prompt = mint_completion_prompt(
        [Message(role="system", content="Be brief."), Message(role="user", content="Hi")]
    )
    assert prompt == "Be brief.\n\nHuman: Hi\n\nAssistant:"


# ------------------------------------------------------------------------------ episodes


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


def _arith_task() -> Task:
    return Task(
        id="six-times-seven",
        suite="gsm8k",
        category="reasoning",
        prompt="What is 6 times 7? Solution output format: an integer.",
        reference="42",
        checker="gsm8k",
        gold_solution="42",
    )


def _solver(request: Request) -> Response:
    """Runs code on turn 1, then answers with what the sandbox printed."""
    messages = request.body["messages"]
    if not any(m["role"] == "assistant" for m in messages):
        return Reply("<thought> Compute it. </thought>\n<execute>\nprint(6 * 7)\n</execute>")
    seen = messages[-1]["content"]
    answer = "42" if "42" in seen else "0"
    return Reply(f"<thought> The sandbox said so. </thought>\n<solution> {answer} </solution>")


async def test_episode_end_to_end_over_http(sandbox_pool: object) -> None:
    from mulligan.episode import EpisodeLimits, run_episode
    from mulligan.tasks import get_checker

    task = _arith_task()
    with OpenAIServer(_solver) as server:
        model = get_model(f"openai-compatible/test-model@{server.base_url}")
        try:
            episode = await run_episode(
                task=task,
                policy=model,
                params=GenerateParams(max_tokens=64),
                checker=get_checker(task.checker),
                sandboxes=sandbox_pool,  # type: ignore[arg-type]
                feedback=[],
                limits=EpisodeLimits(max_turns=3, max_proposals=2, in_context_example=False),
                run_id="test",
                config_hash="test",
            )
        finally:
            await model.aclose()
    assert episode.error is None, episode.error
    assert (episode.success, episode.success_turn, episode.terminate_reason) == (True, 2, "solved")
    calls = [e for e in episode.events if isinstance(e, ModelCallEvent)]
    assert [c.model for c in calls] == ["openai-compatible/test-model"] * 2
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in calls)
    # Turn 2 saw the prompt, the turn-1 reply and the sandbox's output.
    assert [len(r.body["messages"]) for r in server.requests] == [1, 3]
    assert "42" in server.requests[1].body["messages"][2]["content"]
    assert "</execute>" in server.requests[1].body["stop"]


@pytest.fixture(scope="module")
def smollm_server() -> Iterator[OpenAIServer]:
    try:
        from mulligan.models.local import LocalModel

        # One thread: on a small shared machine llama.cpp's spinning threads fight the test
        # process and other jobs for cores, and two threads can be 10x slower than one.
        local = LocalModel.from_name("local/smollm2-135m", n_ctx=2048, n_threads=1)
    except Exception as e:  # not written yet, llama-cpp-python or the weights missing
        pytest.skip(f"local/smollm2-135m is not available: {type(e).__name__}: {e}")
    responder = LocalModelResponder(local)
    try:
        with OpenAIServer(responder, model_ids=("smollm2-135m",)) as server:
            yield server
    finally:
        responder.close()


@pytest.mark.slow
async def test_multi_turn_against_real_smollm2(smollm_server: OpenAIServer) -> None:
    model = OpenAICompatModel(
        "smollm2-135m", base_urls=smollm_server.base_url, timeout_s=120.0, retry=FAST_RETRY
    )
    messages = [Message(role="user", content="Name a colour. Answer in one word.")]
    prompt_tokens: list[int] = []
    try:
        for turn in range(3):
            completion = await model.generate(messages, GenerateParams(max_tokens=12))
            assert isinstance(completion.text, str)
            assert completion.finish_reason in ("stop", "length")
            assert 0 < completion.completion_tokens <= 12
            prompt_tokens.append(completion.prompt_tokens)
            messages += [
                Message(role="assistant", content=completion.text),
                Message(role="user", content=f"Another one, different from before ({turn})."),
            ]
    finally:
        await model.aclose()
    assert prompt_tokens == sorted(prompt_tokens) and len(set(prompt_tokens)) == 3
    assert model.stats["retries"] == 0


@pytest.mark.slow
async def test_episode_against_real_smollm2(
    smollm_server: OpenAIServer, sandbox_pool: object
) -> None:
    from mulligan.episode import EpisodeLimits, run_episode
    from mulligan.tasks import get_checker

    task = _arith_task()
    model = get_model(f"openai-compatible/smollm2-135m@{smollm_server.base_url}")
    try:
        episode = await run_episode(
            task=task,
            policy=model,
            params=GenerateParams(max_tokens=16),
            checker=get_checker(task.checker),
            sandboxes=sandbox_pool,  # type: ignore[arg-type]
            feedback=[],
            limits=EpisodeLimits(max_turns=2, max_proposals=2, in_context_example=False),
            run_id="test",
            config_hash="test",
        )
    finally:
        await model.aclose()
    # SmolLM2-135M rarely solves anything; the plumbing is what is under test.
    assert episode.status == "finished", episode.error
    calls = [e for e in episode.events if isinstance(e, ModelCallEvent)]
    assert 1 <= len(calls) <= 2 and all(c.prompt_tokens > 0 for c in calls)


# ------------------------------------------------------------------------------ load balancing


async def test_round_robin_splits_evenly() -> None:
    with OpenAIServer(_turn_responder) as a, OpenAIServer(_turn_responder) as b:
        model = _model(a.base_url, b.base_url, balance="round-robin")
        try:
            for _ in range(10):
                await model.generate([Message(role="user", content="hi")], PARAMS)
        finally:
            await model.aclose()
    assert (len(a.requests), len(b.requests)) == (5, 5)
    assert model.served == [5, 5]


async def test_least_in_flight_prefers_the_faster_replica() -> None:
    def slow(request: Request) -> Response:
        return Reply("slow", delay_s=0.3)

    def fast(request: Request) -> Response:
        return Reply("fast", delay_s=0.01)

    with OpenAIServer(slow) as a, OpenAIServer(fast) as b:
        model = _model(a.base_url, b.base_url, max_concurrency=4)
        try:
            replies = await asyncio.gather(
                *(model.generate([Message(role="user", content=str(i))], PARAMS) for i in range(40))
            )
        finally:
            await model.aclose()
    assert len(replies) == 40
    assert len(a.requests) + len(b.requests) == 40
    assert len(b.requests) > 2 * len(a.requests) > 0
    assert a.max_in_flight <= 4 and b.max_in_flight <= 4


async def test_a_dead_replica_is_routed_around() -> None:
    dead = OpenAIServer(_turn_responder).start()
    dead_url = dead.base_url
    dead.stop()  # the port is closed now: connections are refused
    with OpenAIServer(_turn_responder) as alive:
        model = _model(dead_url, alive.base_url)
        try:
            burst = await asyncio.gather(
                *(model.generate([Message(role="user", content=str(i))], PARAMS) for i in range(20))
            )
            # The burst went to both replicas before any refusal came back; the dead one is
            # ejected since, so later calls cost no more retries.
            after_burst = model.stats["retries"]
            for i in range(10):
                await model.generate([Message(role="user", content=str(i))], PARAMS)
        finally:
            await model.aclose()
    assert len(burst) == 20 and len(alive.requests) == 30
    assert after_burst == model.stats["retry.connection"] >= 1
    assert model.stats["retries"] == after_burst
    assert model.stats["ejections"] == 1


# ------------------------------------------------------------------------------ registry


def test_registry_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MULLIGAN_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)  # it would replace OpenAI's URL
    with pytest.raises(UnknownModelError, match="OPENAI_API_KEY"):
        get_model("openai/gpt-4o-mini")
    with pytest.raises(UnknownModelError, match="MULLIGAN_BASE_URL"):
        get_model("openai-compatible/Qwen/Qwen2.5-7B-Instruct")

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    openai_model = get_model("openai/gpt-4o-mini")
    assert isinstance(openai_model, OpenAICompatModel)
    assert openai_model.name == "openai/gpt-4o-mini" and openai_model.model == "gpt-4o-mini"
    assert [e.base_url for e in openai_model.endpoints] == [OPENAI_BASE_URL]
    assert openai_model.max_tokens_field == "max_completion_tokens"
    assert openai_model.price_known

    monkeypatch.setenv("MULLIGAN_BASE_URL", "http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1")
    fleet = get_model("openai-compatible/Qwen/Qwen2.5-7B-Instruct")
    assert isinstance(fleet, OpenAICompatModel)
    assert fleet.model == "Qwen/Qwen2.5-7B-Instruct"
    assert [e.base_url for e in fleet.endpoints] == [
        "http://10.0.0.1:8000/v1",
        "http://10.0.0.2:8000/v1",
    ]
    assert not fleet.price_known  # self-hosted: costed at 0 and flagged

    named = get_model("openai-compatible/m@http://127.0.0.1:9/v1")
    assert isinstance(named, OpenAICompatModel)
    assert named.name == "openai-compatible/m"
    assert [e.base_url for e in named.endpoints] == ["http://127.0.0.1:9/v1"]


@pytest.mark.parametrize("bad", ["sk-\u201ctest\u201d", "sk-te\nX-Injected: 1", "sk-\x7f"])
def test_an_api_key_no_header_can_carry_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("MULLIGAN_API_KEY", bad)
    with pytest.raises(UnknownModelError, match=r"\$MULLIGAN_API_KEY has a character") as caught:
        get_model("openai-compatible/m@http://127.0.0.1:9/v1")
    assert "sk-" not in str(caught.value)
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    with pytest.raises(UnknownModelError, match=r"\$OPENAI_API_KEY has a character"):
        get_model("openai/gpt-4o-mini")
    monkeypatch.setenv("MULLIGAN_API_KEY", "  sk-test\n")  # surrounding whitespace is dropped
    assert get_model("openai-compatible/m@http://127.0.0.1:9/v1") is not None


def test_split_base_urls() -> None:
    assert split_base_urls("org/model") == ("org/model", [])
    assert split_base_urls("m@http://a/v1,https://b/v1") == ("m", ["http://a/v1", "https://b/v1"])


# ------------------------------------------------------------------------------ pricing


def test_bundled_prices_and_snapshots() -> None:
    table = PriceTable.load()
    cost, known = table.cost("openai/gpt-4o-mini", 1_000_000, 1_000_000)
    assert known and cost == pytest.approx(0.15 + 0.60)
    # A dated snapshot is priced like its alias.
    assert table.price("openai/gpt-4o-mini-2024-07-18") == table.price("openai/gpt-4o-mini")
    assert table.cost("openai-compatible/llama", 1000, 1000) == (0.0, False)


def test_price_file_override_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."openai-compatible/llama"]\ninput = 0.1\noutput = 0.2\n')
    monkeypatch.setenv("MULLIGAN_PRICES", str(path))
    assert PriceTable.load().cost("openai-compatible/llama", 10**6, 0) == (0.1, True)
    path.write_text('[models."x"]\ninput = -1\noutput = 0\n')
    with pytest.raises(PriceTableError, match=r"models\.'x'"):
        PriceTable.load(path)
    path.write_text("not = [toml")
    with pytest.raises(PriceTableError, match="not valid TOML"):
        PriceTable.load(path)


async def test_a_given_key_wins_over_a_netrc_entry_and_netrc_serves_without_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login me password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    with OpenAIServer() as server:
        for key in ("sk-given", None):
            model = OpenAICompatModel(
                "test-model", base_urls=server.base_url, **({"api_key": key} if key else {})
            )
            try:
                await model.generate([Message(role="user", content="hi")], PARAMS)
            finally:
                await model.aclose()
        given, default = (r.headers.get("authorization") for r in server.requests)
    assert given == "Bearer sk-given"
    assert default == "Basic bWU6c2VjcmV0"  # me:secret, from the netrc: no key was given
