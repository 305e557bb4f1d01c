"""The response cache: a second identical run makes no model calls; modes, keys, concurrency
within one process and across processes sharing one SQLite file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mulligan.events import Message
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.models.cache import CachedModel, ResponseCache, cache_key, default_cache_path
from mulligan.tasks import Task

GREEDY = GenerateParams(temperature=0.0, max_tokens=16)
SAMPLED = GenerateParams(temperature=0.8, max_tokens=16)


class CountingModel:
    """Answers with a fresh, numbered text each call, so reuse is visible; counts its calls."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.name = "counting/test"
        self.calls = 0
        self.delay_s = delay_s

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.calls += 1
        n = self.calls
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return Completion(
            text=f"answer #{n} to {messages[-1].content}",
            model=self.name,
            prompt_tokens=100 + n,
            completion_tokens=10 + n,
            latency_s=1.5,
            cost_usd=0.25,
        )

    async def aclose(self) -> None:
        return None


def _ctx(task_id: str, turn: int = 1, epoch: int = 0) -> CallContext:
    task = Task(
        id=task_id,
        suite="gsm8k",
        category="reasoning",
        prompt="p",
        reference="1",
        checker="gsm8k",
        gold_solution="1",
    )
    return CallContext(task=task, turn=turn, epoch=epoch)


async def _run(model: CachedModel, episodes: int = 20, turns: int = 3) -> list[Completion]:
    """``episodes`` concurrent multi-turn conversations."""

    async def episode(i: int) -> list[Completion]:
        messages = [Message(role="user", content=f"task {i}")]
        out = []
        for turn in range(1, turns + 1):
            completion = await model.generate(messages, GREEDY, _ctx(str(i), turn))
            out.append(completion)
            messages += [
                Message(role="assistant", content=completion.text),
                Message(role="user", content=f"observation {turn}"),
            ]
        return out

    results = await asyncio.gather(*(episode(i) for i in range(episodes)))
    return [c for r in results for c in r]


async def test_second_identical_run_makes_no_model_calls(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    first_inner = CountingModel()
    first = CachedModel(first_inner, path)
    run1 = await _run(first)
    await first.aclose()
    assert first_inner.calls == 60 and first.hits == 0
    assert not any(c.cached for c in run1)

    second_inner = CountingModel()  # a fresh process would start like this
    second = CachedModel(second_inner, path)
    run2 = await _run(second)
    await second.aclose()
    assert second_inner.calls == 0
    assert second.hits == 60 and second.misses == 0
    assert [c.text for c in run2] == [c.text for c in run1]
    assert all(c.cached for c in run2)
    # The original token counts and cost come back; latency is the lookup's.
    assert [(c.prompt_tokens, c.completion_tokens, c.cost_usd) for c in run2] == [
        (c.prompt_tokens, c.completion_tokens, c.cost_usd) for c in run1
    ]
    assert all(c.latency_s < 1.5 for c in run2)


async def test_key_covers_model_messages_params_and_epoch() -> None:
    messages = [Message(role="user", content="hi")]
    base = cache_key("m", messages, GREEDY, 0)
    assert base == cache_key("m", list(messages), GenerateParams(temperature=0.0, max_tokens=16), 0)
    others = {
        cache_key("other", messages, GREEDY, 0),
        cache_key("m", [Message(role="system", content="hi")], GREEDY, 0),
        cache_key("m", messages, GREEDY.model_copy(update={"seed": 1}), 0),
        cache_key("m", messages, GREEDY.model_copy(update={"stop": ("x",)}), 0),
        cache_key("m", messages, GREEDY.model_copy(update={"max_tokens": 17}), 0),
        cache_key("m", messages, GREEDY, 1),
    }
    assert base not in others and len(others) == 6


async def test_auto_caches_greedy_calls_only(tmp_path: Path) -> None:
    inner = CountingModel()
    model = CachedModel(inner, tmp_path / "c.sqlite")  # mode="auto"
    messages = [Message(role="user", content="q")]
    for _ in range(3):
        await model.generate(messages, GREEDY, _ctx("1"))
        await model.generate(messages, SAMPLED, _ctx("1"))
    await model.aclose()
    assert inner.calls == 1 + 3  # greedy once; every sample fresh


async def test_on_keeps_samples_of_different_epochs_distinct(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    messages = [Message(role="user", content="q")]
    inner = CountingModel()
    model = CachedModel(inner, path, mode="on")
    first = [await model.generate(messages, SAMPLED, _ctx("1", epoch=e)) for e in range(3)]
    again = [await model.generate(messages, SAMPLED, _ctx("1", epoch=e)) for e in range(3)]
    await model.aclose()
    assert inner.calls == 3
    assert len({c.text for c in first}) == 3  # one sample per epoch, not one for all
    assert [c.text for c in again] == [c.text for c in first]


async def test_read_and_write_modes(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    messages = [Message(role="user", content="q")]

    reader_inner = CountingModel()
    reader = CachedModel(reader_inner, path, mode="read")
    await reader.generate(messages, GREEDY, _ctx("1"))
    await reader.generate(messages, GREEDY, _ctx("1"))
    assert reader_inner.calls == 2  # read never stores
    await reader.aclose()

    writer_inner = CountingModel()
    writer = CachedModel(writer_inner, path, mode="write")
    await writer.generate(messages, GREEDY, _ctx("1"))
    refreshed = await writer.generate(messages, GREEDY, _ctx("1"))
    assert writer_inner.calls == 2  # write never reads, but stores (the last one wins)
    await writer.aclose()

    reader2_inner = CountingModel()
    reader2 = CachedModel(reader2_inner, path, mode="read")
    hit = await reader2.generate(messages, GREEDY, _ctx("1"))
    await reader2.aclose()
    assert reader2_inner.calls == 0 and hit.cached and hit.text == refreshed.text

    off_inner = CountingModel()
    off = CachedModel(off_inner, path, mode="off")
    await off.generate(messages, GREEDY, _ctx("1"))
    await off.aclose()
    assert off_inner.calls == 1 and off.cache is None

    with pytest.raises(ValueError, match="unknown cache mode"):
        CachedModel(CountingModel(), path, mode="sometimes")  # type: ignore[arg-type]


async def test_concurrent_identical_calls_reach_the_model_once(tmp_path: Path) -> None:
    inner = CountingModel(delay_s=0.05)
    model = CachedModel(inner, tmp_path / "c.sqlite")
    messages = [Message(role="user", content="same question")]
    replies = await asyncio.gather(
        *(model.generate(messages, GREEDY, _ctx("1")) for _ in range(25))
    )
    await model.aclose()
    assert inner.calls == 1
    assert len({r.text for r in replies}) == 1
    assert sum(r.cached for r in replies) == 24
    assert model._key_locks == {}  # coalescing locks are cleaned up


def test_default_path_honours_mulligan_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cachedir"))
    assert default_cache_path() == tmp_path / "cachedir" / "responses.sqlite"
    monkeypatch.delenv("MULLIGAN_CACHE_DIR")
    assert default_cache_path() == Path.home() / ".cache" / "mulligan" / "responses.sqlite"


_WRITER = textwrap.dedent(
    """
    import sys
    from mulligan.models import Completion
    from mulligan.models.cache import ResponseCache

    cache = ResponseCache(sys.argv[1])
    worker = sys.argv[2]
    for i in range(100):
        key = f"{worker}-{i}"
        cache.put(key, Completion(text=key, model="m"))
        assert cache.get(key).text == key
        cache.get(f"shared-{i}")
        cache.put(f"shared-{i}", Completion(text=f"shared by {worker}", model="m"))
    cache.close()
    """
)


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    ResponseCache(path).close()  # create the file (and WAL mode) once
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"w{n}"]) for n in range(3)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    cache = ResponseCache(path)
    try:
        assert len(cache) == 3 * 100 + 100
        assert all(cache.get(f"w{n}-{i}") is not None for n in range(3) for i in range(100))
    finally:
        cache.close()


async def test_cache_in_front_of_the_http_backend(tmp_path: Path) -> None:
    from mulligan.models.openai_compat import OpenAICompatModel
    from openai_server import OpenAIServer

    path = tmp_path / "c.sqlite"
    with OpenAIServer() as server:
        for round_ in range(2):
            backend = OpenAICompatModel("test-model", base_urls=server.base_url)
            model = CachedModel(backend, path)
            replies = await asyncio.gather(
                *(
                    model.generate([Message(role="user", content=f"q{i}")], GREEDY, _ctx(str(i)))
                    for i in range(10)
                )
            )
            await model.aclose()
            assert [r.text for r in replies] == [f"echo: q{i}" for i in range(10)]
            assert all(r.cached == (round_ == 1) for r in replies)
            assert len(server.requests) == 10  # the second round sent nothing


async def test_a_broken_cache_never_loses_an_answer(tmp_path: Path) -> None:
    inner = CountingModel()
    model = CachedModel(inner, tmp_path / "c.sqlite")
    assert model.cache is not None
    model.cache.close()  # every SQLite call now fails
    completion = await model.generate([Message(role="user", content="q")], GREEDY, _ctx("1"))
    assert completion.text == "answer #1 to q" and inner.calls == 1
    assert model.errors == 3  # two lookups (before and after the coalescing lock) and the store
