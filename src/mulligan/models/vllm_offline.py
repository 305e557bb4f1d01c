"""vLLM's offline engine in-process (``vllm/<hf-model-or-path>``), with request micro-batching.

vLLM is fastest when it sees many sequences at once, but the episode loop makes one call per
episode turn. ``VLLMModel`` therefore queues concurrent ``generate`` calls for a few
milliseconds and hands them to ``LLM.chat`` as one batch (one ``SamplingParams`` per request),
on a dedicated thread so the event loop keeps running. Needs the optional ``vllm`` extra
(``pip install -e '.[vllm]'``) and a GPU; importing this module does not import vllm.
A role's backend arguments (``-M key=value``, :data:`~mulligan.models.args.VLLM_ARGS`) are
``vllm.LLM``'s engine arguments (``tensor_parallel_size``, ``max_model_len``, ...) and the
batching's ``batch_window_s`` and ``max_batch``.

Identity (what the response cache keys on): the model's name, or its resolved path when it is a
local directory, and the engine options that choose the weights or their arithmetic
(``revision``, ``tokenizer``, ``tokenizer_revision``, ``tokenizer_mode``, ``quantization``,
``dtype``, ``kv_cache_dtype``, ``hf_overrides``). A hub name
without ``revision`` means whatever its main branch holds: pin ``revision`` for a cache that
outlives an upload.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mulligan.events import Message
from mulligan.models.base import CallContext, Completion, GenerateParams, ModelError


class ChatEngine(Protocol):
    """The part of ``vllm.LLM`` we use."""

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: bool = ...) -> Any: ...


_IDENTITY_OPTIONS = (
    "tokenizer",
    "tokenizer_revision",
    "tokenizer_mode",
    "quantization",
    "dtype",
    "kv_cache_dtype",
    "hf_overrides",
)


@dataclass
class _Request:
    messages: list[dict[str, str]]
    params: GenerateParams
    future: asyncio.Future[Completion]
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.perf_counter)


def _load_vllm_engine(model: str, engine_kwargs: dict[str, Any]) -> tuple[ChatEngine, Any]:
    try:
        import vllm
    except ImportError as exc:  # the extra is optional and GPU-only
        raise ModelError(
            "vllm/ models need vLLM and a CUDA GPU: pip install -e '.[vllm]' in mulligan's "
            "checkout "
            f"(import failed: {exc})"
        ) from exc
    return vllm.LLM(model=model, **engine_kwargs), vllm.SamplingParams


class VLLMModel:
    """A model served by vLLM's offline ``LLM`` in this process.

    ``engine`` and ``sampling_params_cls`` may be injected (tests, or an engine built by the
    caller); otherwise ``vllm.LLM(model, **engine_kwargs)`` is created on first use.
    ``batch_window_s`` is how long the first queued request waits for company.
    """

    cacheable = True

    def __init__(
        self,
        model: str,
        *,
        engine: ChatEngine | None = None,
        sampling_params_cls: Any = None,
        batch_window_s: float = 0.005,
        max_batch: int = 256,
        **engine_kwargs: Any,
    ) -> None:
        self.model = model
        self.name = f"vllm/{model}"
        self._engine = engine
        self._sampling_cls = sampling_params_cls
        self._engine_kwargs = engine_kwargs
        self._window = batch_window_s
        self._max_batch = max_batch
        self._queue: list[_Request] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the batches sent, for tests and benchmarks

    async def resolve_identity(self) -> dict[str, Any]:
        """The model and the engine options that decide its answers (module docstring)."""
        local = Path(self.model).expanduser()
        identity: dict[str, Any] = {
            "backend": "vllm",
            "model": str(local.resolve()) if local.is_dir() else self.model,
        }
        for option in ("revision", *_IDENTITY_OPTIONS):
            value = self._engine_kwargs.get(option)
            if value is not None:
                identity[option] = (
                    json.dumps(value, sort_keys=True, default=str)
                    if isinstance(value, dict)
                    else str(value)
                )
        return identity

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="mulligan-vllm", daemon=True)
            self._thread.start()

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        if self._closed:
            raise ModelError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        request = _Request(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            params=params,
            future=loop.create_future(),
            loop=loop,
        )
        with self._lock:
            self._queue.append(request)
        self._ensure_thread()
        self._wakeup.set()
        return await request.future

    def _serve(self) -> None:
        """The engine thread: wait for requests, gather a batch, run it, deliver results."""
        while not self._closed:
            self._wakeup.wait()
            time.sleep(self._window)  # let concurrent callers join this batch
            with self._lock:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                if not self._queue:
                    self._wakeup.clear()
            if batch:
                self._run_batch(batch)

    def _run_batch(self, batch: Sequence[_Request]) -> None:
        try:
            if self._engine is None:
                self._engine, self._sampling_cls = _load_vllm_engine(
                    self.model, self._engine_kwargs
                )
            sampling = [self._sampling(r.params) for r in batch]
            started = time.perf_counter()
            outputs = self._engine.chat(
                [r.messages for r in batch], sampling_params=sampling, use_tqdm=False
            )
            elapsed = time.perf_counter() - started
            if len(outputs) != len(batch):
                raise ModelError(f"vLLM returned {len(outputs)} outputs for {len(batch)} requests")
        except Exception as exc:
            error = exc if isinstance(exc, ModelError) else ModelError(f"vLLM failed: {exc}")
            for request in batch:
                request.loop.call_soon_threadsafe(_set_exception, request.future, error)
            return
        self.batches.append(len(batch))
        for request, output in zip(batch, outputs, strict=True):
            first = output.outputs[0]
            completion = Completion(
                text=first.text,
                model=self.name,
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(first.token_ids),
                latency_s=elapsed + (started - request.queued_at),
                finish_reason=str(first.finish_reason or "stop"),
            )
            request.loop.call_soon_threadsafe(_set_result, request.future, completion)

    def _sampling(self, params: GenerateParams) -> Any:
        if self._sampling_cls is None:
            raise ModelError("no SamplingParams class: pass sampling_params_cls with engine")
        return self._sampling_cls(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            stop=list(params.stop),
        )

    async def aclose(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)


def _set_result(future: asyncio.Future[Completion], value: Completion) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Completion], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
