"""A model in a role (policy, feedback, judge): the role's own sampling settings, seeds and
concurrency.

Feedback providers build their own ``GenerateParams`` (a seed per regeneration, a token budget
that suits their template); a ``RoleModel`` replaces the fields the user set for that role and
limits how many calls of the role are in flight, so a slow critic cannot starve the policy.
Given the run's seed, it also gives each call its own seed, derived from the run seed, the role,
the task, the epoch and the turn of the call's context (the provider's own seed becomes the
salt, so regenerations still differ): otherwise every epoch would ask the feedback model with
the same seed. The seed the call was made with is stamped on the completion, so the transcript
records it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mulligan.events import Message, ModelRole
from mulligan.models.base import (
    CallContext,
    Completion,
    GenerateParams,
    Model,
    call_seed,
    identity_of,
)

_OVERRIDABLE = ("temperature", "top_p", "max_tokens")


class RoleModel:
    """Wraps ``inner``; ``overrides`` may set temperature, top_p and max_tokens; ``run_seed``
    (the run's ``--seed``) turns on per-call seeds (None: the caller's seed is sent as is)."""

    def __init__(
        self,
        inner: Model,
        role: ModelRole,
        *,
        overrides: dict[str, Any] | None = None,
        max_concurrency: int | None = None,
        run_seed: int | None = None,
    ) -> None:
        unknown = set(overrides or {}) - set(_OVERRIDABLE)
        if unknown:
            raise ValueError(f"role settings {sorted(unknown)} are not {', '.join(_OVERRIDABLE)}")
        self.inner = inner
        self.role = role
        self.name = inner.name
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.run_seed = run_seed
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.calls = 0

    @property
    def cacheable(self) -> bool:
        return self.inner.cacheable

    async def resolve_identity(self) -> dict[str, Any]:
        """The inner model's identity (a role changes the parameters, not the model)."""
        return await identity_of(self.inner)

    def params_for(self, params: GenerateParams, context: CallContext | None) -> GenerateParams:
        """``params`` with the role's overrides and, given a run seed and a context, the call's
        own seed (the caller's seed salts it)."""
        update = dict(self.overrides)
        if self.run_seed is not None and context is not None:
            task = context.task
            update["seed"] = call_seed(
                self.run_seed,
                self.role,
                task.suite,
                task.id,
                context.epoch,
                context.turn,
                params.seed,
            )
        return params.model_copy(update=update) if update else params

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        params = self.params_for(params, context)
        self.calls += 1
        if self._slots is None:
            completion = await self.inner.generate(messages, params, context)
        else:
            async with self._slots:
                completion = await self.inner.generate(messages, params, context)
        return completion.model_copy(update={"seed": params.seed})

    async def aclose(self) -> None:
        await self.inner.aclose()
