"""A model in a role (policy, feedback, judge): the role's own sampling settings and concurrency.

Feedback providers build their own ``GenerateParams`` (a seed per regeneration, a token budget
that suits their template); a ``RoleModel`` replaces the fields the user set for that role and
limits how many calls of the role are in flight, so a slow critic cannot starve the policy.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mulligan.events import Message, ModelRole
from mulligan.models.base import CallContext, Completion, GenerateParams, Model

_OVERRIDABLE = ("temperature", "top_p", "max_tokens")


class RoleModel:
    """Wraps ``inner``; ``overrides`` may set temperature, top_p and max_tokens."""

    def __init__(
        self,
        inner: Model,
        role: ModelRole,
        *,
        overrides: dict[str, Any] | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        unknown = set(overrides or {}) - set(_OVERRIDABLE)
        if unknown:
            raise ValueError(f"role settings {sorted(unknown)} are not {', '.join(_OVERRIDABLE)}")
        self.inner = inner
        self.role = role
        self.name = inner.name
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.calls = 0

    @property
    def cacheable(self) -> bool:
        return self.inner.cacheable

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        if self.overrides:
            params = params.model_copy(update=self.overrides)
        self.calls += 1
        if self._slots is None:
            return await self.inner.generate(messages, params, context)
        async with self._slots:
            return await self.inner.generate(messages, params, context)

    async def aclose(self) -> None:
        await self.inner.aclose()
