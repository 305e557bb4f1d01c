"""The standard suites end to end: how long each takes to load, and ``scripted/reference`` /
``scripted/wrong`` runs through ``mulligan run`` (the real engine, sandbox and checkers) on
every suite and group, expecting SR@1 = 100% and 0%. For EvalPlus the reference run is the
canonical solution judged on base and plus inputs against its own outputs computed in the
sandbox: a task below 100% is one whose canonical solution fails, times out or returns what
cannot be compared on some input (reported by id, as EvalPlus does).

    .venv/bin/python benchmarks/standard_suites.py --data-dir ../shared/data --limit 40
    .venv/bin/python benchmarks/standard_suites.py --data-dir ../shared/data   # every task

``--limit`` takes a seeded random sample of that many tasks per group (``--sample random``);
``--suites`` picks suites (default: all the standard ones); ``--concurrency`` episodes in flight.
Run directories go under ``--out`` (default ``runs/standard-suites``) and are reused by
``--resume`` on a second call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SUITES = (
    "gsm8k-test",
    "math500",
    "mbpp-full",
    "mbpp-sanitized",
    "humaneval+",
    "mbpp+",
    "refinebench",
)


def load_time(suite: str, data_dir: Path) -> tuple[int, float]:
    from mulligan.tasks import SUITES as REGISTRY

    start = time.perf_counter()
    definition = REGISTRY[suite]
    count = sum(len(definition.load(g, data_dir, "strict")) for g in definition.groups or (None,))
    return count, time.perf_counter() - start


def run(suite: str, group: str | None, model: str, args: argparse.Namespace) -> dict[str, object]:
    name = f"{suite}-{group or 'all'}-{model.split('/')[1]}".replace("+", "plus")
    out = args.out / name
    command = [
        sys.executable,
        "-m",
        "mulligan",
        "run",
        "--suite",
        suite,
        "--model",
        model,
        "--turns",
        "1",
        "--data-dir",
        str(args.data_dir),
        "--out",
        str(out),
        "--concurrency",
        str(args.concurrency),
        "--sample",
        "random",
        "--seed",
        "0",
    ]
    if group:
        command += ["--tasks", group]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if any(out.glob("*.sqlite")):
        command.append("--resume")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    report = subprocess.run(
        [sys.executable, "-m", "mulligan", "report", str(out), "--format", "json"],
        capture_output=True,
        text=True,
    )
    if report.returncode != 0:
        return {"suite": suite, "group": group, "model": model, "error": done.stderr[-500:]}
    summary = json.loads(report.stdout)["runs"][0]["summary"]
    row: dict[str, object] = {
        "suite": suite,
        "group": group,
        "model": model,
        "episodes": summary["episodes"],
        "failed": summary["failed"],
        "sr1": summary["sr_at_k"]["1"]["value"],
        "seconds": round(elapsed, 1),
    }
    if model == "scripted/reference" and summary["sr_at_k"]["1"]["value"] < 1.0:
        row["unsolved"] = unsolved(out)
    return row


def unsolved(run_dir: Path) -> list[str]:
    """Task ids a reference run did not solve (EvalPlus: canonical solutions that fail)."""
    from mulligan.store.sqlite import RunStore

    store = RunStore.open_existing(run_dir)
    try:
        return sorted(e.key.task_id for e in store.episodes(with_events=False) if not e.success)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/standard-suites"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--suites", default=",".join(SUITES))
    args = parser.parse_args()
    from mulligan.tasks import SUITES as REGISTRY

    rows = []
    for suite in args.suites.split(","):
        count, seconds = load_time(suite, args.data_dir)
        print(f"load {suite}: {count} tasks in {seconds:.2f} s", flush=True)
        for group in REGISTRY[suite].groups or (None,):
            for model in ("scripted/reference", "scripted/wrong"):
                row = run(suite, group, model, args)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("\nsuite | group | model | episodes | SR@1 | seconds")
    for r in rows:
        print(
            f"{r['suite']} | {r['group'] or ''} | {r['model']} | {r.get('episodes')} | "
            f"{r.get('sr1')} | {r.get('seconds')}"
        )


if __name__ == "__main__":
    main()
