"""The same multi-turn workload run by mulligan, by a bare asyncio loop (the floor) and by
Inspect AI, against one mock server: client CPU per turn and the ratios between them.

    .venv/bin/python benchmarks/side_by_side.py --data-dir ../shared/data/mint \\
        [--workload mint] [--episodes 452] [--turns 5] [--concurrency 256] [--latency-ms 0] \\
        [--tools mulligan,floor,inspect] [--out runs/bench-side]

The workload: ``--episodes`` tasks (``harness_overhead.workload_tasks``; the default is all 452
MINT tasks), ``--turns`` turns each, MINT's binary feedback ("Your answer is wrong.") after each
wrong proposal, against the mock server of ``harness_overhead.py`` that answers every call wrong
after ``--latency-ms``. Each tool runs as its own process with everything it normally does:

- **mulligan**: ``harness_overhead.py client``: ``engine.execute_run`` on exactly these tasks
  (what ``mulligan run`` does, without the progress bar), response cache off, code proposals
  checked in the sandbox, everything stored; its first message is MINT's prompt with an
  in-context example, longer than the other tools' (which send the task text alone);
- **floor**: ``side_by_side.py floor``: asyncio + one ``aiohttp.ClientSession``, a semaphore for
  the concurrency, the same messages, the answer compared as a string, nothing stored: what any
  harness must at least spend on the HTTP calls;
- **inspect**: ``inspect eval`` of a task written here (a solver that generates, compares the
  answer and appends the feedback, ``--turns`` times), Inspect AI installed by this script into
  a virtual environment of its own (``--inspect-venv``, default ``<out>/inspect-venv``; never a
  dependency of mulligan). If it cannot be installed, the row says why.

CPU is the process's user + system time including its children (``os.wait4``), start-up
included; because start-up differs a lot between tools, each tool also runs ``--small``
episodes and the table gives the *marginal* CPU per turn, ``(cpu(N) - cpu(small)) / (turns(N) -
turns(small))``, which is what a large run pays per turn. Writes ``side_by_side.json`` and
``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness_overhead import (  # a sibling script, importable once its folder is on the path
    MODEL_ID,
    ROOT,
    MockServer,
    _env,
    add_server_option,
    markdown,
    workload_tasks,
    write_results,
)

FEEDBACK = "Your answer is wrong."
SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL)
INSPECT_VERSION = "0.3.285"

INSPECT_TASK = '''
"""Written by mulligan's benchmarks/side_by_side.py: MINT-style turns with binary feedback."""
import os
import re

from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.model import ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, Score, accuracy, scorer
from inspect_ai.solver import solver

TURNS = int(os.environ["SBS_TURNS"])
SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL)


@solver
def second_chances():
    async def solve(state, generate):
        for turn in range(TURNS):
            state = await generate(state)
            found = SOLUTION.search(state.output.completion)
            if found and found.group(1).strip() == state.target.text:
                state.metadata["solved"] = True
                break
            if turn < TURNS - 1:
                state.messages.append(ChatMessageUser(content="Your answer is wrong."))
        return state

    return solve


@scorer(metrics=[accuracy()])
def solved():
    async def score(state, target):
        return Score(value=CORRECT if state.metadata.get("solved") else INCORRECT)

    return score


@task
def side_by_side():
    return Task(
        dataset=json_dataset(os.environ["SBS_DATASET"]), solver=second_chances(), scorer=solved()
    )
'''


# ------------------------------------------------------------------------------------- floor


async def floor(base_url: str, dataset: Path, turns: int, concurrency: int) -> None:
    """The bare loop: the workload's HTTP calls and string comparisons, nothing else (aiohttp,
    the cheapest client measured here; httpx's pool costs several ms per request at 256)."""
    import aiohttp

    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    gate = asyncio.Semaphore(concurrency)
    url = base_url + "/chat/completions"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def episode(row: dict[str, Any]) -> bool:
            messages = [{"role": "user", "content": row["input"]}]
            async with gate:
                for turn in range(turns):
                    body = {"model": MODEL_ID, "messages": messages, "temperature": 0.0}
                    async with session.post(url, data=json.dumps(body)) as reply:
                        text = json.loads(await reply.read())["choices"][0]["message"]["content"]
                    found = SOLUTION.search(text)
                    if found and found.group(1).strip() == row["target"]:
                        return True
                    messages.append({"role": "assistant", "content": text})
                    if turn < turns - 1:
                        messages.append({"role": "user", "content": FEEDBACK})
            return False

        await asyncio.gather(*(episode(row) for row in rows))


# ------------------------------------------------------------------------------------- tools


def write_dataset(args: argparse.Namespace, episodes: int, path: Path) -> int:
    """The workload's tasks as Inspect's JSONL (``id``, ``input``, ``target``), one per episode."""
    tasks, epochs = workload_tasks(args.workload, episodes, args.data_dir)
    rows = [
        {"id": f"{t.suite}/{t.id}/{e}", "input": t.prompt, "target": t.reference}
        for e in range(epochs)
        for t in tasks
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def tool_command(
    tool: str, args: argparse.Namespace, base_url: str, episodes: int, dataset: Path, out: Path
) -> list[str]:
    if tool == "floor":
        return [
            sys.executable, str(Path(__file__).resolve()), "floor", "--base-url", base_url, "--dataset", str(dataset),
            "--turns", str(args.turns), "--concurrency", str(args.concurrency),
        ]  # fmt: skip
    if tool == "mulligan":  # execute_run on exactly the workload's tasks (harness_overhead)
        return [
            sys.executable, str(Path(__file__).resolve().parent / "harness_overhead.py"), "client",
            "--base-url", base_url, "--workload", args.workload, "--episodes", str(episodes),
            "--concurrency", str(args.concurrency), "--turns", str(args.turns),
            "--out", str(out), "--data-dir", str(args.data_dir),
        ]  # fmt: skip
    return [
        str(args.inspect_venv / "bin" / "inspect"), "eval", "inspect_task.py",  # cwd: --out
        "--model", f"openai/{MODEL_ID}", "--model-base-url", base_url,
        "-M", "responses_api=false",  # chat completions, as the others (and the mock) speak
        "--max-connections", str(args.concurrency), "--max-samples", str(args.concurrency),
        "--log-dir", str(out), "--no-fail-on-error", "--display", "none",
    ]  # fmt: skip


def run_tool(tool: str, episodes: int, args: argparse.Namespace) -> dict[str, Any]:
    """One tool on ``episodes`` episodes: a fresh mock server, the tool as a child process."""
    out = args.out / f"{tool}-n{episodes}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    dataset = args.out / f"dataset-n{episodes}.jsonl"
    size = write_dataset(args, episodes, dataset)
    env = _env() | {
        "OPENAI_API_KEY": "EMPTY",
        "SBS_DATASET": str(dataset),
        "SBS_TURNS": str(args.turns),
        "INSPECT_LOG_LEVEL": "warning",
    }
    with MockServer(args.latency_ms, args.server) as server:
        cmd = tool_command(tool, args, server.base_url, episodes, dataset, out)
        started = time.time()
        log = args.out / f"{tool}-n{episodes}.log"
        with log.open("wb") as sink:  # a file, not a pipe: wait4 must not wait on a full pipe
            proc = subprocess.Popen(
                cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=args.out
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {log.read_text()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "tool": tool,
        "episodes": size,
        "turns": server.requests,
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_turn": round(1000 * cpu / max(server.requests, 1), 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def ensure_inspect(args: argparse.Namespace) -> str | None:
    """Installs Inspect AI into its own virtual environment; None when ready, else why not."""
    venv = args.inspect_venv
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inspect_task.py").write_text(INSPECT_TASK)
    if (venv / "bin" / "inspect").exists():
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                f"inspect-ai=={INSPECT_VERSION}",
                "openai",
            ],
            check=True,
            timeout=args.install_timeout,
        )
    except (subprocess.SubprocessError, OSError) as e:
        return f"Inspect AI could not be installed into {venv}: {e}"
    return None


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for tool in args.tools.split(","):
        if tool == "inspect" and (why := ensure_inspect(args)):
            rows.append({"tool": tool, "note": why})
            continue
        small = run_tool(tool, args.small, args)
        large = run_tool(tool, args.episodes, args)
        extra_turns = large["turns"] - small["turns"]
        marginal = (large["cpu_s"] - small["cpu_s"]) / max(extra_turns, 1)
        large["small_run_cpu_s"] = small["cpu_s"]
        large["marginal_cpu_ms_per_turn"] = round(1000 * marginal, 3)
        print(json.dumps(large), flush=True)
        rows.append(large)
    measured = {r["tool"]: r for r in rows if "marginal_cpu_ms_per_turn" in r}
    for row in measured.values():
        for other in ("floor", "mulligan"):
            if other in measured and other != row["tool"]:
                base = measured[other]["marginal_cpu_ms_per_turn"]
                ratio = row["marginal_cpu_ms_per_turn"] / base if base > 0 else None
                row[f"vs_{other}"] = None if ratio is None else round(ratio, 1)
    return rows


COLUMNS = (
    ("tool", "tool"),
    ("episodes", "episodes"),
    ("turns", "turns"),
    ("cpu_ms_per_turn", "CPU ms/turn (all)"),
    ("marginal_cpu_ms_per_turn", "marginal CPU ms/turn"),
    ("vs_floor", "x floor"),
    ("vs_mulligan", "x mulligan"),
    ("peak_rss_mb", "peak RSS MB"),
    ("wall_s", "wall s"),
    ("load_avg_1m", "load avg"),
    ("note", "note"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="compare", choices=("compare", "floor"))
    parser.add_argument("--workload", default="mint")
    parser.add_argument("--episodes", type=int, default=452)
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--tools", default="mulligan,floor,inspect")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mint")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-side"))
    parser.add_argument("--inspect-venv", type=Path, default=None)
    parser.add_argument("--install-timeout", type=float, default=900)
    parser.add_argument("--base-url", default="")
    add_server_option(parser)
    parser.add_argument("--dataset", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "floor":
        asyncio.run(floor(args.base_url, args.dataset, args.turns, args.concurrency))
        return
    args.out = args.out.resolve()
    args.data_dir = args.data_dir.resolve()
    args.inspect_venv = (args.inspect_venv or args.out / "inspect-venv").resolve()
    rows = compare(args)
    write_results(args.out, "side_by_side", rows, markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
