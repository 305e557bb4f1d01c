"""The order episodes start in: all epochs of a task together, tasks sharing a prompt prefix
together, deterministic, lazy; and a run's results do not depend on it."""

from __future__ import annotations

from pathlib import Path

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.engine.schedule import count_done, episode_jobs, not_done, prefix_groups
from mulligan.events import Message, ModelCallEvent
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.store import RunStore
from mulligan.tasks import Task


def _task(task_id: str, suite: str, kind: str) -> Task:
    return Task(
        id=task_id,
        suite=suite,
        category="reasoning",
        prompt=f"What is 2 + {task_id}?",
        reference="4",
        checker="gsm8k",
        gold_solution="4",
        metadata={"mint_task_type": kind},
    )


TASKS = [
    _task("a1", "mint/gsm8k", "reasoning"),
    _task("b1", "mint/mbpp", "mbpp"),
    _task("a2", "mint/gsm8k", "reasoning"),
    _task("c1", "mint/math", "reasoning"),
    _task("b2", "mint/mbpp", "mbpp"),
]


def test_tasks_sharing_a_prefix_come_together_in_their_first_order() -> None:
    # gsm8k and math share MINT's reasoning example, mbpp has its own.
    ordered = [t.id for t in prefix_groups(TASKS)]
    assert ordered == ["a1", "a2", "c1", "b1", "b2"]


def test_all_epochs_of_a_task_come_in_a_row_and_the_order_is_the_same_every_time() -> None:
    jobs = episode_jobs(TASKS, epochs=3)
    first = [(t.id, e) for t, e in jobs()]
    assert first[:7] == [
        ("a1", 0),
        ("a1", 1),
        ("a1", 2),
        ("a2", 0),
        ("a2", 1),
        ("a2", 2),
        ("c1", 0),
    ]
    assert len(first) == 15 and len(set(first)) == 15
    assert [(t.id, e) for t, e in jobs()] == first  # each call starts over, the same
    done = {"mint/gsm8k/a2#1", "mint/math/c1#0"}
    assert count_done(jobs(), done) == 2
    left = [(t.id, e) for t, e in not_done(jobs(), done)]
    assert left == [j for j in first if j not in {("a2", 1), ("c1", 0)}]


class BySeed:
    """Right or wrong by the call's seed, so a seed that depended on the order (a counter, the
    worker that ran it) would change the stored results."""

    name = "test/by-seed"
    cacheable = False

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert params.seed is not None
        answer = "4" if params.seed % 3 == 0 else "5"
        return Completion(
            text=f"<solution> {answer} </solution>", model=self.name, seed=params.seed
        )

    async def aclose(self) -> None:
        return None


def _outcomes(out: Path) -> dict[str, tuple[object, ...]]:
    with RunStore.open_existing(out) as store:
        return {
            e.id: (
                e.status,
                e.success,
                e.turns_used,
                [ev.type for ev in e.events],
                [ev.seed for ev in e.events if isinstance(ev, ModelCallEvent)],
            )
            for e in store.episodes()
        }


async def test_the_order_changes_no_result(tmp_path: Path) -> None:
    """The same run with its tasks given in two orders stores the same episodes, with the same
    seeds (the policy's answers depend on them)."""
    tasks = [_task(str(n), f"suite{n % 3}", ("reasoning", "mbpp")[n % 2]) for n in range(12)]
    config = RunConfig(model="scripted/wrong", turns=2, proposals=2, epochs=2, concurrency=4)
    await execute_run(config.with_options(out=tmp_path / "a"), model=BySeed(), tasks=tasks)
    await execute_run(config.with_options(out=tmp_path / "b"), model=BySeed(), tasks=tasks[::-1])
    first = _outcomes(tmp_path / "a")
    assert first == _outcomes(tmp_path / "b")
    assert len(first) == 24
    assert 0 < sum(bool(o[1]) for o in first.values()) < 24  # the seeds decided some of them
