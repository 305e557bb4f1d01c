"""Branching rollouts: every branch's context at its branch turn is its parent's, byte for byte;
prefix cells are re-run and checked; siblings sample with distinct seeds; frozen history; the
CLI takes the source run's options; bad forks are one clear error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig, build_config
from mulligan.engine import execute_run
from mulligan.engine.fork import fork_base_options
from mulligan.events import (
    Episode,
    EpisodeKey,
    ErrorEvent,
    Message,
    ModelCallEvent,
    ObservationEvent,
)
from mulligan.judge import LLMJudge
from mulligan.metrics import branch_summary, cost_per_solved
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.store import RunStore
from mulligan.tasks import Task, load_tasks

Reply = Callable[[CallContext, GenerateParams], str]


class Recorder:
    """A scripted policy that keeps, per (task, epoch, turn), the exact message list it saw."""

    cacheable = False

    def __init__(self, name: str, reply: Reply) -> None:
        self.name, self.reply = name, reply
        self.seen: dict[tuple[str, int, int], str] = {}
        self.seeds: dict[tuple[str, int, int], int] = {}

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        key = (context.task.id, context.epoch, context.turn)
        self.seen[key] = json.dumps([m.model_dump() for m in messages])
        self.seeds[key] = params.seed
        # Usage on every call, so that a fork run's accounting can be told apart (a branch
        # counts only the calls it made).
        return Completion(
            text=self.reply(context, params), model=self.name, prompt_tokens=100,
            completion_tokens=10,
        )  # fmt: skip

    async def aclose(self) -> None:
        return None


def _solution(text: str) -> str:
    return f"<thought> so </thought>\n<solution> {text} </solution>"


def _parent_reply(cell: str, solves_at_2: str) -> Reply:
    """Turn 1 runs ``cell``; turn 2 proposes the gold answer for task ``solves_at_2`` and a
    wrong one for the others; turn 3 is wrong."""

    def reply(ctx: CallContext, params: GenerateParams) -> str:
        if ctx.turn == 1:
            return f"<thought> look </thought>\n<execute>\n{cell}\n</execute>"
        if ctx.turn == 2 and ctx.task.id == solves_at_2:
            return _solution(ctx.task.gold_solution)
        return _solution("xyzzy")

    return reply


def _by_seed(ctx: CallContext, params: GenerateParams) -> str:
    """Gold on even seeds, wrong on odd ones: siblings with different seeds disagree."""
    return _solution(ctx.task.gold_solution if params.seed % 2 == 0 else "xyzzy")


@pytest.fixture
def gsm8k(mint_dir: Path) -> list[Task]:
    return load_tasks("mint", ["gsm8k"], mint_dir, 4)


def _options(mint_dir: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return {
        "suite": "mint", "tasks": "gsm8k", "data_dir": mint_dir, "limit": 4, "turns": 3,
        "proposals": 2, "feedback": "binary", "model": "scripted/wrong", "out": out, **kw,
    }  # fmt: skip


async def _parent_run(
    tmp_path: Path, mint_dir: Path, tasks: list[Task], sandboxes: Any, cell: str
) -> tuple[Path, Recorder]:
    parent = Recorder("parent/m", _parent_reply(cell, tasks[0].id))
    cfg = RunConfig.model_validate(_options(mint_dir, tmp_path / "parent"))
    await execute_run(cfg, model=parent, sandboxes=sandboxes, tasks=tasks)
    assert cfg.execution.out is not None
    return cfg.execution.out, parent


def _fork_config(source: Path, out: Path, **flags: Any) -> RunConfig:
    return build_config(None, {"out": out, "fork_from": source, **flags}, fork_base_options(source))


def _episodes(path: Path) -> list[Episode]:
    with RunStore.open_existing(path) as store:
        return list(store.episodes())


async def test_every_branch_sees_its_parents_context_byte_for_byte(
    tmp_path: Path, mint_dir: Path, gsm8k: list[Task], sandboxes: Any
) -> None:
    source, parent = await _parent_run(tmp_path, mint_dir, gsm8k, sandboxes, "print(6 * 7)")
    child = Recorder("child/m", _by_seed)
    cfg = _fork_config(source, tmp_path / "fork", at_turn=2, samples=3, temperature=0.8)
    outcome = await execute_run(cfg, model=child, sandboxes=sandboxes, tasks=gsm8k)
    # Task 0's parent solved at turn 2: nothing to branch at turn 3.
    assert (outcome.total, outcome.finished, outcome.failed) == (9, 9, 0)
    branches = _episodes(tmp_path / "fork")
    assert len(branches) == 9 and {b.branch_turn for b in branches} == {3}
    for b in branches:
        parent_id = f"gsm8k/{b.key.task_id}#0"
        assert (b.parent_episode, b.key.epoch) == (parent_id, b.branch)
        # The branch turn's message list is the parent's, byte for byte.
        assert child.seen[(b.key.task_id, b.key.epoch, 3)] == parent.seen[(b.key.task_id, 0, 3)]
        assert not [e for e in b.events if isinstance(e, ErrorEvent)]
        replayed = [e for e in b.events if isinstance(e, ModelCallEvent) and e.turn <= 2]
        assert [e.model.startswith("replay/") for e in replayed] == [True, True]
        # The replayed calls keep the parent's usage in the events; the branch counts only
        # its own call (turn 3), since the source run paid for the prefix.
        assert [(e.prompt_tokens, b.is_replayed(e)) for e in replayed] == [(100, True)] * 2
        assert (b.prompt_tokens, b.completion_tokens) == (100, 10)
        assert next(e.content for e in b.events if isinstance(e, ObservationEvent)) == "42"
    seeds = {child.seeds[(b.key.task_id, b.key.epoch, 3)] for b in branches}
    assert len(seeds) == 9  # the branch index is in every seed
    outcomes = {b.key.task_id: set() for b in branches}
    for b in branches:
        outcomes[b.key.task_id].add(b.success)
    assert any(len(o) == 2 for o in outcomes.values())  # siblings that disagree: a pair
    usage = cost_per_solved(branches)
    assert (usage.by_role["policy"].calls, usage.replayed_calls) == (9, 18)
    assert usage.by_role["policy"].prompt_tokens == 900
    found = branch_summary(branches)
    assert found is not None and (found.groups, found.branches) == (3, 9)
    solved = {t: sum(b.success for b in branches if b.key.task_id == t) for t in outcomes}
    assert found.pairs == sum(s * (3 - s) for s in solved.values()) > 0
    manifest = json.loads((tmp_path / "fork" / "manifest.json").read_text())
    with RunStore.open_existing(source) as store:
        stored = store.run()
    assert stored is not None
    assert manifest["fork"] | {"source": "-"} == {
        "source": "-", "source_run_id": stored.run_id, "source_config_hash": stored.config_hash,
        "at_turn": 2, "branch_turn": 3, "samples": 3, "frozen": False, "parents": 3,
        "skipped": {"ended_by_turn_2": 1},
    }  # fmt: skip
    assert manifest["counters"]["fork"]["prefix_mismatches"] == 0
    assert manifest["config"]["temperature"] == 0.8 and manifest["config"]["turns"] == 3
    # Resume: nothing left to do, and the same branches.
    again = await execute_run(cfg, resume=True, model=child, sandboxes=sandboxes, tasks=gsm8k)
    assert (again.total, again.skipped) == (9, 9)


class Judge:
    """A judge model that answers every second opinion with one verdict; counts live calls."""

    cacheable = False

    def __init__(self, name: str, verdict: str) -> None:
        self.name, self.verdict = name, verdict
        self.turns: list[int] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        self.turns.append(context.turn)
        return Completion(text=f"VERDICT: {self.verdict}", model=self.name, prompt_tokens=50)

    async def aclose(self) -> None:
        return None


async def test_the_prefix_is_judged_as_the_parents_was(
    tmp_path: Path, mint_dir: Path, gsm8k: list[Task], sandboxes: Any
) -> None:
    # The parent's judge rejects the wrong answers; the fork's would accept anything. Were the
    # prefix judged live, the wrong proposal of turn 2 would end each branch before turn 3.
    parent = Recorder("parent/m", _parent_reply("print(1)", gsm8k[0].id))
    cfg = RunConfig.model_validate(_options(mint_dir, tmp_path / "parent"))
    strict = Judge("judge/strict", "BAD")
    await execute_run(cfg, model=parent, judge=LLMJudge(strict), sandboxes=sandboxes, tasks=gsm8k)
    assert sorted(strict.turns) == [2, 2, 2, 3, 3, 3]  # the three unsolved tasks' wrong answers
    lenient = Judge("judge/lenient", "GOOD")
    fork = _fork_config(tmp_path / "parent", tmp_path / "fork", at_turn=2, samples=2)
    child = Recorder("child/m", lambda ctx, params: _solution("xyzzy"))
    outcome = await execute_run(
        fork, model=child, judge=LLMJudge(lenient), sandboxes=sandboxes, tasks=gsm8k
    )
    assert (outcome.finished, outcome.failed) == (6, 0)
    assert lenient.turns == [3] * 6  # only the branch turn's proposals reach the live judge
    for branch in _episodes(tmp_path / "fork"):
        assert branch.success and branch.success_turn == 3  # accepted by the lenient judge
        judged = [e for e in branch.events if isinstance(e, ModelCallEvent) and e.role == "judge"]
        assert [(e.turn, e.model, branch.is_replayed(e)) for e in judged] == [
            (2, "judge/strict", True),
            (3, "judge/lenient", False),
        ]
    manifest = json.loads((tmp_path / "fork" / "manifest.json").read_text())
    assert manifest["counters"]["fork"]["prefix_mismatches"] == 0


async def test_a_cell_that_prints_otherwise_is_recorded_and_the_context_kept(
    tmp_path: Path, mint_dir: Path, gsm8k: list[Task], sandboxes: Any
) -> None:
    cell = "import random\nprint(random.random())"
    source, parent = await _parent_run(tmp_path, mint_dir, gsm8k[:2], sandboxes, cell)
    child = Recorder("child/m", _by_seed)
    cfg = _fork_config(source, tmp_path / "fork", at_turn=1, samples=2)
    await execute_run(cfg, model=child, sandboxes=sandboxes, tasks=gsm8k[:2])
    branches = _episodes(tmp_path / "fork")
    assert len(branches) == 4
    for b in branches:
        (error,) = [e for e in b.events if isinstance(e, ErrorEvent)]
        assert (error.where, error.turn, error.fatal) == ("fork-prefix", 1, False)
        assert "re-running the recorded cell gave" in error.message
        assert child.seen[(b.key.task_id, b.key.epoch, 2)] == parent.seen[(b.key.task_id, 0, 2)]
    manifest = json.loads((tmp_path / "fork" / "manifest.json").read_text())
    assert manifest["counters"]["fork"]["branches_with_mismatch"] == 4


async def test_frozen_history_scores_one_candidate_turn(
    tmp_path: Path, mint_dir: Path, gsm8k: list[Task], sandboxes: Any
) -> None:
    source, _ = await _parent_run(tmp_path, mint_dir, gsm8k[:2], sandboxes, "print(1)")
    candidate = Recorder("candidate/m", lambda ctx, p: _solution(ctx.task.gold_solution))
    cfg = _fork_config(source, tmp_path / "frozen", at_turn=1, frozen=True, model="scripted/x")
    await execute_run(cfg, model=candidate, sandboxes=sandboxes, tasks=gsm8k[:2])
    branches = _episodes(tmp_path / "frozen")
    assert [(b.turns_used, b.success_turn, b.branch_turn) for b in branches] == [(2, 2, 2)] * 2
    assert {k[2] for k in candidate.seen} == {2}  # the candidate answered turn 2 only
    wrong = Recorder("candidate/w", lambda ctx, p: _solution("xyzzy"))
    cfg = _fork_config(source, tmp_path / "frozen-w", at_turn=1, frozen=True)
    # Given fewer tasks than its source (a smaller --limit), a fork branches their parents only.
    await execute_run(cfg, model=wrong, sandboxes=sandboxes, tasks=gsm8k[:1])
    ends = [(b.turns_used, b.success, b.terminate_reason) for b in _episodes(tmp_path / "frozen-w")]
    assert ends == [(2, False, "max_turns")]
    manifest = json.loads((tmp_path / "frozen-w" / "manifest.json").read_text())
    assert (manifest["fork"]["parents"], manifest["fork"]["skipped"]) == (1, {"not_selected": 1})


async def test_bad_forks_are_one_clear_error(
    tmp_path: Path, mint_dir: Path, gsm8k: list[Task], sandboxes: Any
) -> None:
    source, _ = await _parent_run(tmp_path, mint_dir, gsm8k[:1], sandboxes, "print(1)")
    with pytest.raises(ConfigError, match="--at-turn 3: the source run has 3 turns"):
        await execute_run(_fork_config(source, tmp_path / "f1", at_turn=3), tasks=gsm8k[:1])
    with pytest.raises(ConfigError, match=r"keeps the options that shape them \(turns: 3 -> 4"):
        await execute_run(_fork_config(source, tmp_path / "f2", turns=4), tasks=gsm8k[:1])
    judged = _fork_config(source, tmp_path / "f4", judge_model="scripted/reference")
    with pytest.raises(ConfigError, match=r"\(judge_model: None -> 'scripted/reference'\)"):
        await execute_run(judged, tasks=gsm8k[:1])  # the parent's turns had no judge
    with pytest.raises(ConfigError, match=r"no episode to branch .*not_selected"):
        await execute_run(_fork_config(source, tmp_path / "f3", at_turn=1), tasks=gsm8k[1:2])
    with pytest.raises(ConfigError, match=r"--fork-from: .*no mulligan\.sqlite here"):
        fork_base_options(tmp_path / "f1")
    assert not (tmp_path / "f2").exists()


def test_cli_fork_takes_the_source_runs_options(tmp_path: Path, mint_dir: Path) -> None:
    runner = CliRunner()
    common = ["--suite", "mint", "--tasks", "gsm8k", "--data-dir", str(mint_dir), "--limit", "2"]
    source = tmp_path / "src"
    made = runner.invoke(
        app,
        ["run", *common, "--turns", "2", "--model", "scripted/execute-then-answer",
         "--out", str(source), "--no-progress"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    fork = tmp_path / "fork"
    forked = runner.invoke(
        app,
        ["run", "--fork-from", str(source), "--at-turn", "1", "--samples", "2",
         "--model", "scripted/reference", "--out", str(fork), "--no-progress"],
    )  # fmt: skip
    assert forked.exit_code == 0, forked.output
    assert "2 sibling groups of 4 branches, 4 solved at their branch turn" in forked.output
    branches = _episodes(fork)
    assert len(branches) == 4 and all(b.success_turn == 2 for b in branches)
    manifest = json.loads((fork / "manifest.json").read_text())
    assert manifest["config"]["turns"] == 2 and manifest["config"]["limit"] == 2
    assert manifest["fork"]["samples"] == 2
    bad = runner.invoke(app, ["run", "--samples", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "need --fork-from" in bad.output


def test_sibling_pairs_by_hand() -> None:
    def branch(parent: str, index: int, success_turn: int | None, turn: int = 2) -> Episode:
        return Episode(
            key=EpisodeKey(suite="s", task_id=parent, epoch=index),
            run_id="r", config_hash="h", model="m", max_turns=3, max_proposals=3,
            success=success_turn is not None, success_turn=success_turn,
            parent_episode=f"s/{parent}#0", branch_turn=turn, branch=index,
        )  # fmt: skip

    # a: 2 of 4 solved at the branch turn -> 2 * 2 = 4 pairs; b: one solved later, at turn 3,
    # which is no success *at* the branch turn -> 0 pairs; c: a lone branch is no group.
    episodes = [
        *(branch("a", i, t) for i, t in enumerate([2, None, 2, None])),
        branch("b", 0, 3), branch("b", 1, None), branch("c", 0, 2),
    ]  # fmt: skip
    found = branch_summary(episodes)
    assert found is not None
    assert found.model_dump() == {
        "groups": 2, "branches": 6, "solved_at_branch_turn": 2, "pairs": 4,
        "groups_with_pair": 1,
    }  # fmt: skip
    plain = episodes[0].model_copy(update={"parent_episode": None, "branch_turn": None})
    assert branch_summary([plain]) is None
