"""The Ray executor: the same episodes as the local executor, and a node lost mid-run costing
only its in-flight episodes (retried, each stored exactly once).

Ray starts in seconds, so each test starts it once, small (few CPUs, no dashboard, a small object
store). Skipped where ray is not installed (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.events import Episode
from mulligan.store import RunStore
from openai_server import OpenAIServer, Reply, Request

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _config(tmp_path: Path, mint_dir: Path, out: str, **kw: object) -> RunConfig:
    options: dict[str, object] = {
        "suite": "mint",
        "tasks": ("gsm8k", "mmlu"),
        "data_dir": mint_dir,
        "limit": 25,
        "model": "scripted/reference",
        "feedback": "binary",
        "turns": 2,
        "proposals": 2,
        "sandbox_pool": 0,  # these policies run no code: no sandbox need start
        "cache": "off",
        "concurrency": 8,
        "out": tmp_path / out,
        **kw,
    }
    return RunConfig.model_validate(options)


def _results(out: Path) -> dict[str, Any]:
    """Each episode's outcome and transcript, without run ids and timings."""
    with RunStore.open_existing(out) as store:
        return {
            e.id: (
                e.status,
                e.success,
                e.success_turn,
                e.turns_used,
                e.terminate_reason,
                [ev.model_dump(exclude={"at", "latency_s", "started_at"}) for ev in e.events],
            )
            for e in store.episodes()
        }


def _started(exc: Exception) -> None:
    """Ray's own startup limit (30 s for a node to register) can pass on an overloaded machine:
    that is the machine, not the executor, so say so and skip."""
    if "timed out during startup" in str(exc):
        pytest.skip(
            f"Ray could not start a node within its 30 s limit here (load {os.getloadavg()[0]:.0f})"
        )
    raise exc


async def test_ray_in_local_mode_gives_the_local_executors_results(
    tmp_path: Path, mint_dir: Path
) -> None:
    local = _config(tmp_path, mint_dir, "local")
    await execute_run(local)
    on_ray = _config(tmp_path, mint_dir, "ray", executor="ray")
    try:
        outcome = await execute_run(on_ray)
    except Exception as exc:
        _started(exc)
    assert not ray.is_initialized()  # the local instance it started is stopped again
    assert (outcome.total, outcome.finished, outcome.failed) == (50, 50, 0)
    expected = _results(tmp_path / "local")
    assert len(expected) == 50 and _results(tmp_path / "ray") == expected
    with RunStore.open_existing(tmp_path / "ray") as store:
        run = store.run()
    assert run is not None and run.manifest["counters"]["executor:ray"]["nodes"] == 1
    assert run.manifest["config"]["executor"] == "ray"


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux's /proc), children first."""
    children: list[int] = []
    for thread in Path(f"/proc/{pid}/task").glob("*"):  # a child belongs to the thread forking it
        with contextlib.suppress(OSError):
            children += [int(c) for c in (thread / "children").read_text().split()]
    return [d for child in children for d in (child, *_descendants(child))]


@pytest.fixture
def slow_server() -> Iterator[OpenAIServer]:
    """A model server taking 0.5 s per reply, so episodes are in flight when a node dies."""

    def answer(request: Request) -> Reply:
        return Reply("<thought> guess </thought>\n<solution> 7 </solution>", delay_s=0.5)

    with OpenAIServer(answer, model_ids=("m",)) as server:
        yield server


async def test_a_node_lost_mid_run_costs_only_its_in_flight_episodes(
    tmp_path: Path, mint_dir: Path, slow_server: OpenAIServer
) -> None:
    from ray.cluster_utils import Cluster

    small = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
    try:
        cluster = Cluster(
            initialize_head=True, head_node_args={**small, "include_dashboard": False}
        )
        worker = cluster.add_node(**small)
    except Exception as exc:
        _started(exc)
    delivered: Counter[str] = Counter()
    killer: list[asyncio.Task[None]] = []
    killed: list[int] = []  # the worker node's processes, its actor's among them
    killed_after: list[int] = []  # episodes stored when it died

    async def kill_the_worker_mid_run() -> None:
        # When most of the 8 episodes in flight wait on the server (the driver sends each to the
        # least busy node, so the worker holds some); whatever happens, it dies within 60 s.
        for _ in range(3000):
            if slow_server.in_flight >= 6:
                break
            await asyncio.sleep(0.02)
        # A node lost at once: its processes (the actor's among them) die first, then Ray's
        # own; removing the node alone leaves its workers a moment to finish what they hold.
        raylet = worker.all_processes["raylet"][0].process.pid
        killed.extend(_descendants(raylet))
        killed_after.append(sum(delivered.values()))
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        cluster.remove_node(worker, allow_graceful=False)

    def on_start(total: int, skipped: int) -> None:
        killer.append(asyncio.create_task(kill_the_worker_mid_run()))

    def on_episode(episode: Episode) -> None:
        delivered[episode.id] += 1

    cfg = _config(
        tmp_path,
        mint_dir,
        "ray",
        executor="ray",
        ray_address=cluster.address,
        limit=10,
        model=f"openai-compatible/m@{slow_server.base_url}",
    )
    try:
        outcome = await execute_run(cfg, on_start=on_start, on_episode=on_episode)
        await killer[0]
    finally:
        cluster.shutdown()
    assert (outcome.total, outcome.finished, outcome.failed) == (20, 20, 0)
    assert set(delivered.values()) == {1} and len(delivered) == 20  # each delivered once
    with RunStore.open_existing(tmp_path / "ray") as store:
        assert store.episode_count() == 20
        assert all(len(e.events) > 0 for e in store.episodes())
        run = store.run()
    assert run is not None and run.manifest["counters"]["executor:ray"]["nodes"] == 2
    # The node died mid-run with its processes, yet every episode finished exactly once; its
    # in-flight ones ran again (two calls per episode, 2 turns of wrong answers, so the server saw
    # 40 or more: how many more depends on where each was when it died).
    assert killed and killed_after[0] < 20
    assert len(slow_server.requests) >= 2 * 20


async def test_a_node_joining_mid_run_gets_an_actor_and_episodes(
    tmp_path: Path, mint_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.cluster_utils import Cluster

    from mulligan.engine.executors import ray as ray_executor

    monkeypatch.setattr(ray_executor, "NODE_CHECK_S", 0.5)
    joined = threading.Event()
    join = ray_executor.RayExecutor._join

    async def noted_join(self: ray_executor.RayExecutor, node: str) -> None:
        await join(self, node)
        joined.set()

    monkeypatch.setattr(ray_executor.RayExecutor, "_join", noted_join)

    give_up = time.monotonic() + 90

    def answer(request: Request) -> Reply:
        # The head's episodes wait (90 s from the start at most) until the new node has been
        # taken in, so the run is still going when it can take episodes, whatever the load.
        joined.wait(max(0.0, give_up - time.monotonic()))
        return Reply("<thought> guess </thought>\n<solution> 7 </solution>", delay_s=0.2)

    small = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
    try:
        cluster = Cluster(
            initialize_head=True, head_node_args={**small, "include_dashboard": False}
        )
    except Exception as exc:
        _started(exc)

    def on_start(total: int, skipped: int) -> None:  # the run has placed its actors by now
        cluster.add_node(**small)  # in the main thread, as Ray wants (a few seconds)

    with OpenAIServer(answer, model_ids=("m",)) as server:
        cfg = _config(
            tmp_path,
            mint_dir,
            "ray",
            executor="ray",
            ray_address=cluster.address,
            limit=10,
            model=f"openai-compatible/m@{server.base_url}",
        )
        try:
            outcome = await execute_run(cfg, on_start=on_start)
        finally:
            cluster.shutdown()
    assert (outcome.total, outcome.finished, outcome.failed) == (20, 20, 0)
    with RunStore.open_existing(tmp_path / "ray") as store:
        assert store.episode_count() == 20
        run = store.run()
    assert run is not None
    counts = run.manifest["counters"]["executor:ray"]
    assert joined.is_set() and counts["nodes"] == 2 and counts["nodes_joined"] == 1
    assert counts["nodes_left_out"] == 0 and counts["episodes_on_joined_nodes"] >= 1
