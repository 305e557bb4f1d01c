"""The store's episode writer: episodes that finish together share one commit, a future completes
only once its episode is committed, an error fails loudly instead of hanging, and a run killed
in the middle of a batch loses only that batch, which its resume runs again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.events import Episode, EpisodeKey, ModelCallEvent
from mulligan.store import RunStore, StoreError
from mulligan.store.writer import MAX_BATCH, EpisodeWriter
from mulligan.tasks import Task

SRC = Path(__file__).resolve().parents[1] / "src"


def _episode(task_id: str, run_id: str = "run-1") -> Episode:
    return Episode(
        key=EpisodeKey(suite="mbpp", task_id=task_id),
        run_id=run_id,
        config_hash="h",
        model="scripted/wrong",
        max_turns=1,
        max_proposals=1,
        events=[ModelCallEvent(turn=1, model="m", output=f"answer {task_id}")],
        status="finished",
    )


def _new_store(path: Path) -> None:
    with RunStore(path) as store:
        store.create_run("run-1", "h", {})


def test_episodes_queued_together_share_a_commit_and_each_future_means_committed(
    tmp_path: Path,
) -> None:
    _new_store(tmp_path)
    # A lingering writer takes what queues up in 10 s (or 64 episodes) as one batch.
    with EpisodeWriter(tmp_path, linger_s=10.0, max_batch=64) as writer:
        futures = [writer.submit(_episode(str(n))) for n in range(64)]
        futures[-1].result(timeout=60)
        assert all(f.done() and f.exception() is None for f in futures)
        # Committed: another connection sees them while the writer is still open.
        with RunStore.open_existing(tmp_path) as reader:
            assert reader.episode_count() == 64
        assert (writer.batches, writer.episodes) == (1, 64)
        # A lone episode waits for no company beyond the linger, and no longer at close.
        lone = writer.submit(_episode("lone"))
    assert lone.done() and lone.exception() is None
    assert (writer.batches, writer.episodes) == (2, 65)
    with RunStore.open_existing(tmp_path) as reader:
        lone_stored = reader.episode("mbpp/lone#0")
    assert lone_stored is not None
    assert [e.model_dump()["output"] for e in lone_stored.events] == ["answer lone"]


def test_a_failed_commit_fails_its_batch_and_every_later_call(tmp_path: Path) -> None:
    _new_store(tmp_path)
    writer = EpisodeWriter(tmp_path).start()
    # An episode of a run the store does not hold breaks a foreign key: the commit fails.
    bad = writer.submit(_episode("1", run_id="no-such-run"))
    with pytest.raises(StoreError, match=r"store writer failed.*FOREIGN KEY"):
        bad.result(timeout=60)
    with pytest.raises(StoreError, match="store writer failed"):
        writer.submit(_episode("2"))
    with pytest.raises(StoreError, match="store writer failed"):
        writer.close()
    with RunStore.open_existing(tmp_path) as reader:
        assert reader.episode_count() == 0


def test_a_writer_that_cannot_open_its_store_says_so_at_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="is a file"):
        EpisodeWriter(tmp_path / "file").start()


async def test_a_store_error_mid_run_fails_the_run_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: RunStore, episodes: list[Episode]) -> None:
        raise StoreError(f"{self.path}: cannot write the run database (database or disk is full)")

    monkeypatch.setattr(RunStore, "save_episodes", disk_full)
    config = RunConfig(model="scripted/reference", turns=1, concurrency=4, out=tmp_path / "r")
    with pytest.raises(StoreError, match="disk is full"):
        await asyncio.wait_for(execute_run(config, tasks=_tasks(20)), timeout=120)


async def test_an_error_of_the_progress_callback_fails_the_run(tmp_path: Path) -> None:
    def broken(episode: Episode) -> None:
        raise ValueError("the progress display broke")

    config = RunConfig(model="scripted/reference", turns=1, concurrency=4, out=tmp_path / "r")
    with pytest.raises(ValueError, match="display broke"):
        await asyncio.wait_for(execute_run(config, tasks=_tasks(20), on_episode=broken), 120)
    with RunStore.open_existing(tmp_path / "r") as store:  # what was committed stays
        assert 1 <= store.episode_count() <= 20


# ------------------------------------------------------------------------ killed mid-batch

# More than two full batches: however fast the episodes finish, a third batch always comes.
EPISODES = 2 * MAX_BATCH + 40

# The child: runs EPISODES scripted episodes, prints each episode the run reports as done, and
# stops for good inside the writer's third transaction (rows written, COMMIT not yet), after
# holding the second one open a moment so that many episodes queue up behind it.
CHILD = """
import asyncio, json, os, sys, threading, time
from pathlib import Path
from mulligan.store import sqlite
from mulligan.config import RunConfig
from mulligan.engine import execute_run
sys.path.insert(0, sys.argv[2])
from test_store_writer import _tasks

batches, current, said = [0], [], threading.Lock()

def say(line):  # whole lines: the loop's DONE and the writer's HELD must not interleave
    with said:
        os.write(1, (line + "\\n").encode())
save, finish = sqlite.RunStore.save_episodes, sqlite._Transaction.__exit__

def save_episodes(self, episodes):
    current[:] = [e.id for e in episodes]
    save(self, episodes)

def before_commit(self, *exc):
    if threading.current_thread().name == "mulligan-store-writer":
        batches[0] += 1
        if batches[0] == 2:
            time.sleep(0.5)
        if batches[0] == 3:
            say("HELD " + json.dumps(current))
            time.sleep(600)
    finish(self, *exc)

sqlite.RunStore.save_episodes = save_episodes
sqlite._Transaction.__exit__ = before_commit
config = RunConfig(model="scripted/reference", turns=1, concurrency=16, out=Path(sys.argv[1]))
done = lambda episode: say("DONE " + episode.id)
asyncio.run(execute_run(config, tasks=_tasks(int(sys.argv[3])), on_episode=done))
"""


def _tasks(count: int) -> list[Task]:
    return [
        Task(
            id=str(n),
            suite="synthetic",
            category="reasoning",
            prompt=f"What is 3 times {n}?",
            reference=str(n * 3),
            checker="gsm8k",
            gold_solution=str(n * 3),
        )
        for n in range(count)
    ]


def _kill_mid_batch(out: Path) -> tuple[list[str], list[str]]:
    """Run the child until it holds its third batch uncommitted, SIGKILL it; the episodes it
    reported as done, and those of the held batch."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(Path(__file__).parent), str(EPISODES)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # killed with its process group: its checker workers too
    )
    group = os.getpgid(child.pid)
    watchdog = threading.Timer(
        240, os.killpg, (group, signal.SIGKILL)
    )  # a child that never holds a batch fails the test
    watchdog.start()
    reported: list[str] = []
    held: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("DONE "):
                reported.append(line[5:].strip())
            elif line.startswith("HELD "):
                held = json.loads(line[5:])
                break
        # What the run reported before the kill is all that the parent may count on.
        reported_at_kill = list(reported)
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        child.wait(timeout=60)
    assert held, "the child ended before its third batch"
    print(f"killed holding a batch of {len(held)}, {len(reported)} reported before")
    return reported_at_kill, held


async def test_a_run_killed_mid_batch_loses_only_that_batch_and_resume_runs_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    reported, held = _kill_mid_batch(out)
    with RunStore.open_existing(out) as store:
        stored = {e.id for e in store.episodes()}
    assert set(reported) <= stored  # nothing reported as done was lost
    assert not stored & set(held)  # the batch being written when it died is not there
    assert 0 < len(stored) < EPISODES

    config = RunConfig(model="scripted/reference", turns=1, concurrency=16, out=out)
    again: list[str] = []
    outcome = await execute_run(
        config, resume=True, tasks=_tasks(EPISODES), on_episode=lambda e: again.append(e.id)
    )
    assert outcome.skipped == len(stored)  # the committed ones are not run again
    assert set(again) == {f"synthetic/{n}#0" for n in range(EPISODES)} - stored
    assert set(held) <= set(again) and len(again) == len(set(again))
    assert (outcome.finished, outcome.failed, outcome.solved) == (len(again), 0, len(again))
    with RunStore.open_existing(out) as store:
        episodes = list(store.episodes())
    assert len(episodes) == EPISODES and all(e.success for e in episodes)
