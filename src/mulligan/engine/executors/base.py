"""The executor protocol, and the choice of executor a run's config makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mulligan.config import ConfigError, RunConfig
from mulligan.episode import SandboxProvider, failed_episode, run_episode
from mulligan.events import Episode
from mulligan.models.base import GenerateParams
from mulligan.tasks import Task

if TYPE_CHECKING:
    from mulligan.engine.components import RunComponents


class EpisodeExecutor(Protocol):
    """Runs episodes somewhere. :meth:`start` before the first :meth:`run` (after the run
    directory has been checked), :meth:`aclose` once at the end.

    Attributes:
        isolation / isolation_weak: the sandbox isolation mode the episodes' code runs under.
    """

    isolation: str
    isolation_weak: bool

    async def start(self) -> None: ...

    async def run(self, task: Task, epoch: int, run_id: str) -> Episode:
        """The finished episode (a failed one when the episode itself failed); raises only
        when the executor could not run it at all (the runner stores that as failed)."""
        ...

    async def counters(self) -> dict[str, dict[str, int]]:
        """What happened to the executor (nodes lost, resubmissions), for the manifest."""
        ...

    async def aclose(self) -> None: ...


async def episode_with(
    config: RunConfig, components: RunComponents, task: Task, epoch: int, run_id: str
) -> Episode:
    """Run one episode with ``components`` (started), in this process; an exception of the
    episode becomes a failed episode, so one task's failure never fails another's."""
    sandboxes = components.sandboxes
    assert sandboxes is not None  # started before the first episode
    config_hash, params = _per_run(config)
    try:
        return await run_episode(
            task=task,
            policy=components.policy,
            params=params,
            checker=components.checker(task.checker),
            sandboxes=sandboxes,
            feedback=components.feedback,
            limits=config.episode,
            run_id=run_id,
            config_hash=config_hash,
            epoch=epoch,
            judge=components.judge,
            task_tools=components.task_tools,
        )
    except Exception as exc:  # isolation: record it, go on with the next
        return failed_episode(
            task=task,
            model=components.policy.name,
            limits=config.episode,
            run_id=run_id,
            config_hash=config_hash,
            epoch=epoch,
            error=exc,
        )


_PER_RUN: list[tuple[RunConfig, str, GenerateParams]] = []


def _per_run(config: RunConfig) -> tuple[str, GenerateParams]:
    """``config``'s hash and generation parameters, computed once per run rather than once per
    episode (the hash dumps and sorts every option: about 1 ms). ``RunConfig`` is frozen, so
    the same object always has the same values."""
    if not _PER_RUN or _PER_RUN[0][0] is not config:
        _PER_RUN[:] = [(config, config.config_hash(), config.generate_params())]
    _, config_hash, params = _PER_RUN[0]
    return config_hash, params


def make_executor(
    config: RunConfig, components: RunComponents, sandboxes: SandboxProvider | None
) -> EpisodeExecutor:
    """The executor ``config.execution.executor`` names (``sandboxes``: a pool passed in by a
    caller, for the local executor)."""
    from mulligan.engine.executors.local import LocalExecutor

    if config.execution.executor == "local":
        return LocalExecutor(config, components, sandboxes)
    if sandboxes is not None:
        raise ConfigError("--executor ray builds a sandbox pool per node; pass no sandboxes")
    from mulligan.engine.executors.ray import RayExecutor

    return RayExecutor(config, components)
