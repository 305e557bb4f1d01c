"""Tokens/s and turns/min of the embedded llama.cpp models.

    .venv/bin/python benchmarks/local_model.py [local/smollm2-135m ...] [--limit 4] \\
        [--turns 3] [--concurrency 1,2] [--out runs/bench-local]

Per model: load time, prefill and decode tokens/s (``local_speed.py``, the one home of those
figures, run as a child process), then real runs of the model on HumanEval (``--limit`` tasks,
``--turns`` turns, binary feedback, response cache off) at each ``--concurrency``: model calls
(turns) per minute and the mean latency of a call. With one llama.cpp context, a second episode
in flight evicts the first one's cached prefix, so concurrency 2 is expected to be slower per
turn unless the model keeps a prompt cache per episode slot (``-M prompt_cache_mb``, which
``--model-args`` passes here as JSON). Writes ``local_model.json`` and ``.md`` into ``--out``.
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
from harness_overhead import _env, markdown, write_results  # a sibling script


async def turns_per_minute(
    model: str, concurrency: int, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run
    from mulligan.events import ModelCallEvent
    from mulligan.store import RunStore

    config = RunConfig.model_validate(
        {
            "model": model,
            "model_args": json.loads(args.model_args),
            "suite": "humaneval",
            "limit": args.limit,
            "turns": args.turns,
            "proposals": args.turns,
            "feedback": "binary",
            "concurrency": concurrency,
            "cache": "off",
            "out": out,
        }
    )
    started = time.time()
    await execute_run(config)
    wall = time.time() - started
    with RunStore.open_existing(out) as store:
        calls = [
            e
            for episode in store.episodes()
            for e in episode.events
            if isinstance(e, ModelCallEvent)
        ]
    latency = sum(c.latency_s for c in calls) / max(len(calls), 1)
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    return {
        "model": model,
        "what": f"run, concurrency {concurrency}",
        "turns": len(calls),
        "turns_per_min": round(60 * len(calls) / wall, 1),
        "mean_call_s": round(latency, 2),
        "tokens_per_s": round(tokens / max(sum(c.latency_s for c in calls), 1e-9), 1),
        "wall_s": round(wall, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def speeds(model: str, args: argparse.Namespace) -> dict[str, Any]:
    script = Path(__file__).parent / "local_speed.py"
    cmd = [sys.executable, str(script), model, "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    # "load= 0.60s prefill= 159.5 tok/s ...": a value may follow its "=" after spaces.
    fields = dict(re.findall(r"(\w+)=\s*([\d.]+)", line))
    return {
        "model": model,
        "what": "local_speed.py",
        "load": fields.get("load"),
        "prefill_tok_s": fields.get("prefill"),
        "decode_tok_s": fields.get("decode"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


COLUMNS = (
    ("model", "model"),
    ("what", "measurement"),
    ("load", "load"),
    ("prefill_tok_s", "prefill tok/s"),
    ("decode_tok_s", "decode tok/s"),
    ("turns", "turns"),
    ("turns_per_min", "turns/min"),
    ("mean_call_s", "mean call s"),
    ("tokens_per_s", "tokens/s in calls"),
    ("wall_s", "wall s"),
    ("load_avg_1m", "load avg"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["local/smollm2-135m"])
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--concurrency", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-args", default="{}", help="JSON backend arguments (-M)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-local"))
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for model in args.models:
        if not args.skip_speed:
            rows.append(speeds(model, args))
            print(rows[-1], flush=True)
        for c in [int(x) for x in args.concurrency.split(",") if x]:
            out = args.out / f"{model.replace('/', '_')}-c{c}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            rows.append(asyncio.run(turns_per_minute(model, c, args, out)))
            print(rows[-1], flush=True)
    write_results(args.out, "local_model", rows, markdown(rows, COLUMNS))


if __name__ == "__main__":
    main()
