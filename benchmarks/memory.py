"""Peak memory and store size of a large run: scripted episodes streamed to the store.

    .venv/bin/python benchmarks/memory.py [--episodes 100000] [--concurrency 64] \\
        [--out runs/bench-memory]

``--episodes`` synthetic arithmetic tasks (those of ``reliability.py``), each one episode of the
``scripted/reference`` policy (it proposes the reference at turn 1, the ``gsm8k`` checker judges
it), run by ``engine.execute_run`` into a fresh store, in a child process whose peak RSS
(``ru_maxrss``) is the figure; the store's size on disk and the CPU per episode come with it.
Writes ``memory.json`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness_overhead import _env, markdown, write_results  # a sibling script


async def child(episodes: int, concurrency: int, out: Path) -> dict[str, Any]:
    from reliability import _tasks  # the synthetic tasks' one home

    from mulligan.config import RunConfig
    from mulligan.engine import execute_run

    tasks = _tasks(episodes)
    config = RunConfig.model_validate(
        {
            "model": "scripted/reference",
            "turns": 1,
            "concurrency": concurrency,
            "cache": "off",
            "out": out,
        }
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu0 = time.time(), time.process_time()
    outcome = await execute_run(config, tasks=tasks)
    wall, cpu = time.time() - started, time.process_time() - cpu0
    store = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "episodes": outcome.finished + outcome.failed,
        "failed": outcome.failed,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_run_mb": round(rss_before, 1),
        "store_mb": round(store / 2**20, 1),
        "store_kb_per_episode": round(store / 1024 / max(episodes, 1), 2),
        "cpu_ms_per_episode": round(1000 * cpu / max(episodes, 1), 3),
        "wall_s": round(wall, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


COLUMNS = (
    ("episodes", "episodes"),
    ("failed", "failed"),
    ("peak_rss_mb", "peak RSS MB"),
    ("rss_before_run_mb", "RSS before the run MB"),
    ("store_mb", "store MB"),
    ("store_kb_per_episode", "store KB/episode"),
    ("cpu_ms_per_episode", "CPU ms/episode"),
    ("wall_s", "wall s"),
    ("load_avg_1m", "load avg"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", default="100000", help="comma-separated sizes")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-memory"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(child(int(args.episodes), args.concurrency, args.out))
        print("RESULT " + json.dumps(result), flush=True)
        return
    rows = []
    for n in [int(x) for x in args.episodes.split(",") if x]:
        out = args.out / f"run-{n}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, __file__, "--child", "--episodes", str(n)]
        cmd += ["--concurrency", str(args.concurrency), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            raise RuntimeError(f"the run failed ({done.returncode}): {done.stderr[-2000:]}")
        row = json.loads(lines[-1][len("RESULT ") :])
        print(row, flush=True)
        rows.append(row)
    write_results(args.out, "memory", rows, markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
