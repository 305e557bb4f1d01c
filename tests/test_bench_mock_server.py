"""The benchmarks' fast mock server (``benchmarks/mock_server.py``) speaks enough of the OpenAI
protocol for mulligan's client: the preflight's model list, replies on one keep-alive
connection, a 404 elsewhere, and the count of calls it served. Its speed is measured in
benchmarks/, never here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mulligan.events import Message
from mulligan.models import GenerateParams
from mulligan.models.http import Endpoint
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.preflight import check_endpoint

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mock_server.py"


async def test_the_client_runs_against_the_fast_mock_server() -> None:
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--latency-ms", "5", "--reply", "<solution> 7 </solution>"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        base_url = server.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        model = OpenAICompatModel("test-model", base_urls=base_url, max_concurrency=4)
        try:
            await check_endpoint(model)  # GET /v1/models lists test-model
            replies = [
                await model.generate([Message(role="user", content=str(n))], GenerateParams())
                for n in range(3)
            ]
        finally:
            await model.aclose()
        assert [r.text for r in replies] == ["<solution> 7 </solution>"] * 3
        endpoint = Endpoint(base_url, api_key="EMPTY", timeout_s=5, connections=1, shown="mock")
        try:
            missing = await endpoint.request("GET", "nowhere")
        finally:
            await endpoint.aclose()
        assert missing.status == 404
        server.stdin.close()
        assert server.stdout.readline().strip() == "3"  # the calls it answered
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:  # an assertion above failed: do not leave it running
            server.kill()
