"""Executors: where a run's episodes run. The queue, the store and the stop rules stay in
:mod:`mulligan.engine.runner`; an executor only runs one (task, epoch) and hands the episode
back. :mod:`~mulligan.engine.executors.local` runs it in this process,
:mod:`~mulligan.engine.executors.ray` on a Ray cluster (imported only when chosen).
"""

from mulligan.engine.executors.base import EpisodeExecutor, make_executor
from mulligan.engine.executors.local import LocalExecutor

__all__ = ["EpisodeExecutor", "LocalExecutor", "make_executor"]
