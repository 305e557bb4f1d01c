"""The model protocol: one async ``generate`` call, its parameters and its result; the small
protocols through which a backend declares its identity (what the response cache keys on and the
manifest records) and a run's components report counters; and the per-call sampling seed.

Seeds: a run has one ``--seed``; each model call gets its own, :func:`call_seed` of the run seed,
the role, the task, the epoch, the turn and a salt (a provider's regeneration attempt). It is a
stable hash (SHA-256, not Python's salted ``hash``), so the same call gets the same seed in every
run and on every machine, while two epochs of one task, or two turns of one episode, never share
one: repeated sampling on seed-honouring backends (llama.cpp, vLLM, OpenAI-compatible servers)
draws anew each epoch instead of replaying epoch 0.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from mulligan.events import Message, ModelCallEvent, ModelRole
from mulligan.tasks.base import Task


class GenerateParams(BaseModel):
    """Sampling settings for one call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    stop: tuple[str, ...] = ()


class Completion(BaseModel):
    """What a model returned for one call."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    finish_reason: str = "stop"
    cost_usd: float = 0.0
    cached: bool = False
    seed: int | None = None
    """The sampling seed the call was made with, stamped by the wrapper that chose it (a role
    model); None when unknown."""

    def to_event(
        self,
        turn: int,
        role: ModelRole,
        temperature: float | None = None,
        seed: int | None = None,
        *,
        params: GenerateParams | None = None,
        context_messages: int | None = None,
    ) -> ModelCallEvent:
        """This completion as a transcript event of the given turn and model role; ``seed`` (the
        seed the call was made with) defaults to :attr:`seed`. ``params`` (the call's sampling
        parameters) records them all, its temperature and seed included; ``context_messages``
        is how many conversation messages a policy call received."""
        if params is not None:
            temperature, seed = params.temperature, params.seed
        return ModelCallEvent(
            turn=turn,
            role=role,
            model=self.model,
            output=self.text,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=self.latency_s,
            ttft_s=self.ttft_s,
            finish_reason=self.finish_reason,
            cost_usd=self.cost_usd,
            cached=self.cached,
            temperature=temperature,
            seed=self.seed if seed is None else seed,
            top_p=None if params is None else params.top_p,
            max_tokens=None if params is None else params.max_tokens,
            stop=None if params is None else params.stop,
            context_messages=context_messages,
        )


class CallContext(BaseModel):
    """Where a call happens. Real backends ignore it; scripted and replay backends need it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    task: Task
    turn: int = Field(ge=1)
    epoch: int = 0


class ModelError(Exception):
    """A model call failed. ``transient`` errors may be retried; others are final."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ContextWindowExceeded(ModelError):
    """The conversation no longer fits the model's context window."""


@runtime_checkable
class ReportsCounters(Protocol):
    """A component that counts what happened to it during a run (retries by cause, replica
    ejections, leak-guard interventions, replay hits...); the engine writes the counts into the
    run's manifest when the run ends."""

    def counters(self) -> dict[str, int]: ...


def counters_of(component: object, prefix: str = "") -> dict[str, int]:
    """``component.counters()`` with each name prefixed, or ``{}`` if it reports none (wrappers
    use it to pass on what the component they wrap counted)."""
    if not isinstance(component, ReportsCounters):
        return {}
    return {f"{prefix}{name}": value for name, value in component.counters().items()}


SEED_BITS = 31
"""Derived seeds lie in ``[0, 2**31)``: valid for every backend (llama.cpp takes a uint32 in
which ``0xFFFFFFFF`` means "random", vLLM and OpenAI an int)."""


def call_seed(
    run_seed: int, role: str, suite: str, task_id: str, epoch: int, turn: int, salt: int = 0
) -> int:
    """The sampling seed of one model call (see the module docstring): the first 31 bits of
    ``sha256("mulligan-seed/1:<run_seed>:<role>:<suite>:<task_id>:<epoch>:<turn>:<salt>")``.
    The ``/1`` versions the recipe: changing it changes every seed, so it is never changed
    silently."""
    text = f"mulligan-seed/1:{run_seed}:{role}:{suite}:{task_id}:{epoch}:{turn}:{salt}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - SEED_BITS)


@runtime_checkable
class DeclaresIdentity(Protocol):
    """A backend that says what answers its calls: the server(s) and the model they report, a
    weights file's checksum, a model name and revision. Two backends with equal identities (and
    equal names) must give the same answers to the same call; anything that could make them
    differ belongs in the identity. It must hold no secret (it is written to the manifest) and be
    JSON-serialisable. Resolved once per instance (it may ask a server or hash a file)."""

    async def resolve_identity(self) -> dict[str, Any]: ...


async def identity_of(model: object) -> dict[str, Any]:
    """``model.resolve_identity()``, or, for a backend that declares none, its class (so two
    different backends that happen to share a name never share cached answers)."""
    if isinstance(model, DeclaresIdentity):
        return await model.resolve_identity()
    kind = type(model)
    return {"backend": f"{kind.__module__}.{kind.__qualname__}"}


@runtime_checkable
class Model(Protocol):
    """An async chat model.

    ``cacheable`` says whether the response cache may sit in front of it: False for backends
    whose answers are already deterministic and free (scripted, replay), where a cache gains
    nothing. A cacheable backend should also implement :class:`DeclaresIdentity`: the cache keys
    on the identity, so it must change whenever the answers could.
    """

    name: str

    @property
    def cacheable(self) -> bool: ...

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion: ...

    async def aclose(self) -> None: ...
