"""ALFWorld through mulligan's environment protocol: the expert, a wrong policy, MINT's log.

Runs whole episodes the way ``mulligan run --suite alfworld`` does (``run_episode``, a real
sandbox, one game server process per episode) and reports, per policy:

- ``--policy expert``: ``scripted/reference``, which runs the tool calls of each game's
  ``gt_traj.txt`` in one cell (MINT's expert trajectory): should solve every game;
- ``--policy wrong``: ``scripted/wrong``, which only proposes a wrong answer: should solve none;
- ``--policy mint-log``: replays MINT's logged gpt-3.5-turbo-0613 replies (F=None, k=5, p=2)
  through the games and compares each episode's success with MINT's logged label; every
  disagreement is listed with the facts that explain it (steps taken, won vs. done).

Timings: the game's load (reset) time and the time per tool call (game step), from the
episode's event timestamps.

    PYTHONPATH=src python benchmarks/alfworld_replay.py --policy expert [--limit N] [--offset N] \
        [--concurrency 2] [--data ../shared/data] [--out /tmp/alfworld-expert.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import Episode, PromptEvent, ToolCallEvent
from mulligan.models import get_model
from mulligan.models.base import GenerateParams
from mulligan.sandbox import SandboxLimits, SandboxPool
from mulligan.tasks import get_checker, load_suite
from mulligan.tasks.base import Task
from mulligan.tasks.mint_log import read_results

MINT_LOG = "mint/outputs/gpt-3.5-turbo-0613/F=None/max5_p2+tool+cd/decision_making/alfworld"


def _timings(episode: Episode) -> dict[str, Any]:
    prompt = next((e for e in episode.events if isinstance(e, PromptEvent)), None)
    calls = [e for e in episode.events if isinstance(e, ToolCallEvent)]
    load_s = (prompt.at - episode.started_at).total_seconds() if prompt else None
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(calls)]
    return {
        "load_s": load_s,
        "steps": len(calls),
        "step_s_median": statistics.median(gaps) if gaps else None,
        "won_steps": sum(1 for c in calls if c.success),
    }


async def _one(task: Task, policy_name: str, pool: SandboxPool, limits: EpisodeLimits) -> Episode:
    policy = get_model(policy_name)
    return await run_episode(
        task=task,
        policy=policy,
        params=GenerateParams(),
        checker=get_checker(task.checker),
        sandboxes=pool,
        feedback=[],
        limits=limits,
        run_id="alfworld-replay",
        config_hash="-",
    )


def _mint_labels(data: Path) -> dict[str, dict[str, Any]]:
    path = data / MINT_LOG / "results.jsonl"
    labels: dict[str, dict[str, Any]] = {}
    for _, line in read_results(path):
        state = line.state
        labels[str(line.task.task_id)] = {
            "success": bool(state.success),
            "terminate_reason": state.terminate_reason,
        }
    return labels


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=("expert", "wrong", "mint-log"), default="expert")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=0, help="first N games (0: all 134)")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N games")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--checkers", choices=("mint", "strict"), default="mint")
    parser.add_argument("--out", type=Path, default=None, help="one JSON line per episode")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the episodes already in --out (except those the game server failed) and "
        "run only the others",
    )
    args = parser.parse_args()
    tasks = load_suite("alfworld", args.data, checkers=args.checkers)
    tasks = tasks[args.offset :]
    if args.limit:
        tasks = tasks[: args.limit]
    policy = {
        "expert": "scripted/reference",
        "wrong": "scripted/wrong",
        "mint-log": f"replay/{args.data / MINT_LOG / 'results.jsonl'}",
    }[args.policy]
    labels = _mint_labels(args.data) if args.policy == "mint-log" else {}
    limits = EpisodeLimits(max_turns=5, max_proposals=2, cell_timeout_s=600.0)
    pool = SandboxPool(size=args.concurrency, limits=SandboxLimits(cell_timeout_s=600.0))
    await pool.start()
    rows: list[dict[str, Any]] = _kept_rows(args.out) if args.resume and args.out else []
    done = {row["task"] for row in rows}
    queue: asyncio.Queue[Task] = asyncio.Queue()
    for task in tasks:
        if task.id not in done:
            queue.put_nowait(task)
    out = args.out.open("w") if args.out else None
    for row in rows:
        assert out is not None
        out.write(json.dumps(row) + "\n")
    started = time.perf_counter()

    async def worker() -> None:
        while not queue.empty():
            task = queue.get_nowait()
            episode = await _one(task, policy, pool, limits)
            row = {
                "task": task.id,
                "status": episode.status,
                "success": episode.success,
                "success_turn": episode.success_turn,
                "reason": episode.terminate_reason,
                "error": episode.error,
                **_timings(episode),
            }
            if task.id in labels:
                row["mint_success"] = labels[task.id]["success"]
                row["mint_reason"] = labels[task.id]["terminate_reason"]
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
            print(json.dumps(row), file=sys.stderr, flush=True)

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        await pool.close()
        if out:
            out.close()
    _summary(rows, labels, time.perf_counter() - started)
    return 0


def _infrastructure_failure(row: dict[str, Any]) -> bool:
    """The game server failed (not the policy): the episode says nothing about the game."""
    error = str(row.get("error"))
    # (EnvironmentError_ was the exception's earlier name, in rows written before the rename.)
    return row["status"] != "finished" and (
        "EnvironmentFailure" in error or "EnvironmentError_" in error
    )


def _kept_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if not _infrastructure_failure(row)]


def _summary(rows: list[dict[str, Any]], labels: dict[str, Any], wall_s: float) -> None:
    broken = [r for r in rows if _infrastructure_failure(r)]
    rows = [r for r in rows if not _infrastructure_failure(r)]
    solved = sum(r["success"] for r in rows)
    failed = [r for r in rows if r["status"] != "finished"]
    if broken:
        print(f"left out: {len(broken)} episodes whose game server failed (rerun with --resume)")
    loads = [r["load_s"] for r in rows if r["load_s"] is not None]
    steps = [r["step_s_median"] for r in rows if r["step_s_median"] is not None]
    print(f"episodes {len(rows)}, solved {solved}, failed {len(failed)}, wall {wall_s:.0f} s")
    if loads:
        print(f"game load: median {statistics.median(loads):.2f} s, max {max(loads):.2f} s")
    if steps:
        print(
            f"tool call (game step): median of per-episode medians {statistics.median(steps):.3f} s"
        )
    if labels:
        agree = [r for r in rows if r.get("mint_success") == r["success"]]
        print(f"agreement with MINT's labels: {len(agree)}/{len(rows)}")
        ended = [r for r in rows if r["status"] != "finished"]
        print(
            f"  of which {len(ended)} end where MINT's own episode ended in an error (its log "
            "has no reply for the next turn; MINT's label is False)"
        )
        for r in rows:
            if r.get("mint_success") != r["success"]:
                print("  disagrees:", json.dumps(r))


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
