"""The model protocol: one async ``generate`` call, its parameters and its result; and the
small protocol through which a run's components (backends, feedback providers) report counters."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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

    def to_event(
        self, turn: int, role: ModelRole, temperature: float | None = None
    ) -> ModelCallEvent:
        """This completion as a transcript event of the given turn and model role."""
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


@runtime_checkable
class Model(Protocol):
    """An async chat model.

    ``cacheable`` says whether the response cache may sit in front of it: False for backends
    whose answers are already deterministic and free (scripted, replay), where a cache gains
    nothing.
    """

    name: str

    @property
    def cacheable(self) -> bool: ...

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion: ...

    async def aclose(self) -> None: ...
