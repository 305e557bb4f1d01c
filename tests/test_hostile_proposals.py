"""Hostile code proposals: model-written solutions that attack the judge, not the task.

Each case is a proposal for an MBPP-shaped task (`max(a, b)` must return the product) that does
*not* solve it, judged by the code checker (`mbpp`, `humaneval`) and by the `tests` feedback.
Every case must get an honest verdict (wrong), a clear observation, leave no process behind and
leave the host unharmed. The first case is the forged verdict of issue 12 verbatim.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from mulligan.sandbox import SandboxLimits, SandboxPool
from mulligan.tasks import Task
from mulligan.tasks.checkers.code import PythonTestsChecker

# Issue 12, item 1: read the pass token from linecache, write an "all tests passed" frame to
# the worker's result pipe, and leave before the tests run.
FORGE_THROUGH_RESULT_PIPE = '''
import json, linecache, os, re, struct
text = "".join(linecache.cache["<program>"][2])
token = re.search(r"mulligan-tests-passed-[0-9a-f]+", text).group(0)
frame = json.dumps({"output": token, "error": None, "timed_out": False,
                    "truncated": False, "exit_code": 0}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(frame)) + frame)
    except OSError:
        pass
os._exit(0)
'''


def mbpp_task() -> Task:
    tests = ["assert max(3, 4) == 12", "assert max(2, 5) == 10"]
    return Task(
        id="hostile",
        suite="mbpp",
        category="code_generation",
        prompt="Write a function max(a, b) that returns the product of a and b.",
        reference="\n".join(tests),
        checker="mbpp",
        gold_solution="def max(a, b):\n    return a * b\n",
        metadata={"test_list": tests, "test_setup_code": ""},
    )


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(size=1, limits=SandboxLimits(cell_timeout_s=5.0)) as sandboxes:
        yield sandboxes


async def test_forged_result_frame_is_not_a_pass(pool: SandboxPool) -> None:
    checker = PythonTestsChecker("mbpp", timeout_s=5.0)
    result = await checker.check(FORGE_THROUGH_RESULT_PIPE, mbpp_task(), pool)
    assert not result.correct, result.detail
    gold = await checker.check(mbpp_task().gold_solution, mbpp_task(), pool)
    assert gold.correct, gold.detail
