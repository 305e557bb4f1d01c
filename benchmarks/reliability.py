"""Reliability drills: does a killed run lose or repeat anything, and does a run survive a
server that fails one call in five?

    .venv/bin/python benchmarks/reliability.py [--crash-trials 20] [--fault-episodes 1000] \\
        [--concurrency 128] [--out runs/reliability]

- **crash**: `mulligan run` (scripted policy on HumanEval, code cells and code checks in the
  sandbox) is killed with SIGKILL at random moments, ``--crash-trials`` times, resuming after
  each kill. After every kill the store must pass ``PRAGMA integrity_check``, hold each episode
  at most once and only whole episodes; at the end the resumed run's episodes and SR@k must equal
  an uninterrupted run's, and no sandbox worker may outlive its run.
- **faults**: ``--fault-episodes`` episodes at ``--concurrency`` against an OpenAI-compatible
  server on 127.0.0.1 that fails 20% of calls, mixing 429, 500, 503, hangs, dropped connections
  and malformed bodies: every episode stored exactly once, and the retries the run counted by
  cause (in its manifest) equal the faults the server served.

Writes ``reliability.json`` and ``reliability.md`` into ``--out``. ``tests/test_reliability.py``
runs both drills small; this script runs them at full size. Not run by CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.retry import RetryPolicy
from mulligan.store import DB_NAME, RunStore
from mulligan.tasks import Task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from openai_server import OpenAIServer, Reply, Request, Response
from test_faults import CAUSE, FAULTS

# --------------------------------------------------------------------------------- crash drill


@dataclass
class CrashReport:
    """What the kill -9 drill saw."""

    kills: int = 0
    finished_before_kill: int = 0
    integrity_failures: list[str] = field(default_factory=list)
    duplicates: int = 0
    partial_episodes: int = 0
    episodes_after_kill: list[int] = field(default_factory=list)
    surviving_workers: int = 0
    equal_to_uninterrupted: bool = False
    differences: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_command(out: Path, limit: int) -> list[str]:
    """The `mulligan run` both the uninterrupted and the killed runs execute."""
    return [
        sys.executable, "-m", "mulligan.cli", "run", "--suite", "humaneval",
        "--limit", str(limit), "--model", "scripted/execute-then-answer", "--turns", "3",
        "--concurrency", "4", "--out", str(out), "--no-progress", "--resume",
    ]  # fmt: skip


def _start(out: Path, limit: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        run_command(out, limit),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, so survivors can be found by session id
    )


def _session_survivors(sid: int) -> int:
    """Processes still alive in a killed run's session (sandbox workers that outlived it)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                count += 1
        except (ProcessLookupError, PermissionError):
            continue
    return count


def check_store(out: Path) -> tuple[str, int, int, int]:
    """(integrity_check result, episodes, duplicate keys, episodes without events), read-only."""
    path = out / DB_NAME
    if not path.exists():
        return "ok", 0, 0, 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'episodes'").fetchall()
        if not tables:  # killed after the file was made, before its schema was committed
            return str(integrity), 0, 0, 0
        (episodes,) = db.execute("SELECT COUNT(*) FROM episodes").fetchone()
        (distinct,) = db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT suite, task_id, epoch FROM episodes)"
        ).fetchone()
        (empty,) = db.execute(
            "SELECT COUNT(*) FROM episodes e WHERE NOT EXISTS "
            "(SELECT 1 FROM events v WHERE v.episode_id = e.episode_id)"
        ).fetchone()
    finally:
        db.close()
    return str(integrity), int(episodes), int(episodes) - int(distinct), int(empty)


def outcomes(out: Path) -> dict[str, tuple[Any, ...]]:
    """Each episode's result-defining outcome, by episode id (timings and run ids left out)."""
    with RunStore.open_existing(out) as store:
        return {
            e.id: (e.status, e.success, e.success_turn, e.turns_used, e.proposals_used,
                   e.terminate_reason, [ev.type for ev in e.events])
            for e in store.episodes()
        }  # fmt: skip


def _kill_once(out: Path, limit: int, wait_s: float, report: CrashReport) -> bool:
    """Start (or resume) the run, SIGKILL it after ``wait_s``; False if it finished first."""
    process = _start(out, limit)
    try:
        process.wait(timeout=wait_s)
        report.finished_before_kill += 1
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        report.kills += 1
    time.sleep(0.5)  # workers notice their parent's death (die-with-parent, pipe closed)
    survivors = _session_survivors(process.pid)
    report.surviving_workers += survivors
    if survivors:  # clean up, so the next trial starts from the same state
        os.killpg(process.pid, signal.SIGKILL)
    integrity, episodes, duplicates, empty = check_store(out)
    if integrity != "ok":
        report.integrity_failures.append(f"after kill {report.kills}: {integrity}")
    report.duplicates += duplicates
    report.partial_episodes += empty
    report.episodes_after_kill.append(episodes)
    return True


def crash_drill(root: Path, trials: int, limit: int, seed: int = 0) -> CrashReport:
    """Kill a run ``trials`` times at random moments, resume it to the end, compare."""
    started = time.perf_counter()
    rng = random.Random(seed)
    report = CrashReport()
    reference = root / "uninterrupted"
    t0 = time.perf_counter()
    _run_to_end(run_command(reference, limit))
    full_s = time.perf_counter() - t0
    cycle = 0
    while report.kills < trials:
        out = root / f"killed-{cycle}"
        while report.kills < trials and _kill_once(out, limit, rng.uniform(0.3, full_s), report):
            pass
        _run_to_end(run_command(out, limit))
        _compare(reference, out, report)
        cycle += 1
    report.equal_to_uninterrupted = not report.differences
    report.wall_s = time.perf_counter() - started
    return report


def _run_to_end(command: list[str]) -> None:
    """Run (or resume) to the end; a failure names the command and its last words."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")


def _compare(reference: Path, out: Path, report: CrashReport) -> None:
    want, got = outcomes(reference), outcomes(out)
    if set(want) != set(got):
        report.differences.append(f"{out.name}: episodes differ: {sorted(set(want) ^ set(got))}")
    for key in sorted(set(want) & set(got)):
        if want[key] != got[key]:
            report.differences.append(f"{out.name}: {key}: {want[key]} != {got[key]}")


# --------------------------------------------------------------------------------- fault drill

# The fault kinds and the retry cause each must be counted under: the fault tests' own.
MAX_ATTEMPTS = 4


class RandomFaults:
    """Fails each call with probability ``rate``, the fault drawn from FAULTS; seeded per
    (task, attempt) so a drill is reproducible whatever the arrival order."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate, self.seed = rate, seed
        self.attempts: Counter[int] = Counter()
        self.served: Counter[str] = Counter()
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        task = int(request.last_user.rsplit("task ", 1)[1].split()[0])
        with self.lock:
            attempt = self.attempts[task]
            self.attempts[task] += 1
            self.calls += 1
        rng = random.Random(f"{self.seed}:{task}:{attempt}")
        if rng.random() < self.rate:
            fault = rng.choice(sorted(FAULTS))
            with self.lock:
                self.served[fault] += 1
            return FAULTS[fault]
        return Reply(f"<thought> easy </thought> <solution> {task * 3} </solution>")


@dataclass
class FaultReport:
    """What the fault drill saw."""

    episodes: int
    concurrency: int
    calls: int = 0
    faults_served: dict[str, int] = field(default_factory=dict)
    retries_counted: dict[str, int] = field(default_factory=dict)
    retries_expected: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    finished: int = 0
    failed: int = 0
    solved: int = 0
    wall_s: float = 0.0


def _tasks(count: int) -> list[Task]:
    return [
        Task(
            id=str(n),
            suite="synthetic",
            category="reasoning",
            prompt=f"This is task {n} . What is 3 times {n}?",
            reference=str(n * 3),
            checker="gsm8k",
            gold_solution=str(n * 3),
        )
        for n in range(count)
    ]


def _expected_retries(responder: RandomFaults, failed_tasks: set[int]) -> Counter[str]:
    """Every fault the server served was retried, except each failed episode's last one."""
    expected: Counter[str] = Counter()
    for task, attempts in responder.attempts.items():
        for attempt in range(attempts):
            rng = random.Random(f"{responder.seed}:{task}:{attempt}")
            if rng.random() < responder.rate:
                fault = rng.choice(sorted(FAULTS))
                if not (task in failed_tasks and attempt == attempts - 1):
                    expected[CAUSE[fault]] += 1
    return expected


async def fault_drill(root: Path, episodes: int, concurrency: int, seed: int = 0) -> FaultReport:
    """One run of ``episodes`` single-answer episodes against a server failing 20% of calls."""
    report = FaultReport(episodes=episodes, concurrency=concurrency)
    responder = RandomFaults(0.2, seed)
    config = RunConfig.model_validate(
        {
            "model": "openai-compatible/test-model",
            "turns": 2,
            "concurrency": concurrency,
            "cache": "off",
            "out": root / "faults",
        }
    )
    started = time.perf_counter()
    with OpenAIServer(responder) as server:
        policy = RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_backoff_s=0.01, max_backoff_s=0.05)
        model = OpenAICompatModel(
            "test-model", base_urls=server.base_url, timeout_s=1.0, retry=policy,
            max_concurrency=concurrency,
        )  # fmt: skip
        outcome = await execute_run(config, model=model, tasks=_tasks(episodes))
    report.wall_s = time.perf_counter() - started
    report.calls, report.faults_served = responder.calls, dict(responder.served)
    report.retries_counted = dict(model.retry_stats.retries)
    with RunStore.open_existing(outcome.out) as store:
        stored = list(store.episodes(with_events=False))
    report.stored = len(stored)
    report.duplicates = len(stored) - len({e.key.id for e in stored})
    failed = {int(e.key.task_id) for e in stored if e.status == "failed"}
    report.retries_expected = dict(_expected_retries(responder, failed))
    report.finished, report.failed, report.solved = outcome.finished, outcome.failed, outcome.solved
    return report


# ------------------------------------------------------------------------------------- report


def markdown(crash: CrashReport | None, faults: FaultReport | None) -> str:
    """The drills' results as the tables benchmarks/README.md quotes."""
    lines = ["# Reliability drills", ""]
    if crash is not None:
        lines += [
            "| crash drill | value |", "|---|---|",
            f"| SIGKILLs during the run | {crash.kills} |",
            f"| runs that finished before their kill | {crash.finished_before_kill} |",
            f"| integrity_check failures | {len(crash.integrity_failures)} |",
            f"| duplicate episodes / episodes without events | {crash.duplicates} / "
            f"{crash.partial_episodes} |",
            f"| sandbox processes alive 0.5 s after a kill | {crash.surviving_workers} |",
            f"| resumed runs equal to an uninterrupted run | {crash.equal_to_uninterrupted} |",
            f"| wall time | {crash.wall_s:.0f} s |", "",
        ]  # fmt: skip
    if faults is not None:
        lines += [
            "| fault drill | value |", "|---|---|",
            f"| episodes, concurrency | {faults.episodes}, {faults.concurrency} |",
            f"| calls, faults served | {faults.calls}, {sum(faults.faults_served.values())} |",
            f"| stored, duplicates | {faults.stored}, {faults.duplicates} |",
            f"| finished / failed / solved | {faults.finished} / {faults.failed} / "
            f"{faults.solved} |",
            f"| retries counted by cause | {faults.retries_counted} |",
            f"| retries expected by cause | {faults.retries_expected} |",
            f"| wall time | {faults.wall_s:.1f} s |", "",
        ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crash-trials", type=int, default=20)
    parser.add_argument("--crash-tasks", type=int, default=60)
    parser.add_argument("--fault-episodes", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("runs/reliability"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    crash = crash_drill(args.out / "crash", args.crash_trials, args.crash_tasks, args.seed)
    faults = asyncio.run(fault_drill(args.out, args.fault_episodes, args.concurrency, args.seed))
    data = {"crash": asdict(crash), "faults": asdict(faults)}
    (args.out / "reliability.json").write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    text = markdown(crash, faults)
    (args.out / "reliability.md").write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
