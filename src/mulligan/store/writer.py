"""The run's episode writer: one thread that owns a SQLite connection and commits finished
episodes in batches.

Storing an episode costs a transaction (about 1 ms of CPU for a 5-turn episode, most of it the
commit and the event rows' index updates); on the event loop that is CPU the episodes in flight
do not get. The writer takes episodes from a bounded queue (:meth:`EpisodeWriter.submit`, from
any thread) and writes whatever has queued up, up to :data:`MAX_BATCH`, in one transaction
(:meth:`~mulligan.store.sqlite.RunStore.save_episodes`): group commit. A lone episode is written
at once (it waits for no company, so a slow run stores each episode as it ends); under load,
the episodes that finish while one batch commits go together into the next. ``linger_s`` (0 by
default) lets a batch wait that long for more.

What a caller may rely on: the future :meth:`submit` returns completes only once its episode is
committed (or fails with the error that prevented it), so a caller that counts an episode
when its future completes counts only what a killed process keeps; a kill loses at most the
batch being written and those queued behind it, whose futures never completed (the run's
``--resume`` runs them again). An error in a commit fails that batch's futures, and every later
:meth:`submit` and :meth:`close` raises it: nothing waits forever on a writer that is gone.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

from mulligan.events import Episode
from mulligan.store.sqlite import RunStore, StoreError

MAX_BATCH = 64
"""Most episodes in one transaction (beyond some tens the commit's share is already small)."""
QUEUE_SIZE = 1024
"""Most episodes waiting for the writer; :meth:`EpisodeWriter.submit` blocks beyond it."""

_Item = tuple[Episode, "Future[None]"]
_STOP = None


class EpisodeWriter:
    """Commits episodes to the store in ``run_dir`` from its own thread (module docstring).

    Use as a context manager, or :meth:`start` then :meth:`close` (which writes what is queued
    and joins the thread).

    Attributes:
        batches: transactions committed so far; episodes: episodes committed so far.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        max_batch: int = MAX_BATCH,
        queue_size: int = QUEUE_SIZE,
        linger_s: float = 0.0,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or linger_s < 0:
            raise ValueError("max_batch and queue_size must be >= 1, linger_s >= 0")
        self.run_dir = Path(run_dir)
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.batches = 0
        self.episodes = 0
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._error: StoreError | None = None

    # the caller's side ------------------------------------------------------------------------

    def start(self) -> EpisodeWriter:
        """Start the thread; it opens its own connection to the store (raises what opening
        raised, e.g. a StoreError for a damaged database)."""
        if self._thread is not None:
            raise RuntimeError("EpisodeWriter.start called twice")
        self._thread = threading.Thread(target=self._serve, name="mulligan-store-writer")
        self._thread.daemon = True  # a crashed run must not hang at exit on it
        self._thread.start()
        self._opened.wait()
        self._raise_if_failed()
        return self

    def submit(self, episode: Episode) -> Future[None]:
        """Queue ``episode``; the future completes when it is committed (module docstring)."""
        self._raise_if_failed()
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("EpisodeWriter.submit: the writer is not running")
        done: Future[None] = Future()
        self._queue.put((episode, done))
        return done

    def close(self) -> None:
        """Write what is queued, stop the thread; raises the writer's error, if it had one."""
        if self._thread is None:
            return
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._thread = None
        self._raise_if_failed()

    def __enter__(self) -> EpisodeWriter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except BaseException:
            if exc is None:  # an error of the caller's own comes first
                raise

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, exc: BaseException) -> StoreError:
        """Keep the writer's error, as a StoreError naming the store (a programming error of
        SQLite's, a constraint broken, is named too: what the user can do is the same)."""
        if isinstance(exc, StoreError):
            error = exc
        else:
            error = StoreError(
                f"{self.run_dir}: the store writer failed ({type(exc).__name__}: {exc}); the "
                "episodes it had not committed run again with --resume"
            )
            error.__cause__ = exc
        self._error = error
        return error

    # the thread -------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            store = RunStore(self.run_dir)
        except BaseException as exc:  # reported by start()
            self._fail(exc)
            self._opened.set()
            return
        self._opened.set()
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._next_batch()
                # A waiter that gave up (its worker cancelled) still gets its episode written:
                # it finished; only its future is left alone.
                waiting = [done for _, done in batch if done.set_running_or_notify_cancel()]
                if self._error is None:
                    self._write(store, [episode for episode, _ in batch], waiting)
                else:  # failed before: it keeps answering (with the error) until told to stop
                    for done in waiting:
                        done.set_exception(self._error)
        finally:
            store.close()

    def _next_batch(self) -> tuple[list[_Item], bool]:
        """What has queued up, up to ``max_batch`` (waiting for the first, then ``linger_s``
        at most for more); and whether the stop sign came."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.max_batch:
            try:
                wait = deadline - time.monotonic()
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, store: RunStore, episodes: list[Episode], waiting: list[Future[None]]) -> None:
        if not episodes:
            return
        try:
            store.save_episodes(episodes)
        except BaseException as exc:  # the batch failed as a whole (one transaction)
            error = self._fail(exc)
            for done in waiting:
                done.set_exception(error)
            return
        self.batches += 1
        self.episodes += len(episodes)
        for done in waiting:
            done.set_result(None)
