"""The Ray executor: a run's episodes on a Ray cluster (``--executor ray [--ray-address ADDR]``).

One actor per node holds the run's components, built once on that node from the run's config:
the models (a local model is loaded once per node), the feedback chain, the judge and the
node's own sandbox pool. An actor rather than a task per episode because those components are
costly to build and bound to one event loop: an async actor keeps them warm and runs up to
``--concurrency`` episodes at once on its loop, which is what a harness waiting on a model server
needs (a task per episode would hold one CPU slot and one process per episode in flight).

The driver keeps the run: its queue (:mod:`mulligan.engine.runner`) sends each (task, epoch) to
the actor with the fewest episodes in flight and stores each episode as it comes back, so the
driver stays the one SQLite writer and ``--resume`` works as for a local run. An episode's own
failure comes back as a failed episode; a lost node costs only its in-flight episodes: Ray
restarts its actor elsewhere (soft node affinity) and retries the calls it had
(``max_restarts``, ``max_task_retries``); past those, the driver resubmits the episode to
another node's actor (:data:`ATTEMPTS` in all), and only then stores it as failed. Nodes that join
the cluster after the start get an actor too: every :data:`NODE_CHECK_S` the driver looks for
alive nodes it has not placed one on, places one, and sends it episodes once it is ready (a
node whose sandbox isolation is not among those the run's manifest names, or weaker, is left
out with a warning: the manifest must stay true of every episode). Every node needs mulligan
(same version) installed, as the driver's Python environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import (
    ActorUnavailableError,
    NodeDiedError,
    ObjectLostError,
    RayActorError,
    WorkerCrashedError,
)
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from mulligan.config import RunConfig
from mulligan.engine.executors.base import episode_with
from mulligan.errors import MulliganError
from mulligan.events import Episode
from mulligan.tasks import Task

if TYPE_CHECKING:
    from mulligan.engine.components import RunComponents

log = logging.getLogger(__name__)

RESTARTS = 2
"""Ray's own restarts of a node's actor, and retries of each call it had in flight."""
ATTEMPTS = 4
"""Actors the driver tries an episode on before it stores it as failed."""
NODE_CHECK_S = 10.0
"""How often the driver looks for nodes that joined the cluster during the run."""
LOCAL_OBJECT_STORE = 100 * 1024**2
"""Object store of a local Ray instance: episodes are small, and the machine is shared."""
_LOST = (RayActorError, ActorUnavailableError, NodeDiedError, WorkerCrashedError, ObjectLostError)


class RayExecutorError(MulliganError):
    """Ray could not be started or joined, or no node could build the run's components."""


class NodeRunner:
    """One node's share of the run (the actor's class; see the module docstring)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.components: RunComponents | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> RunComponents:
        # Built on first use, so a restarted actor (its node lost) builds them again by itself.
        async with self._lock:
            if self.components is None:
                from mulligan.engine.components import build_components

                components = build_components(self.config, tasks=[])
                await components.start_sandboxes(self.config, None)
                self.components = components
        return self.components

    async def ready(self) -> tuple[str, bool, str]:
        """Build the components; the sandbox isolation in effect on this node, and the node."""
        pool = (await self._started()).sandboxes
        node = ray.get_runtime_context().get_node_id()
        return (
            str(getattr(pool, "isolation", "custom")),
            bool(getattr(pool, "isolation_weak", 0)),
            node,
        )

    async def run(self, task: Task, epoch: int, run_id: str) -> Episode:
        return await episode_with(self.config, await self._started(), task, epoch, run_id)

    async def counters(self) -> dict[str, dict[str, int]]:
        """This node's components' counters (retries, cache hits...)."""
        return {} if self.components is None else self.components.counters()

    async def close(self) -> None:
        if self.components is not None:
            await self.components.aclose()
            self.components = None


@dataclass
class _Slot:
    actor: Any  # a Ray ActorHandle of NodeRunner
    node: str
    in_flight: int = 0
    alive: bool = True
    joined: bool = False  # placed on a node that joined during the run
    episodes: int = 0  # episodes it returned


def init_args(address: str | None) -> dict[str, Any]:
    """``ray.init`` arguments: join ``address``, or start a small local instance."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is not None:
        return {"address": address, **quiet}
    return {
        "num_cpus": min(2, os.cpu_count() or 1),
        "object_store_memory": LOCAL_OBJECT_STORE,
        **quiet,
    }


class RayExecutor:
    """Episodes on a Ray cluster (see the module docstring)."""

    def __init__(self, config: RunConfig, components: RunComponents) -> None:
        self.config = config
        self.isolation = ""
        self.isolation_weak = False
        self._slots: list[_Slot] = []
        self._owns_ray = False
        self._resubmitted = 0
        self._placed: set[str] = set()  # nodes the driver placed an actor on (or tried to)
        self._left_out = 0  # nodes that joined but could not take episodes
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Join (or start) Ray, put an actor on every alive node, wait until each is ready."""
        if not ray.is_initialized():
            address = self.config.execution.ray_address
            try:
                ray.init(**init_args(address))
            except Exception as exc:  # Ray raises plain Exception, e.g. on a startup timeout
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise RayExecutorError(
                    f"cannot start or join {where} ({exc}); check --ray-address (ray status "
                    "on the head node prints it)"
                ) from exc
            self._owns_ray = True
        for node in self._new_nodes():
            self._slots.append(_Slot(self._place(node), node))
        await self._await_ready()
        self._watcher = asyncio.create_task(self._watch_nodes())

    def _new_nodes(self) -> list[str]:
        """Alive nodes without an actor of this run, marked as placed."""
        found = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        new = [node for node in found if node not in self._placed]
        self._placed.update(new)
        return new

    def _place(self, node: str) -> Any:
        """A NodeRunner actor on ``node`` (soft affinity: restarted elsewhere if it is lost)."""
        return (
            ray.remote(NodeRunner)
            .options(
                num_cpus=0,  # it mostly waits on the model server; the work is its sandboxes
                max_concurrency=self.config.execution.concurrency,
                max_restarts=RESTARTS,
                max_task_retries=RESTARTS,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True),
            )
            .remote(self.config)
        )

    async def _watch_nodes(self) -> None:
        """Every :data:`NODE_CHECK_S`, an actor for each node that joined (module docstring)."""
        while True:
            await asyncio.sleep(NODE_CHECK_S)
            try:
                for node in await asyncio.to_thread(self._new_nodes):
                    await self._join(node)
            except Exception as exc:  # the cluster's state could not be read: try again later
                log.warning("could not look for Ray nodes that joined: %s", exc)

    async def _join(self, node: str) -> None:
        slot = _Slot(self._place(node), node, joined=True)
        try:
            mode, weak, where = await slot.actor.ready.remote()
        except Exception as exc:  # its components could not be built there: not used
            log.warning("Ray node %s joined but cannot run episodes: %s", node, exc)
            mode, weak, where = "", True, node
        if mode not in self.isolation.split("+") or (weak and not self.isolation_weak):
            if mode:
                log.warning(
                    "Ray node %s joined with sandbox isolation %s%s, not the run's %s; not used",
                    node,
                    mode,
                    " (weak)" if weak else "",
                    self.isolation,
                )
            self._left_out += 1
            ray.kill(slot.actor, no_restart=True)
            return
        slot.node = where
        self._slots.append(slot)
        log.info("Ray node %s joined the run", node)

    async def _await_ready(self) -> None:
        answers = await asyncio.gather(
            *(slot.actor.ready.remote() for slot in self._slots), return_exceptions=True
        )
        modes: set[str] = set()
        for slot, answer in zip(self._slots, answers, strict=True):
            if isinstance(answer, BaseException):
                log.warning("Ray node %s cannot run episodes: %s", slot.node, answer)
                slot.alive = False
                continue
            modes.add(answer[0])
            self.isolation_weak |= answer[1]
            if answer[2] != slot.node:
                log.warning("Ray placed node %s's actor on node %s", slot.node, answer[2])
            slot.node = answer[2]
        if not modes:
            raise RayExecutorError(
                f"no Ray node could build the run's components: {answers[0] if answers else 'no node alive'}"
            )
        self.isolation = "+".join(sorted(modes))

    def _pick(self) -> _Slot | None:
        alive = [s for s in self._slots if s.alive]
        return min(alive, key=lambda s: s.in_flight) if alive else None

    async def run(self, task: Task, epoch: int, run_id: str) -> Episode:
        """Run one episode on the least busy node; resubmitted when its node is lost."""
        lost: BaseException | None = None
        for attempt in range(ATTEMPTS):
            slot = self._pick()
            if slot is None:
                break
            slot.in_flight += 1
            try:
                episode: Episode = await slot.actor.run.remote(task, epoch, run_id)
                slot.episodes += 1
                return episode
            except ActorUnavailableError as exc:  # restarting (its node lost): try again soon
                lost = exc
                self._resubmitted += 1
                await asyncio.sleep(0.5 + attempt)
            except _LOST as exc:  # past Ray's own restarts: that node's actor is gone
                log.warning("Ray node %s lost (%s); resubmitting %s", slot.node, exc, task.id)
                slot.alive, lost = False, exc
                self._resubmitted += 1
            finally:
                slot.in_flight -= 1
        raise RayExecutorError(f"no Ray node could run {task.suite}/{task.id}: {lost}")

    async def counters(self) -> dict[str, dict[str, int]]:
        """The nodes' components' counters summed (nodes lost take theirs with them), and the
        executor's own: nodes, nodes lost, episodes resubmitted by the driver."""
        alive = [s for s in self._slots if s.alive]
        found = await asyncio.gather(
            *(s.actor.counters.remote() for s in alive), return_exceptions=True
        )
        total: dict[str, Counter[str]] = {}
        for counters in found:
            for name, counts in counters.items() if isinstance(counters, dict) else ():
                total.setdefault(name, Counter()).update(counts)
        own = {
            "nodes": len(self._slots),
            "nodes_lost": len(self._slots) - len(alive),
            "nodes_joined": sum(s.joined for s in self._slots),
            "nodes_left_out": self._left_out,
            "episodes_on_joined_nodes": sum(s.episodes for s in self._slots if s.joined),
            "resubmitted": self._resubmitted,
        }
        return {**{name: dict(c) for name, c in total.items()}, "executor:ray": own}

    async def aclose(self) -> None:
        """Close every node's components, end the actors, and stop Ray if this run started it."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        alive = [s for s in self._slots if s.alive]
        await asyncio.gather(*(s.actor.close.remote() for s in alive), return_exceptions=True)
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []
        if self._owns_ray:
            ray.shutdown()
