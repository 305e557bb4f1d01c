"""The local executor: episodes run in this process, on the run's own components and sandbox
pool (the runner's queue decides how many at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mulligan.config import RunConfig
from mulligan.engine.executors.base import episode_with
from mulligan.episode import SandboxProvider
from mulligan.events import Episode
from mulligan.tasks import Task

if TYPE_CHECKING:
    from mulligan.engine.components import RunComponents


class LocalExecutor:
    """Episodes in this process (see the module docstring)."""

    def __init__(
        self, config: RunConfig, components: RunComponents, sandboxes: SandboxProvider | None
    ) -> None:
        self.config = config
        self.components = components
        self._given = sandboxes
        self.isolation = ""
        self.isolation_weak = False

    async def start(self) -> None:
        """Start the sandbox pool (or take the one given); the components close it."""
        await self.components.start_sandboxes(self.config, self._given)
        pool = self.components.sandboxes
        self.isolation = str(getattr(pool, "isolation", "custom"))
        self.isolation_weak = bool(getattr(pool, "isolation_weak", False))

    async def run(self, task: Task, epoch: int, run_id: str) -> Episode:
        return await episode_with(self.config, self.components, task, epoch, run_id)

    async def counters(self) -> dict[str, dict[str, int]]:
        return {}

    async def aclose(self) -> None:
        return None  # what it used belongs to the components
