"""What the resume check on tasks costs (``engine/task_digests.py``): digesting a selection of N
tasks (every resume), and the per-episode scan of a store of M finished episodes (only when the
selection changed: a raised ``--limit``, an edited task file).

    .venv/bin/python benchmarks/task_digests.py [--tasks 100000] [--episodes 20000]

Prints one line per figure. The tasks are HumanEval-sized (a prompt of ~450 characters, tests of
~600); the episodes are stored as the runner stores them, each with its task's digest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mulligan.engine.task_digests import changed_tasks
from mulligan.events import Episode, EpisodeKey
from mulligan.store import RunStore
from mulligan.tasks import Task
from mulligan.tasks.base import selection_digest, task_digests


def _tasks(n: int) -> list[Task]:
    return [
        Task(
            id=f"t/{i}",
            suite="bench",
            category="code_generation",
            prompt="x" * 450 + str(i),
            reference="assert f(1) == 1\n" * 35,
            checker="python_tests",
            gold_solution="def f(x): return x",
            metadata={"entry_point": "f", "test_list": ["assert f(1) == 1"]},
        )
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=20_000)
    args = parser.parse_args()
    tasks = _tasks(args.tasks)
    started = time.perf_counter()
    current = task_digests(tasks)
    digest = selection_digest(current)
    seconds = time.perf_counter() - started
    print(
        f"digests of {args.tasks:,} tasks and of the selection (every resume): {seconds:.2f} s "
        f"(in the manifest: {len(digest)} characters)"
    )
    with tempfile.TemporaryDirectory() as directory, RunStore(Path(directory)) as store:
        store.create_run("r", "h", {})
        for task in tasks[: args.episodes]:
            key = EpisodeKey(suite=task.suite, task_id=task.id)
            store.save_episode(
                Episode(key=key, run_id="r", config_hash="h", model="m", max_turns=5,
                        max_proposals=5, task_digest=task.digest())
            )  # fmt: skip
        started = time.perf_counter()
        changed, gone = changed_tasks(store, current)
        seconds = time.perf_counter() - started
    assert not changed and not gone
    print(
        f"per-episode check of {args.episodes:,} finished episodes (only when the selection "
        f"changed): {seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
