"""Exit codes that tell the truth: --fail-on-error, the endpoint check before a run, stopping
after repeated identical failures, and what `mulligan run` prints and exits with."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig, build_config
from mulligan.engine import RunOutcome, execute_run
from mulligan.engine.runner import STOP_AFTER_REPEATS
from mulligan.models import CachedModel
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.preflight import EndpointError, backend_of, check_endpoint
from mulligan.models.retry import RetryPolicy
from mulligan.models.roles import RoleModel
from mulligan.models.scripted import ScriptedModel
from mulligan.store import RunStore
from openai_server import OpenAIServer, Reply, Request, Response, Status

runner = CliRunner()
ONE_TRY = RetryPolicy(max_attempts=1, initial_backoff_s=0.01, max_backoff_s=0.01)


def closed_url() -> str:
    """A base URL on 127.0.0.1 whose port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _outcome(failed: int, total: int) -> RunOutcome:
    return RunOutcome("r", Path("o"), total, finished=total - failed, failed=failed)


# ----------------------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("failed", "total", "threshold", "code"),
    [
        (0, 21, 1, 0),
        (1, 21, 1, 1),  # the default: any failed episode fails the run
        (21, 21, 1, 1),
        (2, 21, 3, 0),  # a count: 3 or more fail it
        (3, 21, 3, 1),
        (2, 20, 0.1, 1),  # a fraction: 10% of 20 is 2
        (1, 20, 0.1, 0),
    ],
)
def test_fail_on_error_is_a_count_or_a_fraction(
    failed: int, total: int, threshold: float, code: int
) -> None:
    got, line = _outcome(failed, total).verdict(threshold)
    assert got == code
    assert line.startswith(f"{failed} of {total} episodes failed")
    if failed:
        assert f"--fail-on-error {threshold:g}" in line


def test_a_stopped_run_exits_2_with_its_cause() -> None:
    outcome = _outcome(3, 10)
    outcome.stopped, outcome.stopped_after, outcome.not_run = "BackendError: refused", 3, 7
    code, line = outcome.verdict(0.9)
    assert code == 2
    assert "stopped after 3 episodes in a row" in line
    assert "7 not run" in line and "BackendError: refused" in line


def test_no_fail_on_error_never_fails_the_run_for_failed_episodes(tmp_path: Path) -> None:
    code, line = _outcome(21, 21).verdict(False)
    assert (code, line) == (0, "21 of 21 episodes failed (--no-fail-on-error)")
    assert _outcome(0, 21).verdict(False) == (0, "0 of 21 episodes failed")
    stopped = _outcome(3, 10)
    stopped.stopped, stopped.stopped_after, stopped.not_run = "BackendError: refused", 3, 7
    assert stopped.verdict(False)[0] == 2  # it did not run what it was asked to
    # false in a file is never; true is any (a count of 1), as Inspect reads its option
    assert RunConfig(fail_on_error=False).execution.fail_on_error is False
    assert RunConfig(fail_on_error=True).execution.fail_on_error == 1
    config = tmp_path / "run.yaml"
    config.write_text("fail_on_error: false\n")
    assert build_config(config, {}).execution.fail_on_error is False
    assert build_config(config, {"fail_on_error": 2.0}).execution.fail_on_error == 2  # flag wins
    code, output = _cli(
        "run", "--model", "scripted/reference", "--fail-on-error", "2", "--no-fail-on-error",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "contradict" in output and "Traceback" not in output


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.25])
def test_fail_on_error_refuses_what_is_neither_count_nor_fraction(bad: float) -> None:
    with pytest.raises(ValueError, match="count of failed episodes"):
        RunConfig(fail_on_error=bad)
    assert RunConfig(fail_on_error=2.0).execution.fail_on_error == 2


# ----------------------------------------------------------------------------- the endpoint check


def _model(*urls: str, **kwargs: object) -> OpenAICompatModel:
    return OpenAICompatModel("test-model", base_urls=list(urls), retry=ONE_TRY, **kwargs)  # type: ignore[arg-type]


async def test_a_closed_port_is_named_with_the_fix_before_anything_runs() -> None:
    url = closed_url()
    model = _model(url)
    started = time.perf_counter()
    with pytest.raises(EndpointError) as caught:
        await check_endpoint(RoleModel(CachedModel(model), "judge"))
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert url in message and "--base-url" in message and "MULLIGAN_BASE_URL" in message
    await model.aclose()


async def test_a_live_server_passes_even_without_a_models_route() -> None:
    with OpenAIServer() as server:
        model = _model(server.base_url)
        await check_endpoint(model)
        server.serve_models = False  # answers 404: still up
        await check_endpoint(model)
        await model.aclose()
    assert server.models_asked == 2 and server.requests == []


async def test_a_refused_key_names_the_variable() -> None:
    with OpenAIServer(api_key="right") as server:
        model = _model(server.base_url, api_key="wrong")
        with pytest.raises(EndpointError, match=r"HTTP 401.*\$MULLIGAN_API_KEY"):
            await check_endpoint(model)
        await model.aclose()


async def test_one_dead_replica_of_a_fleet_is_no_error_but_all_dead_are() -> None:
    dead_a, dead_b = closed_url(), closed_url()
    with OpenAIServer() as alive:
        fleet = _model(dead_a, alive.base_url)
        await check_endpoint(fleet)
        await fleet.aclose()
    gone = _model(dead_a, dead_b)
    with pytest.raises(EndpointError) as caught:
        await check_endpoint(gone)
    assert dead_a in str(caught.value) and dead_b in str(caught.value)
    await gone.aclose()


def test_backend_of_sees_through_the_wrappers() -> None:
    inner = ScriptedModel("reference")
    assert backend_of(RoleModel(CachedModel(inner), "feedback")) is inner
    assert backend_of(inner) is inner


async def test_a_run_against_a_dead_server_stops_before_touching_its_directory(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    cfg = RunConfig(
        suite="humaneval",
        limit=3,
        model="openai-compatible/test-model",
        base_url=closed_url(),
        out=out,
    )
    started = time.perf_counter()
    with pytest.raises(EndpointError, match="cannot connect"):
        await execute_run(cfg)
    assert time.perf_counter() - started < 10
    assert not out.exists()


# ----------------------------------------------------------------------------- repeated failures


async def test_the_same_error_on_episodes_in_a_row_stops_the_run(
    tmp_path: Path, sandboxes: object
) -> None:
    # The server is up (its /models answers) but does not serve the model asked for: every
    # call fails the same way, at once. The run stops after STOP_AFTER_REPEATS episodes.
    cfg = RunConfig(suite="humaneval", limit=10, turns=2, concurrency=1, out=tmp_path / "r")
    with OpenAIServer(model_ids=("another-model",)) as server:
        model = _model(server.base_url)
        outcome = await execute_run(cfg, model=model, sandboxes=sandboxes)  # type: ignore[arg-type]
        await model.aclose()
    assert outcome.failed == STOP_AFTER_REPEATS and outcome.not_run == 10 - STOP_AFTER_REPEATS
    assert outcome.stopped is not None and "404" in outcome.stopped
    code, line = outcome.verdict(1)
    assert code == 2 and outcome.stopped in line
    with RunStore.open_existing(tmp_path / "r") as store:  # the finished ones are kept
        assert store.episode_count() == STOP_AFTER_REPEATS
    # Episodes in flight when it stops finish and are stored; none is lost or run twice.
    wide = cfg.with_options(concurrency=4, out=tmp_path / "wide")
    with OpenAIServer(model_ids=("another-model",)) as server:
        model = _model(server.base_url)
        outcome = await execute_run(wide, model=model, sandboxes=sandboxes)  # type: ignore[arg-type]
        await model.aclose()
    assert outcome.stopped is not None and outcome.stopped_after >= STOP_AFTER_REPEATS
    assert outcome.failed + outcome.not_run == 10 and outcome.not_run > 0
    with RunStore.open_existing(tmp_path / "wide") as store:
        assert store.episode_count() == outcome.failed


async def test_different_errors_or_a_success_in_between_do_not_stop_a_run(
    tmp_path: Path, sandboxes: object
) -> None:
    def responder(request: Request) -> Response:
        # Every third call succeeds (a wrong answer); the others fail, each with its own text.
        if request.seq % 3 == 0:
            return Reply("<solution> nope </solution>")
        return Status(400, f"bad request number {request.seq}")

    cfg = RunConfig(suite="humaneval", limit=8, turns=1, concurrency=1, out=tmp_path / "r")
    with OpenAIServer(responder) as server:
        model = _model(server.base_url)
        outcome = await execute_run(cfg, model=model, sandboxes=sandboxes)  # type: ignore[arg-type]
        await model.aclose()
    assert outcome.stopped is None and outcome.not_run == 0
    assert outcome.finished + outcome.failed == 8 and outcome.failed >= 4
    assert outcome.verdict(1)[0] == 1
    assert outcome.verdict(0.99)[0] == 0


# ----------------------------------------------------------------------------- the command


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_run_exits_2_naming_a_dead_server_and_the_fix(tmp_path: Path) -> None:
    url = closed_url()
    code, output = _cli(
        "run", "--suite", "humaneval", "--limit", "2", "--model", "openai-compatible/m",
        "--base-url", url, "--out", str(tmp_path / "r"), "--no-progress",
    )  # fmt: skip
    assert code == 2, output
    assert url in output and "--base-url" in output and "Traceback" not in output


def test_run_exits_1_when_episodes_failed_and_says_how_many(tmp_path: Path) -> None:
    def responder(request: Request) -> Response:
        return Status(400, f"refused {request.seq}")  # a different error each time: no stop

    with OpenAIServer(responder) as server:
        args = [
            "run", "--suite", "humaneval", "--limit", "4", "--turns", "1",
            "--model", "openai-compatible/test-model", "--base-url", server.base_url,
            "--concurrency", "1", "--no-progress",
        ]  # fmt: skip
        code, output = _cli(*args, "--out", str(tmp_path / "a"))
        assert code == 1, output
        assert "4 of 4 episodes failed; --fail-on-error 1: any failed episode fails the run" in (
            output.replace("\n", " ")
        )
        code, output = _cli(*args, "--out", str(tmp_path / "b"), "--fail-on-error", "5")
        assert code == 0, output
        assert "4 of 4 episodes failed, tolerated (--fail-on-error 5: 5 or more" in output
        code, output = _cli(*args, "--out", str(tmp_path / "c"), "--fail-on-error", "0")
        assert code == 2 and "fail_on_error" in output
        code, output = _cli(*args, "--out", str(tmp_path / "d"), "--no-fail-on-error")
        assert code == 0, output
        assert "4 of 4 episodes failed (--no-fail-on-error)" in output.replace("\n", " ")


def test_a_stopped_run_prints_the_cause_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(model_ids=("another-model",)) as server:
        argv = [
            "mulligan", "run", "--suite", "humaneval", "--limit", "6", "--turns", "1",
            "--model", "openai-compatible/test-model", "--base-url", server.base_url,
            "--concurrency", "1", "--no-progress", "--out", str(tmp_path / "r"),
        ]  # fmt: skip
        monkeypatch.setattr("sys.argv", argv)
        code, output = _cli(*argv[1:])
    assert code == 2, output
    assert "stopped after 3 episodes in a row failed with the same error, 3 not run" in output
    assert "404" in output and "--resume" in output


def test_config_error_when_resuming_without_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _cli("run", "--model", "scripted/reference", "--resume", "--no-progress")
    assert code == 2 and "--resume continues the run in --out DIR" in output
    with pytest.raises(ConfigError):
        from mulligan.engine.rundir import with_run_dir

        with_run_dir(RunConfig(), resume=True)
