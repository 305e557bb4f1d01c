"""Reliability drills, small: kill -9 a run at random moments and resume it; a run against a
server that fails one call in five. ``benchmarks/reliability.py`` runs the same drills at full
size (20 kills, 1,000 episodes at concurrency 128)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "reliability.py"


@pytest.fixture(scope="module")
def drills() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability_drills", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path: Path, drills: ModuleType) -> None:
    report = drills.crash_drill(tmp_path, trials=4, limit=16, seed=1)
    assert report.kills == 4
    assert report.integrity_failures == []
    assert report.duplicates == 0 and report.partial_episodes == 0
    assert report.surviving_workers == 0
    assert report.differences == [] and report.equal_to_uninterrupted


@pytest.mark.slow
async def test_a_run_against_a_failing_server_loses_and_repeats_nothing(
    tmp_path: Path, drills: ModuleType
) -> None:
    report = await drills.fault_drill(tmp_path, episodes=150, concurrency=64, seed=3)
    assert sum(report.faults_served.values()) > 0.1 * report.calls
    assert report.stored == 150 and report.duplicates == 0
    assert report.finished + report.failed == 150
    assert report.solved == report.finished
    # Server-side faults map to one cause each; the network ones (a hang, a dropped connection)
    # can surface as either a timeout or a connection error on a loaded machine, and a slow
    # normal reply can time out too, so those are checked together and from below.
    counted, expected = report.retries_counted, report.retries_expected
    for cause in ("http_429", "http_500", "http_503", "malformed"):
        assert counted.get(cause, 0) == expected.get(cause, 0), cause
    network = ("timeout", "connection")
    assert sum(counted.get(c, 0) for c in network) >= sum(expected.get(c, 0) for c in network)
