"""The run engine: concurrent episodes, failure isolation, streaming to the store, resume."""

from mulligan.engine.runner import RunExistsError, RunSummary, build_manifest, execute_run

__all__ = ["RunExistsError", "RunSummary", "build_manifest", "execute_run"]
