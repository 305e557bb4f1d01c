"""ALFWorld as MINT runs it (issue 16, item 2).

Without a game: the suite loads MINT's 134 games in MINT's order and types, the tools are MINT's
eleven with MINT's commands, the expert's ``gt_traj.txt`` becomes tool calls, and the first
prompt of every game equals the one MINT logged. With the optional ``alfworld`` package: one
game played by the expert through a real sandbox, and MINT's logged gpt-3.5 episode of the same
game replayed through the environment, reproducing MINT's success label. The full 134-game
runs are ``benchmarks/alfworld_replay.py`` (minutes per game on a busy machine).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import Episode, ToolCallEvent
from mulligan.models import GenerateParams, get_model
from mulligan.prompts.policy import render_mint_prompt
from mulligan.sandbox import SandboxPool
from mulligan.tasks import get_checker, load_suite, suite_names
from mulligan.tasks.alfworld import (
    ALFWORLD_TOOLS,
    PROMPT_PREFIX,
    alfworld_available,
    expert_calls,
    game_command,
    process_observation,
)
from mulligan.tasks.base import Task
from mulligan.tasks.environment import ToolCallError

LOG = "outputs/gpt-3.5-turbo-0613/F=None/max5_p2+tool+cd/decision_making/alfworld/results.jsonl"
# MINT's gpt-3.5 solved this game at its second turn; its expert needs four calls.
SHORT_GAME = "pick_and_place_simple-Mug-None-Desk-308/trial_T20190909_203041_433487"

needs_alfworld = pytest.mark.skipif(
    not alfworld_available(),
    reason="the optional package alfworld is not installed (pip install -e '.[alfworld]')",
)


def _tasks(mint_dir: Path, checkers: str = "mint") -> list[Task]:
    return load_suite("alfworld", mint_dir.parent, checkers=checkers)  # type: ignore[arg-type]


def _log(mint_dir: Path) -> list[dict[str, object]]:
    path = mint_dir / LOG
    if not path.is_file():
        pytest.skip(f"MINT's ALFWorld log not found at {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_suite_holds_the_134_games_mint_ran(mint_dir: Path) -> None:
    tasks = _tasks(mint_dir)
    assert len(tasks) == 134
    assert "alfworld" in suite_names() and "alfworld/puttwo" in suite_names()
    types = Counter(str(t.metadata["mint_task_type"]) for t in tasks)
    assert types == {
        "alfworld/clean": 31, "alfworld/put": 24, "alfworld/heat": 23,
        "alfworld/cool": 21, "alfworld/examine": 18, "alfworld/puttwo": 17,
    }  # fmt: skip
    assert {t.id for t in tasks} == {str(r["task"]["task_id"]) for r in _log(mint_dir)}  # type: ignore[index]
    assert len(load_suite("alfworld/heat", mint_dir.parent)) == 23
    assert {t.metadata["success"] for t in _tasks(mint_dir, "strict")} == {"won"}


def test_tools_are_mints_with_mints_game_commands() -> None:
    assert [s.name for s in ALFWORLD_TOOLS] == [
        "put", "goto", "take_from", "open_receptacle", "toggle", "close_receptacle",
        "clean", "heat", "cool", "use", "look",
    ]  # fmt: skip
    assert game_command("put", ["mug 1", "desk 2"]) == "put mug 1 in/on desk 2"
    assert game_command("goto", ["drawer 1"]) == "go to drawer 1"
    assert game_command("take_from", ["mug 1", "shelf 2"]) == "take mug 1 from shelf 2"
    assert game_command("look", []) == "look"
    with pytest.raises(ToolCallError, match="takes 1 argument"):
        game_command("goto", [])
    assert process_observation("You arrive at loc 7. On the desk 1, you see a pen 1.") == (
        "On the desk 1, you see a pen 1."
    )
    gt = 'Assistant:\n<execute>\ngoto("desk 1")\ntake("pen 1", "desk 1")\nopen("drawer 1")\n</execute>'
    assert expert_calls(gt) == [
        'goto("desk 1")',
        'take_from("pen 1", "desk 1")',
        'open_receptacle("drawer 1")',
    ]


def test_every_first_prompt_is_the_one_mint_logged(mint_dir: Path) -> None:
    tasks = {t.id: t for t in _tasks(mint_dir)}
    for record in _log(mint_dir):
        task_info, state = record["task"], record["state"]
        assert isinstance(task_info, dict) and isinstance(state, dict)
        logged_task = str(task_info["prompt"])
        assert logged_task.startswith(PROMPT_PREFIX)
        observation = logged_task[len(PROMPT_PREFIX) :]  # the game's first observation
        text, _ = render_mint_prompt(
            tasks[str(task_info["task_id"])], 5, 2, observation=observation
        )
        # MINT's first message ends with a newline; mulligan's template drops it (all suites).
        assert text == str(state["history"][0]["content"]).removesuffix("\n")


async def _episode(task: Task, policy: str, pool: SandboxPool) -> Episode:
    return await run_episode(
        task=task,
        policy=get_model(policy),
        params=GenerateParams(),
        checker=get_checker(task.checker),
        sandboxes=pool,
        feedback=[],
        limits=EpisodeLimits(max_turns=5, max_proposals=2, cell_timeout_s=300.0),
        run_id="r",
        config_hash="h",
    )


@pytest.fixture
async def slow_cells() -> object:
    from mulligan.sandbox import SandboxLimits

    pool = SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=300.0))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@needs_alfworld
async def test_the_expert_wins_a_game_through_the_sandbox(
    mint_dir: Path, slow_cells: SandboxPool
) -> None:
    task = next(t for t in _tasks(mint_dir) if t.id == SHORT_GAME)
    episode = await _episode(task, "scripted/reference", slow_cells)
    assert episode.status == "finished", episode.error
    assert episode.success and episode.success_turn == 1
    calls = [e for e in episode.events if isinstance(e, ToolCallEvent)]
    assert [c.tool for c in calls] == [c.split("(")[0] for c in expert_calls(task.reference)]
    assert [c.success for c in calls][-1] and not any(c.success for c in calls[:-1])


@needs_alfworld
async def test_mints_logged_episode_replays_to_mints_label(
    mint_dir: Path, slow_cells: SandboxPool
) -> None:
    logged = next(r for r in _log(mint_dir) if r["task"]["task_id"] == SHORT_GAME)  # type: ignore[index]
    task = next(t for t in _tasks(mint_dir) if t.id == SHORT_GAME)
    episode = await _episode(task, f"replay/{mint_dir / LOG}", slow_cells)
    assert episode.status == "finished", episode.error
    assert episode.success is logged["state"]["success"] is True  # type: ignore[index]
    assert episode.success_turn == 2
