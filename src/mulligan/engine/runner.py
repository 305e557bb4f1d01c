"""The run engine: many episodes concurrently, each failure isolated, each result stored at once.

A fixed number of asyncio workers take (task, epoch) jobs one at a time from a sequence made as
they go, in prefix-cache-friendly order (:mod:`mulligan.engine.schedule`), so memory stays
bounded however many episodes a run has. Each finished episode goes to the store's writer thread
(:mod:`mulligan.store.writer`), which commits the episodes that finish within
:data:`COMMIT_EVERY_S` of each other in one transaction, off the event loop; the worker goes on
at once. An episode counts (and ``on_episode`` hears of it) once it is committed, so what a kill
loses is exactly what was never reported: the episodes in flight and those finished in the last
moments whose batch was not committed (at most :data:`COMMIT_EVERY_S` of them, plus the batch
being written). A resumed run skips the committed ones and runs the rest, failed ones included. What the episodes share is built in
:mod:`mulligan.engine.components`; the run directory is checked and described in
:mod:`mulligan.engine.rundir`.

Before anything is written, each role's model server is asked once whether it answers
(:func:`~mulligan.models.preflight.check_endpoint`). During the run, the same error ending
as many episodes in a row as run at once (``--concurrency``, at least :data:`STOP_AFTER_REPEATS`)
is a cause shared by all (a server gone, a key revoked, a broken sandbox), not a task's: a shared
cause fails every episode in flight, while a few tasks' own failures, slow with retries, may end
one after another by chance. Then no new episode starts, those in flight finish and are
stored, and the outcome says why it stopped (:attr:`RunOutcome.stopped`). :meth:`RunOutcome.verdict`
turns the counts into an exit status: 2 when the run stopped, 1 when more episodes failed than
``--fail-on-error`` tolerates (none with ``--no-fail-on-error``), 0 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mulligan.config import ConfigError, RunConfig
from mulligan.engine.components import RunComponents, build_components
from mulligan.engine.executors import EpisodeExecutor, make_executor
from mulligan.engine.fork import Branch, BranchDeps, ForkPlan
from mulligan.engine.rundir import RunDir, with_run_dir
from mulligan.engine.schedule import Job, count_done, episode_jobs, not_done
from mulligan.episode import SandboxProvider, failed_episode
from mulligan.events import Episode
from mulligan.judge import LLMJudge
from mulligan.models import Model
from mulligan.store.writer import QUEUE_SIZE, EpisodeWriter
from mulligan.tasks import Task
from mulligan.tasks.shard import Shard

STOP_AFTER_REPEATS = 3
"""Episodes in a row failing with the same error that stop a run, at the least (module docstring:
at concurrency c, c of them)."""
COMMIT_EVERY_S = 0.05
"""How long the store's writer waits for more episodes to commit with one that finished: the
most a kill loses of finished episodes (with those it had not started to write)."""


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
        """Add one stored (committed) episode."""
        if episode.status == "failed":
            self.failed += 1
            self.errors.append(f"{episode.id}: {episode.error}")
        else:
            self.finished += 1
            self.solved += int(episode.success)

    def ended(self, episode: Episode) -> None:
        """Note how an episode ended, as it ends (before it is stored): the streak of the same
        error that stops a run (:attr:`repeats`) follows the order episodes end in."""
        if episode.status == "failed":
            last, times = self._streak
            self._streak = (episode.error, times + 1 if episode.error == last else 1)
        else:
            self._streak = (None, 0)

    @property
    def repeats(self) -> int:
        """How many episodes in a row, the last ended included, failed with the same error."""
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
            jobs: Callable[[], Iterator[Job]] = (
                (lambda: ((b.task, b.epoch) for b in branches))  # a fork's: parent by parent
                if plan is not None
                else episode_jobs(components.tasks, config.epochs)
            )
            total = len(branches) if plan is not None else len(components.tasks) * config.epochs
            done = rundir.store.finished_keys()
            outcome = RunOutcome(
                run_id,
                config.execution.out,
                total,
                skipped=count_done(jobs(), done),
                isolation=isolation,
                isolation_weak=weak,
            )
            if on_start:
                on_start(outcome.total, outcome.skipped)
            run_one = _episode_runner(config, components, executor, run_id, plan, branches)
            with EpisodeWriter(config.execution.out, linger_s=COMMIT_EVERY_S) as writer:
                await _drain(config, writer, not_done(jobs(), done), outcome, on_episode, run_one)
            counters = {**components.counters(), **await executor.counters()}
            counters["store:writer"] = {"episodes": writer.episodes, "batches": writer.batches}
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
    writer: EpisodeWriter,
    todo: Iterator[Job],
    outcome: RunOutcome,
    on_episode: ProgressCallback | None,
    run_one: RunOne,
) -> None:
    """Run the ``todo`` episodes with ``config.execution.concurrency`` workers, each taking the
    next job as it frees up (so no queue holds them all), and close ``writer`` at the end.

    A worker hands its episode to the writer and goes on; the episode counts, and is reported
    to ``on_episode``, once the writer has committed it (:class:`_Commits`). The stop after
    repeated failures follows the order episodes end in."""
    commits = _Commits(writer, outcome, on_episode)
    stop_after = max(STOP_AFTER_REPEATS, config.execution.concurrency)

    async def worker() -> None:
        for task, epoch in todo:  # one iterator shared by the workers: each job taken once
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
            await commits.submit(episode)
            outcome.ended(episode)
            if outcome.repeats >= stop_after and outcome.stopped is None:
                # One cause fails every episode: start no more (those in flight finish).
                outcome.stopped, outcome.stopped_after = episode.error, outcome.repeats
                outcome.not_run += sum(1 for _ in todo)

    # No more workers than episodes left (``--concurrency 10000`` on a 5-episode resume).
    count = min(config.execution.concurrency, outcome.total - outcome.skipped)
    workers = [asyncio.ensure_future(worker()) for _ in range(count)]
    commits.on_failure = lambda: [w.cancel() for w in workers]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for running in workers:
            running.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        commits.raise_failure()  # a store error is the cause, the cancellation its effect
        raise
    await commits.finish()


class _Commits:
    """The episodes handed to the writer and not yet committed: at most
    :data:`~mulligan.store.writer.QUEUE_SIZE` (a worker waits beyond), each counted and
    reported when its commit completes; a failed commit fails the run (``on_failure`` stops the
    workers, :meth:`raise_failure` raises the store's error)."""

    def __init__(
        self, writer: EpisodeWriter, outcome: RunOutcome, on_episode: ProgressCallback | None
    ) -> None:
        self.writer, self.outcome, self.on_episode = writer, outcome, on_episode
        self.room = asyncio.Semaphore(QUEUE_SIZE)
        self.pending: set[asyncio.Future[None]] = set()
        self.failure: BaseException | None = None
        self.on_failure: Callable[[], object] = lambda: None

    async def submit(self, episode: Episode) -> None:
        await self.room.acquire()
        committed = asyncio.wrap_future(self.writer.submit(episode))
        self.pending.add(committed)
        committed.add_done_callback(lambda done: self._committed(episode, done))

    def _committed(self, episode: Episode, done: asyncio.Future[None]) -> None:
        self.pending.discard(done)
        self.room.release()
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            self.outcome.count(episode)
            try:
                if self.on_episode:
                    self.on_episode(episode)
            except Exception as exc:  # the caller's progress failed: the run fails with it
                error = exc
        if error is not None and self.failure is None:
            self.failure = error
            self.on_failure()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def finish(self) -> None:
        """Write what is left (the writer's last batch), count it, raise a store error."""
        await asyncio.to_thread(self.writer.close)
        if self.pending:
            await asyncio.wait(self.pending)
        self.raise_failure()
