"""Every public error of mulligan is a ``MulliganError``, so the CLI catches user errors once.

The test walks the package, imports every module and collects the exception classes defined
there; each must subclass :class:`~mulligan.errors.MulliganError` unless it is listed in
``INTERNAL_ERRORS`` with the reason it is not a user's mistake.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from typer.testing import CliRunner

import mulligan
from mulligan.cli import app
from mulligan.errors import MulliganError

# Errors that are not the user's to fix, by "module.Class", each with why it stays outside.
INTERNAL_ERRORS: dict[str, str] = {
    "mulligan.models.base.ModelError": "a model call failed mid-run (network, server, model); "
    "the runner records it on the episode. Its user-facing subclasses (BackendConfigError, "
    "WeightsError, models.replay.ReplayError) are MulliganErrors",
    "mulligan.models.base.ContextWindowExceeded": "the conversation outgrew the context window: "
    "ends the episode, a result rather than a mistake",
    "mulligan.models.retry.BackendError": "a model call's final failure after retries (HTTP, "
    "timeout); recorded on the episode",
    "mulligan.models.retry.TransientFault": "the retry loop's private signal, never escapes it",
    "mulligan.models.openai_compat.ContextLengthError": "the server's context-window refusal, a "
    "BackendError and ContextWindowExceeded",
    "mulligan.feedback.unit_tests.MissingCodeRunner": "programming error: the tests provider was "
    "called without a code runner",
    "mulligan.tasks.checkers.safe_eval.ExpressionError": "a checker's signal that a model's "
    "answer is not a safe expression; always caught by the checkers",
    "mulligan.sandbox.repl._ProtocolError": "the sandbox worker's pipe protocol, internal",
    "mulligan.sandbox._worker.OutputLimit": "raised inside the sandbox worker process, which "
    "imports nothing from mulligan",
    "mulligan.sandbox._worker.ToolError": "raised inside the sandbox worker to the model's cell "
    "when a tool call fails; the worker imports nothing from mulligan",
    "mulligan.tasks.checkers._calls_child.Unencodable": "raised inside the checked program's "
    "child (a value that is not plain data); reported as unserialisable, never escapes",
    "mulligan.tasks.checkers._calls_child._MgTimeout": "the per-call timer inside the checked "
    "program's child",
    "mulligan.tasks.checkers.testplan.NotLiteral": "test planning's signal that an expected "
    "side is not a literal (it is compared with the gold solution's value instead)",
    "mulligan.tasks.environment.EnvironmentFailure": "an environment (a game process) broke "
    "mid-episode; the runner records the episode as failed",
    "mulligan.tasks.environment.ToolCallError": "a model's bad tool call; its cell sees it as "
    "ToolError, an observation rather than a user's mistake",
    "mulligan.models.http.HTTPStatusFault": "an error status inside one request; the "
    "backend turns it into a retried fault or a BackendError at once",
    "mulligan.models.http_conn.HTTPConnectionError": "a request that failed in transport (one "
    "of TRANSPORT_ERRORS); the backend turns it into a retried fault, then a BackendError",
    "mulligan.models.http_conn._Stale": "the lean client's signal that a reused connection had "
    "been closed by the server; retried once on a fresh one, never escapes the pool",
    "mulligan.tasks.checkers.workers.CallTimedOut": "a checker worker's overrun; the checker "
    "turns it into a 'wrong: evaluation timed out' verdict",
    "mulligan.tasks.checkers.workers.WorkerDied": "a checker worker's crash; retried once, then "
    "a verdict, never shown to a user as an error",
}


def _error_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a mulligan module, by ``module.Class``."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(mulligan.__path__, "mulligan."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_public_error_is_a_mulligan_error() -> None:
    classes = _error_classes()
    outside = {
        name
        for name, cls in classes.items()
        if not issubclass(cls, MulliganError) and name not in INTERNAL_ERRORS
    }
    assert not outside, f"subclass MulliganError or list in INTERNAL_ERRORS: {sorted(outside)}"
    # The list names only classes that exist and are indeed outside the base.
    stale = {
        n for n in INTERNAL_ERRORS if n not in classes or issubclass(classes[n], MulliganError)
    }
    assert not stale, f"remove from INTERNAL_ERRORS: {sorted(stale)}"


def test_known_user_errors_keep_their_other_bases() -> None:
    from mulligan.config import ConfigError
    from mulligan.interop import MintImportError
    from mulligan.models import UnknownModelError
    from mulligan.models.base import ModelError
    from mulligan.models.weights import WeightsMissing
    from mulligan.tasks import TaskDataError
    from mulligan.tasks.errors import DataChecksumError

    for cls in (ConfigError, TaskDataError, DataChecksumError, WeightsMissing):
        assert issubclass(cls, MulliganError)
    assert issubclass(MintImportError, ValueError) and issubclass(UnknownModelError, ValueError)
    assert issubclass(WeightsMissing, ModelError)


def test_cli_reports_a_mulligan_error_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert (
        result.exit_code == 2
        and "error:" in result.output
        and "no mulligan.sqlite" in result.output
    )
    assert "Traceback" not in result.output
