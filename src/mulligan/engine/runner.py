"""The run engine: many episodes concurrently, each failure isolated, each result stored at once.

A fixed number of asyncio workers pull (task, epoch) pairs from a queue, so memory stays bounded
however many episodes a run has. Finished episodes are written to the store as they complete; a
resumed run skips them and retries failed ones. What the episodes share is built in
:mod:`mulligan.engine.components`; the run directory is checked and described in
:mod:`mulligan.engine.rundir`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mulligan.config import RunConfig
from mulligan.engine.components import RunComponents, build_components
from mulligan.engine.rundir import RunDir
from mulligan.episode import SandboxProvider, failed_episode, run_episode
from mulligan.events import Episode, EpisodeKey
from mulligan.judge import LLMJudge
from mulligan.models import Model
from mulligan.tasks import Task


@dataclass
class RunOutcome:
    """Counts for one invocation of a run (resumed episodes are 'skipped')."""

    run_id: str
    out: Path
    total: int
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    solved: int = 0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    isolation: str = ""  # the sandbox isolation mode in effect
    isolation_weak: bool = False

    def count(self, episode: Episode) -> None:
        """Add one stored episode."""
        if episode.status == "failed":
            self.failed += 1
            self.errors.append(f"{episode.id}: {episode.error}")
        else:
            self.finished += 1
            self.solved += int(episode.success)


ProgressCallback = Callable[[Episode], None]


async def execute_run(
    config: RunConfig,
    *,
    resume: bool = False,
    model: Model | None = None,
    feedback_model: Model | None = None,
    judge: LLMJudge | None = None,
    sandboxes: SandboxProvider | None = None,
    tasks: list[Task] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_episode: ProgressCallback | None = None,
) -> RunOutcome:
    """Run (or resume) the configured run into ``config.execution.out``.

    ``model``, ``feedback_model``, ``judge``, ``sandboxes`` and ``tasks`` may be passed in
    (tests, embedding); by default they come from the config. ``on_start(total, skipped)`` and
    ``on_episode(episode)`` report progress. At the end the components' counters go into the
    manifest.
    """
    started = time.perf_counter()
    # Models are resolved before the run directory is touched, so a typo leaves nothing behind.
    components = build_components(
        config, model=model, feedback_model=feedback_model, judge=judge, tasks=tasks
    )
    async with components:
        with RunDir.open(config, resume=resume) as rundir:
            await components.start_sandboxes(config, sandboxes)
            isolation = str(getattr(components.sandboxes, "isolation", "custom"))
            weak = bool(getattr(components.sandboxes, "isolation_weak", False))
            identities = await components.identities()
            run_id = rundir.start(components.tasks, isolation, identities, weak=weak).run_id
            done = rundir.store.finished_keys()
            todo = [
                (task, epoch)
                for epoch in range(config.epochs)
                for task in components.tasks
                if EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch).id not in done
            ]
            total = len(components.tasks) * config.epochs
            outcome = RunOutcome(
                run_id,
                config.execution.out,
                total,
                skipped=total - len(todo),
                isolation=isolation,
                isolation_weak=weak,
            )
            if on_start:
                on_start(outcome.total, outcome.skipped)
            await _drain(config, components, rundir, todo, outcome, on_episode)
            rundir.record_counters(components.counters())
    outcome.wall_s = time.perf_counter() - started
    return outcome


async def _drain(
    config: RunConfig,
    components: RunComponents,
    rundir: RunDir,
    todo: list[tuple[Task, int]],
    outcome: RunOutcome,
    on_episode: ProgressCallback | None,
) -> None:
    """Run the ``todo`` episodes with ``config.execution.concurrency`` workers, storing each at once."""
    params = config.generate_params()
    limits = config.episode
    config_hash = config.config_hash()
    sandboxes = components.sandboxes
    assert sandboxes is not None  # started before the queue is drained
    queue: asyncio.Queue[tuple[Task, int]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            task, epoch = queue.get_nowait()
            try:
                episode = await run_episode(
                    task=task,
                    policy=components.policy,
                    params=params,
                    checker=components.checkers[task.checker],
                    sandboxes=sandboxes,
                    feedback=components.feedback,
                    limits=limits,
                    run_id=outcome.run_id,
                    config_hash=config_hash,
                    epoch=epoch,
                    judge=components.judge,
                )
            except Exception as exc:  # isolation: record it, go on with the next
                episode = failed_episode(
                    task=task,
                    model=components.policy.name,
                    limits=limits,
                    run_id=outcome.run_id,
                    config_hash=config_hash,
                    epoch=epoch,
                    error=exc,
                )
            rundir.store.save_episode(episode)
            outcome.count(episode)
            if on_episode:
                on_episode(episode)

    await asyncio.gather(*(worker() for _ in range(min(config.execution.concurrency, len(todo)))))
