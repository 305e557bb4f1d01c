"""The run engine: many episodes concurrently, each failure isolated, each result stored at once.

A fixed number of asyncio workers pull (task, epoch) pairs from a queue, so memory stays bounded
however many episodes a run has. Finished episodes are written to the store as they complete; a
resumed run skips them and retries failed ones. What the episodes share is built in
:mod:`mulligan.engine.components`; the run directory is checked and described in
:mod:`mulligan.engine.rundir`.

Before anything is written, each role's model server is asked once whether it answers
(:func:`~mulligan.models.preflight.check_endpoint`). During the run, the same error ending
:data:`STOP_AFTER_REPEATS` episodes in a row is a cause shared by all (a server gone, a key
revoked, a broken sandbox), not a task's: no new episode starts, those in flight finish and are
stored, and the outcome says why it stopped (:attr:`RunOutcome.stopped`). :meth:`RunOutcome.verdict`
turns the counts into an exit status: 2 when the run stopped, 1 when more episodes failed than
``--fail-on-error`` tolerates (none with ``--no-fail-on-error``), 0 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from mulligan.config import ConfigError, RunConfig
from mulligan.engine.components import RunComponents, build_components
from mulligan.engine.executors import EpisodeExecutor, make_executor
from mulligan.engine.fork import Branch, BranchDeps, ForkPlan
from mulligan.engine.rundir import RunDir, with_run_dir
from mulligan.episode import SandboxProvider, failed_episode
from mulligan.events import Episode, EpisodeKey
from mulligan.judge import LLMJudge
from mulligan.models import Model
from mulligan.tasks import Task
from mulligan.tasks.shard import Shard

STOP_AFTER_REPEATS = 3
"""Episodes in a row failing with the same error that stop a run."""


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
    stopped: str | None = None  # the error that stopped the run early, if one did
    stopped_after: int = 0  # how many episodes in a row it had ended then
    not_run: int = 0  # episodes left unstarted when it stopped
    _streak: tuple[str | None, int] = (None, 0)  # the last error and how often in a row

    def count(self, episode: Episode) -> None:
        """Add one stored episode."""
        if episode.status == "failed":
            self.failed += 1
            self.errors.append(f"{episode.id}: {episode.error}")
            last, times = self._streak
            self._streak = (episode.error, times + 1 if episode.error == last else 1)
        else:
            self.finished += 1
            self.solved += int(episode.success)
            self._streak = (None, 0)

    @property
    def repeats(self) -> int:
        """How many episodes in a row, the last stored included, failed with the same error."""
        return self._streak[1]

    def verdict(self, fail_on_error: bool | float) -> tuple[int, str]:
        """The exit status and the line that explains it (module docstring).

        ``fail_on_error``: failed episodes that fail the run, a count N >= 1 (failed >= N) or a
        fraction 0 < f < 1 of the run's episodes (failed >= f * total), as Inspect's
        ``--fail-on-error``; False: none do (``--no-fail-on-error``). A run that stopped early
        exits 2 either way: it did not run what it was asked to.
        """
        if self.stopped is not None:
            return 2, (
                f"stopped after {self.stopped_after} episodes in a row failed with the same "
                f"error, {self.not_run} not run: {self.stopped}"
            )
        counts = f"{self.failed} of {self.total} episodes failed"
        if fail_on_error is False:
            return 0, f"{counts} (--no-fail-on-error)" if self.failed else counts
        if 0 < fail_on_error < 1:
            rule = f"{100 * fail_on_error:g}% of the {self.total} episodes or more fail the run"
            failing = self.failed >= fail_on_error * self.total
        else:
            n = int(fail_on_error)
            rule = "any failed episode fails the run" if n == 1 else f"{n} or more fail the run"
            failing = self.failed >= n
        threshold = f"--fail-on-error {fail_on_error:g}: {rule}"
        if failing:
            return 1, f"{counts}; {threshold}"
        return 0, f"{counts}, tolerated ({threshold})" if self.failed else counts


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
    manifest. With ``config.fork.fork_from`` the episodes are branches of the source run's
    (:mod:`mulligan.engine.fork`).
    """
    started = time.perf_counter()
    config = with_run_dir(config, resume=resume)
    assert config.execution.out is not None
    # Models are resolved and their servers asked before the run directory is touched, so a
    # typo or a dead server leaves nothing behind; so is a fork's source read and checked.
    components = build_components(
        config, model=model, feedback_model=feedback_model, judge=judge, tasks=tasks
    )
    if config.fork.fork_from is not None and config.execution.executor != "local":
        raise ConfigError(
            "--fork-from runs with the local executor (each branch replays its parent from the "
            "source run's store on this machine); drop --executor ray"
        )
    plan = ForkPlan.load(config) if config.fork.fork_from is not None else None
    branches = plan.branches(components.tasks) if plan is not None else []
    async with components:
        await components.check_endpoints()
        if config.execution.shard is not None:  # this machine's part of the tasks
            components.tasks = Shard.parse(config.execution.shard).select(components.tasks)
        with RunDir.open(config, resume=resume) as rundir:
            executor = make_executor(config, components, sandboxes)
            components.close_executor(executor)
            await executor.start()
            isolation, weak = executor.isolation, executor.isolation_weak
            identities = await components.identities()
            fork = plan.manifest() if plan is not None else None
            run_id = rundir.start(
                components.tasks, isolation, identities, weak=weak, fork=fork
            ).run_id
            jobs = (
                [(b.task, b.epoch) for b in branches]
                if plan is not None
                else [(t, epoch) for epoch in range(config.epochs) for t in components.tasks]
            )
            done = rundir.store.finished_keys()
            todo = [
                (task, epoch)
                for task, epoch in jobs
                if EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch).id not in done
            ]
            outcome = RunOutcome(
                run_id,
                config.execution.out,
                len(jobs),
                skipped=len(jobs) - len(todo),
                isolation=isolation,
                isolation_weak=weak,
            )
            if on_start:
                on_start(outcome.total, outcome.skipped)
            run_one = _episode_runner(config, components, executor, run_id, plan, branches)
            await _drain(config, rundir, todo, outcome, on_episode, run_one)
            counters = {**components.counters(), **await executor.counters()}
            if plan is not None:
                counters["fork"] = plan.counters()
            rundir.record_counters(counters)
    outcome.wall_s = time.perf_counter() - started
    return outcome


RunOne = Callable[[Task, int], Awaitable[Episode]]
"""Runs the episode of one (task, epoch) job."""


def _episode_runner(
    config: RunConfig,
    components: RunComponents,
    executor: EpisodeExecutor,
    run_id: str,
    plan: ForkPlan | None,
    branches: list[Branch],
) -> RunOne:
    """How each job becomes an episode: the executor's episode loop, or a fork's branch of it
    (in this process: a branch replays its parent from the source run's store)."""
    if plan is None:

        async def episode(task: Task, epoch: int) -> Episode:
            return await executor.run(task, epoch, run_id)

        return episode
    sandboxes = components.sandboxes
    assert sandboxes is not None  # started before the queue is drained
    by_job = {(b.task.suite, b.task.id, b.epoch): b for b in branches}
    deps = BranchDeps(
        components.policy,
        components.checkers,
        sandboxes,
        components.feedback,
        components.judge,
        config.generate_params(),
        run_id,
        config.config_hash(),
        components.task_tools,
    )

    async def branch(task: Task, epoch: int) -> Episode:
        return await plan.run_branch(by_job[(task.suite, task.id, epoch)], deps)

    return branch


async def _drain(
    config: RunConfig,
    rundir: RunDir,
    todo: list[tuple[Task, int]],
    outcome: RunOutcome,
    on_episode: ProgressCallback | None,
    run_one: RunOne,
) -> None:
    """Run the ``todo`` episodes with ``config.execution.concurrency`` workers, storing each at once."""
    queue: asyncio.Queue[tuple[Task, int]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            task, epoch = queue.get_nowait()
            try:
                episode = await run_one(task, epoch)
            except Exception as exc:  # the executor could not run it: record it, go on
                episode = failed_episode(
                    task=task,
                    model=config.policy.model,
                    limits=config.episode,
                    run_id=outcome.run_id,
                    config_hash=config.config_hash(),
                    epoch=epoch,
                    error=exc,
                )
            episode.task_digest = task.digest()  # what a resume compares (task_digests.py)
            rundir.store.save_episode(episode)
            outcome.count(episode)
            if on_episode:
                on_episode(episode)
            if outcome.repeats >= STOP_AFTER_REPEATS and outcome.stopped is None:
                # One cause fails every episode: start no more (those in flight finish).
                outcome.stopped, outcome.stopped_after = episode.error, outcome.repeats
                while not queue.empty():
                    queue.get_nowait()
                    outcome.not_run += 1

    await asyncio.gather(*(worker() for _ in range(min(config.execution.concurrency, len(todo)))))
