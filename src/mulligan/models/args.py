"""Backend arguments (``-M key=value``, ``--model-config FILE``): what each built-in backend
accepts, checking a role's arguments against that, and which of them define results.

A role's arguments go to its backend's constructor (:func:`~mulligan.models.registry.get_model`):
the OpenAI-compatible client (:data:`OPENAI_ARGS`), llama.cpp (:data:`LLAMA_CPP_ARGS`) or vLLM's
engine (:data:`VLLM_ARGS`). An unknown key is an error that names the key, the backend and the
keys it accepts; a value of the wrong type or outside its choices is one too. ``null`` stands
for the backend's default (the key is dropped).

Which arguments are hashed (part of the config hash, compared on ``--resume``): those that change
what the model is asked or how its answer is computed, as configuration: the API mode, extra
request fields, whether the seed is sent, the context size, the chat template, the weights'
revision, precision or quantization. Those that only change speed, memory, timeouts, retries or
concurrency are not, even where they may perturb floating-point results (llama.cpp's batch size,
vLLM's tensor parallelism): a resumed run may change them. An argument a backend does not declare
(a provider registered without a table) is hashed, to be safe. A run without arguments hashes as
before arguments existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mulligan.errors import MulliganError


class ModelArgError(MulliganError, ValueError):
    """A backend argument the backend does not accept, or a value it cannot take."""


@dataclass(frozen=True)
class ModelArg:
    """One argument a backend accepts.

    Attributes:
        kind: the JSON types it takes (``float`` admits whole numbers; ``bool`` is never a number).
        hashed: whether it changes results (module docstring).
        help: what it does, for error messages and documentation.
        choices: the values it takes, if only a few.
        minimum: the least number it takes, if any.
    """

    kind: tuple[type, ...]
    hashed: bool
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None


_KIND_NAMES = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    dict: "a JSON object",
    list: "a JSON list",
}


def _arg(kind: type | tuple[type, ...], hashed: bool, help: str, **more: Any) -> ModelArg:
    return ModelArg(kind if isinstance(kind, tuple) else (kind,), hashed, help, **more)


OPENAI_ARGS: dict[str, ModelArg] = {
    "mode": _arg(
        str, True, "chat, or completion with a prompt in MINT's format",
        choices=("chat", "completion"),
    ),
    "extra_body": _arg(dict, True, "extra JSON fields of every request, e.g. vLLM's top_k"),
    "send_seed": _arg(bool, True, "send each call's seed (some servers reject the field)"),
    "stream": _arg(bool, False, "receive server-sent events; measures time to first token"),
    "timeout_s": _arg(float, False, "seconds per request", minimum=0.001),
    "max_concurrency": _arg(int, False, "requests in flight per replica, at most", minimum=1),
    "initial_concurrency": _arg(int, False, "the per-replica limit at start", minimum=1),
    "balance": _arg(
        str, False, "how requests pick a replica", choices=("least-in-flight", "round-robin")
    ),
    "retry": _arg(dict, False, "retry policy: max_attempts, initial_backoff_s, ..."),
    "max_tokens_field": _arg(
        str, False, "the request field for the reply's token limit",
        choices=("max_tokens", "max_completion_tokens"),
    ),
}  # fmt: skip
"""What ``openai/`` and ``openai-compatible/`` models accept (:class:`OpenAICompatModel`)."""

LLAMA_CPP_ARGS: dict[str, ModelArg] = {
    "n_ctx": _arg(int, True, "context window in tokens (prompt + reply)", minimum=16),
    "min_reply_tokens": _arg(
        int, True, "fewest tokens left for a reply before the window is full", minimum=1
    ),
    "chat_template": _arg(str, True, "a Jinja chat template replacing the GGUF file's"),
    "n_threads": _arg(int, False, "CPU threads per call", minimum=1),
    "n_batch": _arg(int, False, "prompt tokens per batch during prefill", minimum=1),
    "reuse_prefix": _arg(bool, False, "reuse the KV cache of the previous call's shared prefix"),
    "prompt_cache_mb": _arg(
        int, False, "MiB of RAM for KV states of episodes in flight (0: off)", minimum=0
    ),
}  # fmt: skip
"""What ``local/`` models accept (:class:`~mulligan.models.local.LocalModel`)."""

VLLM_ARGS: dict[str, ModelArg] = {
    "max_model_len": _arg(int, True, "context length in tokens", minimum=1),
    "dtype": _arg(str, True, "weights' and activations' precision, e.g. bfloat16"),
    "quantization": _arg(str, True, "quantization method, e.g. awq, fp8"),
    "kv_cache_dtype": _arg(str, True, "KV cache precision, e.g. fp8"),
    "revision": _arg(str, True, "the weights' revision (branch, tag or commit)"),
    "tokenizer": _arg(str, True, "tokenizer name or path, if not the model's"),
    "tokenizer_revision": _arg(str, True, "the tokenizer's revision"),
    "tokenizer_mode": _arg(str, True, "auto, slow, mistral, ..."),
    "trust_remote_code": _arg(bool, True, "run the model repository's own code"),
    "hf_overrides": _arg(dict, True, "overrides of the model's Hugging Face config"),
    "engine_args": _arg(dict, True, "other vllm.LLM arguments, passed as they are"),
    "tensor_parallel_size": _arg(int, False, "GPUs per model replica", minimum=1),
    "pipeline_parallel_size": _arg(int, False, "pipeline stages", minimum=1),
    "gpu_memory_utilization": _arg(
        float, False, "fraction of GPU memory vLLM may use", minimum=0.01
    ),
    "max_num_seqs": _arg(int, False, "sequences per engine step", minimum=1),
    "max_num_batched_tokens": _arg(int, False, "tokens per engine step", minimum=1),
    "enable_prefix_caching": _arg(bool, False, "reuse KV cache across requests"),
    "enable_chunked_prefill": _arg(bool, False, "split long prefills across steps"),
    "enforce_eager": _arg(bool, False, "no CUDA graphs"),
    "swap_space": _arg(float, False, "CPU swap space per GPU, GiB", minimum=0),
    "cpu_offload_gb": _arg(float, False, "weights offloaded to CPU memory, GiB", minimum=0),
    "download_dir": _arg(str, False, "where downloaded weights go"),
    "distributed_executor_backend": _arg(str, False, "mp or ray"),
    "batch_window_s": _arg(
        float, False, "how long a request waits to be batched with others", minimum=0
    ),
    "max_batch": _arg(int, False, "requests per batch handed to the engine", minimum=1),
}  # fmt: skip
"""What ``vllm/`` models accept: ``vllm.LLM``'s engine arguments (other ones through
``engine_args``) and :class:`~mulligan.models.vllm_offline.VLLMModel`'s batching."""


def check_model_args(
    model: str, backend: str, accepted: Mapping[str, ModelArg], args: Mapping[str, Any]
) -> dict[str, Any]:
    """``args`` checked against what ``backend`` accepts, ``null`` values dropped.

    Raises:
        ModelArgError: a key it does not accept (naming the key, the backend and what it
            accepts), or a value of the wrong type, outside its choices or below its minimum.
    """
    out: dict[str, Any] = {}
    for key, value in args.items():
        spec = accepted.get(key)
        if spec is None:
            known = ", ".join(sorted(accepted)) if accepted else "none"
            raise ModelArgError(
                f"unknown model argument {key!r} for {model}: the {backend} accepts {known}"
            )
        if value is not None:
            out[key] = _checked_value(model, key, spec, value)
    return out


def _checked_value(model: str, key: str, spec: ModelArg, value: Any) -> Any:
    if str in spec.kind and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # -M revision=1234 parses as JSON's number; it was meant as text
    if not any(_fits(value, kind) for kind in spec.kind):
        wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in spec.kind)
        raise ModelArgError(
            f"model argument {key} for {model} must be {wanted} ({spec.help}), got {value!r}"
        )
    if spec.choices and value not in spec.choices:
        raise ModelArgError(
            f"model argument {key} for {model} must be one of {', '.join(spec.choices)}, "
            f"got {value!r}"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise ModelArgError(
            f"model argument {key} for {model} must be at least {spec.minimum:g}, got {value!r}"
        )
    return value


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # a subclass of int, but never a number here
        return kind is bool
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def hashed_args(accepted: Mapping[str, ModelArg] | None, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments among ``args`` that define results (module docstring); an argument that
    ``accepted`` does not declare, or every one when it is None (unknown backend), counts."""
    if accepted is None:
        return dict(args)
    return {k: v for k, v in args.items() if k not in accepted or accepted[k].hashed}
