"""The transport alone: client CPU per request of ``Endpoint.request``, lean client vs aiohttp.

    .venv/bin/python benchmarks/http_client.py [--requests 5000] [--concurrency 256] \\
        [--rounds 3] [--out runs/bench-http]

Starts ``harness_overhead.py``'s mock OpenAI-compatible server (in a process of its own, so its
CPU is never counted) and sends ``--requests`` chat-completion requests with a typical body at
``--concurrency`` in flight through one :class:`mulligan.models.http.Endpoint`, once over the
lean keep-alive client (``models/http_conn.py``, what ``mulligan run`` uses without a proxy) and
once over aiohttp (what it uses with a proxy, and used for every request before), alternating
for ``--rounds`` rounds on fresh event loops (uvloop where installed, as ``mulligan run``). The
client's CPU (``getrusage``, user + system) is measured around the requests alone; the load
average is recorded with each round, as the machine may be shared. Writes ``http_client.json``
and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_overhead import MockServer

from mulligan.engine.eventloop import loop_name, run
from mulligan.models.http import Endpoint, encode_json

BODY = encode_json(
    {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. " * 20},
            {"role": "user", "content": "What is 12 * 34? Think step by step. " * 10},
        ],
        "temperature": 0.0,
        "max_tokens": 512,
    }
)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def burst(base_url: str, transport: str, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` POSTs at ``concurrency`` in flight; CPU and wall time of the burst."""
    endpoint = Endpoint(
        base_url, api_key="sk-bench", timeout_s=600, connections=concurrency, shown="mock"
    )
    if transport == "aiohttp":
        # Decide for aiohttp as a proxy from the environment would (the pool of this loop is
        # "none"), so the same Endpoint.request is measured over the other transport.
        endpoint._pool, endpoint._pool_loop = None, asyncio.get_running_loop()
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            reply = await endpoint.request("POST", "chat/completions", BODY)
            if reply.status != 200:
                raise RuntimeError(f"HTTP {reply.status}: {reply.body[:200]!r}")

    await endpoint.request("GET", "models")  # connect outside the measurement
    cpu0, wall0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = cpu_s() - cpu0, time.perf_counter() - wall0
    await endpoint.aclose()
    return {
        "transport": transport,
        "requests": requests,
        "concurrency": concurrency,
        "cpu_ms_per_request": round(cpu * 1000 / requests, 4),
        "wall_s": round(wall, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="runs/bench-http")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with MockServer(0.0) as server:
        for round_ in range(1, args.rounds + 1):
            for transport in ("lean", "aiohttp"):
                row = run(burst(server.base_url, transport, args.requests, args.concurrency))
                row["round"], row["event_loop"] = round_, loop_name()
                rows.append(row)
                print(json.dumps(row), flush=True)
    lines = [
        "| round | transport | requests | concurrency | client CPU ms/request | wall s | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['round']} | {r['transport']} | {r['requests']} | {r['concurrency']} | "
            f"{r['cpu_ms_per_request']} | {r['wall_s']} | {r['load_avg_1m']} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "http_client.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "http_client.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
