"""The order a run's episodes start in, produced lazily.

**Prefix-cache-friendly order.** A model server with prefix caching (vLLM, SGLang, llama.cpp's
slots) computes a prompt's shared beginning once while it stays in its cache. A run's prompts
share two kinds of prefix: every epoch of a task sends the same first message (the whole
prompt, system and task alike), and the tasks of one suite and in-context example share the
long template before the task's own text (:func:`~mulligan.prompts.policy.example_name`). So
the jobs come group by group (tasks grouped by example, then suite; groups and tasks within a
group in the order they were loaded), and within a task all its epochs in a row: epochs of a
task are in flight together and hit the cache, and so do a group's tasks. The old order (epoch
by epoch over all tasks) sent the same prompt again only after every other task had gone by,
long evicted on a large run. The order is deterministic and changes no result: an episode's
sampling seed comes from its task and epoch, never from when it ran, and each episode is stored
under its key. One trade-off: a run stopped early has all the epochs of its first tasks rather
than the first epoch of every task.

A fork run's jobs are its branches, already parent by parent (siblings share the whole
parent transcript up to the branch turn), and keep that order.

**Lazily.** Jobs are produced as the workers take them, never held as a list: a resumed
100,000-episode run keeps the set of finished keys, not a list of what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from mulligan.events import EpisodeKey
from mulligan.prompts import example_name
from mulligan.tasks import Task

Job = tuple[Task, int]
"""One episode to run: a task and its epoch."""


def prefix_groups(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with those sharing a prompt prefix next to each other: by in-context example
    (the longest shared part), within it by suite; examples, suites and tasks each in the order
    they first came."""
    groups: dict[str, dict[str, list[Task]]] = {}
    for task in tasks:
        groups.setdefault(example_name(task), {}).setdefault(task.suite, []).append(task)
    return [task for suites in groups.values() for group in suites.values() for task in group]


def episode_jobs(tasks: Sequence[Task], epochs: int) -> Callable[[], Iterator[Job]]:
    """The run's jobs in prefix-cache-friendly order (module docstring), as a function that
    starts them over each time it is called (counting what is done takes one pass, running
    what is left another)."""
    ordered = prefix_groups(tasks)

    def jobs() -> Iterator[Job]:
        for task in ordered:
            for epoch in range(epochs):
                yield task, epoch

    return jobs


def job_id(job: Job) -> str:
    """The id of the episode a job makes (:attr:`mulligan.events.EpisodeKey.id`)."""
    task, epoch = job
    return EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch).id


def not_done(jobs: Iterable[Job], done: set[str]) -> Iterator[Job]:
    """The jobs whose episodes are not among ``done`` (finished episodes' ids)."""
    if not done:  # a new run: no key to compute
        return iter(jobs)
    return (job for job in jobs if job_id(job) not in done)


def count_done(jobs: Iterable[Job], done: set[str]) -> int:
    """How many of ``jobs`` have their episode among ``done``."""
    return sum(1 for job in jobs if job_id(job) in done) if done else 0
