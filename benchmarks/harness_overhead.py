"""What the harness itself costs per turn, against a mock OpenAI-compatible server.

    .venv/bin/python benchmarks/harness_overhead.py --data-dir ../shared/data/mint \\
        [--episodes 1000,10000] [--concurrency 64,256] [--latency-ms 0,200] \\
        [--workloads reasoning,code] [--turns 5] [--out runs/bench-overhead]

Each cell of the grid (workload x episodes x concurrency x latency) runs in two fresh processes:
a mock server on 127.0.0.1 (``tests/openai_server.py``, the one mock of the OpenAI API, run as
``harness_overhead.py serve``) that answers every call wrong after ``latency`` ms, and a client
(``harness_overhead.py client``) that runs ``engine.execute_run`` with ``--feedback binary``,
``--proposals`` = ``--turns`` (so every episode takes every turn) and the response cache off. The
client measures its own CPU time (user + system, ``getrusage``) around ``execute_run`` alone
(imports excluded, task loading, scoring, feedback and storing included), the CPU of the child
processes it reaped (sandbox workers, checker workers), its peak RSS and the wall time.

Workloads: ``reasoning`` (MINT's gsm8k, math, theoremqa, mmlu, hotpotqa: text checkers) and
``code`` (HumanEval's 164 tasks: every proposal is a code check in the sandbox); ``mint`` is the
issue's workload (all 452 MINT tasks). N episodes are ``ceil(N / epochs)`` tasks x ``epochs``.

Reported per cell: turns (model calls), turns/s, client CPU ms per turn (and with children),
peak RSS, wall time, and efficiency = ideal / wall, where ideal = turns x latency / concurrency
(only meaningful when latency > 0). Writes ``harness_overhead.json`` and ``.md`` into ``--out``.
CPU figures are robust to other load on the machine; wall figures are not: the load average is
recorded with each cell.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

REASONING = ("gsm8k", "math", "theoremqa", "mmlu", "hotpotqa")
# Wrong for every task: a number no reasoning task has as its answer, and, as a code proposal,
# a program that defines nothing, so the tests fail (the code check still runs in the sandbox).
WRONG = "<thought>A guess.</thought>\n<solution>-987654321</solution>"
MODEL_ID = "test-model"


# ------------------------------------------------------------------------------------ server


def serve(latency_ms: float) -> None:
    """Serve until stdin closes; print the base URL first. Every reply is wrong."""
    from openai_server import OpenAIServer, Reply, Request, Response

    delay = latency_ms / 1000.0

    def wrong(request: Request) -> Response:
        return Reply(WRONG, delay_s=delay)

    server = OpenAIServer(wrong, model_ids=(MODEL_ID,))
    server.requests = _Discard()  # 50,000 requests: keep none
    with server:
        print(server.base_url, flush=True)
        sys.stdin.read()
    print(len(server.requests), flush=True)  # the calls served, for whoever started us


class _Discard(list):
    """A request log that keeps nothing (the server records every request for tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def append(self, item: Any) -> None:
        self.seen += 1

    def __len__(self) -> int:
        return self.seen


class MockServer:
    """A mock server in a process of its own, so its CPU is never counted as the client's:
    ``fast`` (the default, ``mock_server.py``: asyncio, thousands of calls per second) or
    ``threaded`` (``serve`` above, the test suite's thread-per-connection server, which tops
    out near 650 calls per second at 256 connections and so caps efficiency at 200 ms)."""

    def __init__(self, latency_ms: float, kind: str = "fast") -> None:
        if kind == "fast":
            script = str(Path(__file__).with_name("mock_server.py"))
            argv = [script, "--latency-ms", str(latency_ms), "--reply", WRONG]
        elif kind == "threaded":
            argv = [__file__, "serve", "--latency-ms", str(latency_ms)]
        else:
            raise SystemExit(f"unknown --server {kind!r}: fast or threaded")
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the mock server did not start")
        self.requests = 0  # calls served, known once the server has stopped

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.requests = int(self.proc.stdout.readline().strip() or 0)
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            self.proc.kill()


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """``--server``: which mock server (:class:`MockServer`) a benchmark runs against."""
    parser.add_argument(
        "--server",
        default="fast",
        choices=("fast", "threaded"),
        help="the mock server: fast (asyncio, mock_server.py) or threaded (the test suite's, "
        "the server of the figures before 2026-11-30 14:00 UTC)",
    )


# ------------------------------------------------------------------------------------ client


def workload_tasks(workload: str, episodes: int, data_dir: Path | None) -> tuple[list[Any], int]:
    """``(tasks, epochs)`` with ``len(tasks) * epochs`` close to ``episodes`` (at least it)."""
    from mulligan.tasks import load_tasks

    if workload == "code":
        pool = load_tasks("humaneval")
    elif workload == "reasoning":
        pool = load_tasks("mint", list(REASONING), data_dir=data_dir)
    elif workload == "mint":
        pool = load_tasks("mint", None, data_dir=data_dir)
    else:
        raise SystemExit(f"unknown workload {workload!r}: reasoning, code or mint")
    epochs = max(1, math.ceil(episodes / len(pool)))
    count = math.ceil(episodes / epochs)
    # Spread the sample over suites: every k-th task rather than the first ones.
    step = len(pool) / count
    return [pool[int(i * step)] for i in range(count)], epochs


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def run_client(args: argparse.Namespace) -> dict[str, Any]:
    """One ``execute_run`` against ``args.base_url``; returns the measurements."""
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run
    from mulligan.models.openai_compat import OpenAICompatModel

    tasks, epochs = workload_tasks(args.workload, args.episodes, args.data_dir)
    config = RunConfig.model_validate(
        {
            "model": f"openai-compatible/{MODEL_ID}",
            "turns": args.turns,
            "proposals": args.turns,
            "feedback": "binary",
            "epochs": epochs,
            "concurrency": args.concurrency,
            "sandbox_pool": args.sandbox_pool,
            "cache": "off",
            "out": args.out,
            "isolation": args.isolation,
            "allow_weak_isolation": args.isolation != "auto",
        }
    )
    model = OpenAICompatModel(
        MODEL_ID, base_urls=args.base_url, max_concurrency=args.concurrency, timeout_s=600
    )
    cpu0, child0, wall0 = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN), time.time()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
        profiler.enable()
    outcome = await execute_run(config, model=model, tasks=tasks)
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall = time.time() - wall0
    cpu = cpu_s(resource.RUSAGE_SELF) - cpu0
    children = cpu_s(resource.RUSAGE_CHILDREN) - child0
    turns = model.retry_stats.succeeded
    return {
        "episodes": outcome.finished + outcome.failed,
        "failed": outcome.failed,
        "turns": turns,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "children_cpu_s": round(children, 2),
        "cpu_ms_per_turn": round(1000 * cpu / max(turns, 1), 3),
        "cpu_ms_per_turn_with_children": round(1000 * (cpu + children) / max(turns, 1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def client_main(args: argparse.Namespace) -> None:
    from mulligan.engine.eventloop import loop_name, run

    # the loop ``mulligan run`` uses (uvloop where installed; MULLIGAN_EVENT_LOOP=asyncio: not)
    result = {**run(run_client(args)), "event_loop": loop_name()}
    print("RESULT " + json.dumps(result), flush=True)


# -------------------------------------------------------------------------------------- grid


def run_cell(
    workload: str, episodes: int, concurrency: int, latency_ms: float, args: argparse.Namespace
) -> dict[str, Any]:
    """One grid cell: a fresh server and a fresh client process."""
    out = args.out / f"{workload}-n{episodes}-c{concurrency}-l{latency_ms:g}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    with MockServer(latency_ms, args.server) as server:
        cmd = [
            sys.executable, __file__, "client", "--base-url", server.base_url,
            "--workload", workload, "--episodes", str(episodes),
            "--concurrency", str(concurrency), "--turns", str(args.turns),
            "--out", str(out), "--sandbox-pool", str(args.sandbox_pool),
            "--isolation", args.isolation,
        ]  # fmt: skip
        if args.data_dir:
            cmd += ["--data-dir", str(args.data_dir)]
        if args.profile:
            cmd += ["--profile", str(out) + ".prof"]
        load_before = os.getloadavg()[0]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"client failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    ideal = result["turns"] * latency_ms / 1000.0 / concurrency
    result.update(
        workload=workload,
        requested_episodes=episodes,
        concurrency=concurrency,
        latency_ms=latency_ms,
        turns_per_s=round(result["turns"] / max(result["wall_s"], 1e-9), 1),
        ideal_wall_s=round(ideal, 2),
        efficiency=round(ideal / result["wall_s"], 3) if latency_ms > 0 else None,
        load_avg_1m=(round(load_before, 2), round(os.getloadavg()[0], 2)),
    )
    return result


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


COLUMNS = (
    ("workload", "workload"),
    ("episodes", "episodes"),
    ("concurrency", "concurrency"),
    ("latency_ms", "latency ms"),
    ("turns", "turns"),
    ("turns_per_s", "turns/s"),
    ("cpu_ms_per_turn", "client CPU ms/turn"),
    ("cpu_ms_per_turn_with_children", "with children ms/turn"),
    ("peak_rss_mb", "peak RSS MB"),
    ("wall_s", "wall s"),
    ("efficiency", "efficiency"),
    ("load_avg_1m", "load avg (before, after)"),
)


def markdown(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...] = COLUMNS) -> str:
    """Rows as a markdown table (also used by the other benchmarks)."""
    head = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            if isinstance(value, float) and key == "efficiency":
                cells.append(f"{100 * value:.0f}%")
            elif isinstance(value, (list, tuple)):
                cells.append(", ".join(str(v) for v in value))
            else:
                cells.append("-" if value is None else str(value))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body]) + "\n"


def write_results(out: Path, name: str, rows: list[dict[str, Any]], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / f"{name}.md").write_text(table)
    print(table)


def grid_main(args: argparse.Namespace) -> None:
    rows = []
    for workload in args.workloads.split(","):
        for episodes in _ints(args.episodes):
            for concurrency in _ints(args.concurrency):
                for latency in [float(x) for x in args.latency_ms.split(",")]:
                    row = run_cell(workload, episodes, concurrency, latency, args)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    write_results(args.out, "harness_overhead", rows, markdown(rows))


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="grid", choices=("grid", "serve", "client"))
    parser.add_argument("--episodes", default="1000,10000")
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--latency-ms", default="0,200")
    parser.add_argument("--workloads", default="reasoning,code")
    parser.add_argument("--workload", default="reasoning")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--sandbox-pool", type=int, default=2)
    parser.add_argument("--isolation", default="auto")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mint")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-overhead"))
    parser.add_argument("--base-url", default="")
    add_server_option(parser)
    parser.add_argument("--profile", default="", help="write a cProfile of each client here")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(float(args.latency_ms.split(",")[0]))
    elif args.mode == "client":
        args.episodes = int(args.episodes)
        args.concurrency = int(args.concurrency)
        client_main(args)
    else:
        grid_main(args)


if __name__ == "__main__":
    main()
