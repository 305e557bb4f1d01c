"""The run engine: concurrent episodes, failure isolation, streaming to the store, resume.

:mod:`~mulligan.engine.components` builds what a run's episodes share (tasks, checkers, a model
per role, the feedback chain, the judge, the sandboxes), :mod:`~mulligan.engine.rundir` checks
and describes the run directory, and :mod:`~mulligan.engine.runner` drains the queue.
"""

from mulligan.engine.components import RunComponents, build_components
from mulligan.engine.rundir import RunDir, RunExistsError, build_manifest, resume_conflicts
from mulligan.engine.runner import RunOutcome, execute_run

__all__ = [
    "RunComponents",
    "RunDir",
    "RunExistsError",
    "RunOutcome",
    "build_components",
    "build_manifest",
    "execute_run",
    "resume_conflicts",
]
