"""vLLM offline backend: micro-batching logic with a stand-in engine, and the real thing on a GPU."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
from dataclasses import dataclass
from typing import Any

import pytest

from mulligan.events import Message
from mulligan.models import GenerateParams, ModelError, get_model
from mulligan.models.vllm_offline import VLLMModel


@dataclass
class _Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    stop: list[str]


@dataclass
class _Seq:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class _Out:
    prompt_token_ids: list[int]
    outputs: list[_Seq]


class EchoEngine:
    """Answers each conversation with its last message reversed; records batch sizes."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = False) -> Any:
        self.calls.append(len(messages))
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        assert len(sampling_params) == len(messages)
        return [
            _Out([0] * len(conv), [_Seq(conv[-1]["content"][::-1], [1] * sp.max_tokens)])
            for conv, sp in zip(messages, sampling_params, strict=True)
        ]


async def test_concurrent_calls_are_batched_and_answers_routed_back() -> None:
    engine = EchoEngine()
    model = VLLMModel("m", engine=engine, sampling_params_cls=_Sampling, batch_window_s=0.05)
    calls = [
        model.generate([Message(role="user", content=f"q{i}")], GenerateParams(max_tokens=i + 1))
        for i in range(20)
    ]
    results = await asyncio.gather(*calls)
    await model.aclose()
    assert [r.text for r in results] == [f"q{i}"[::-1] for i in range(20)]
    assert [r.completion_tokens for r in results] == list(range(1, 21))
    assert sum(engine.calls) == 20 and len(engine.calls) < 20  # batched, nothing lost


async def test_engine_failure_fails_every_request_of_the_batch() -> None:
    model = VLLMModel("m", engine=EchoEngine(fail=True), sampling_params_cls=_Sampling)
    with pytest.raises(ModelError, match="CUDA out of memory"):
        await model.generate([Message(role="user", content="q")], GenerateParams())
    await model.aclose()


async def test_missing_vllm_is_a_clear_error() -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    model = get_model("vllm/Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ModelError, match=re.escape("pip install -e '.[vllm]'")):
        await model.generate([Message(role="user", content="q")], GenerateParams())
    await model.aclose()


def _gpu_and_vllm() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install -e '.[vllm]' on a machine with a GPU)"
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this machine"
    return None


@pytest.mark.skipif(_gpu_and_vllm() is not None, reason=str(_gpu_and_vllm()))
async def test_real_vllm_multi_turn() -> None:  # pragma: no cover - needs a GPU
    model = get_model("vllm/Qwen/Qwen2.5-0.5B-Instruct")
    messages = [Message(role="user", content="What is 2 + 3? Answer with a number.")]
    first = await model.generate(messages, GenerateParams(max_tokens=16))
    messages += [
        Message(role="assistant", content=first.text),
        Message(role="user", content="Double it."),
    ]
    second = await model.generate(messages, GenerateParams(max_tokens=16))
    assert first.text and second.text and second.prompt_tokens > first.prompt_tokens
    await model.aclose()
