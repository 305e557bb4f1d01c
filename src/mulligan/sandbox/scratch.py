"""Sandbox scratch directories and their owners: made with an owner file that says, through a
lock, whether the process that made them is alive; removed when a new pool finds them abandoned.

A sandbox's scratch directory ``<tmp>/mulligan-sbx-<random>`` is removed when the sandbox closes
(a normal run, Ctrl-C, SIGTERM of ``mulligan run``). A process killed outright (SIGKILL, a test
timeout, the machine's OOM killer) cannot remove anything, so its directories stay. To tell them
from a live sandbox's, each directory has an *owner file* beside it,
``<tmp>/mulligan-sbx-<random>.owner``, created before the directory, owned by us, and held with
an exclusive ``flock`` for as long as the directory is in use. The kernel drops a lock when the
last descriptor of its holder closes, however the holder ended, so:

- a directory whose owner file we can lock has no live owner: it is abandoned, and
  :func:`remove_abandoned` removes both (as every :class:`~mulligan.sandbox.pool.SandboxPool`
  does when it starts);
- a directory whose owner file is locked is in use (by any process on this machine, in any PID
  namespace or container that shares the directory): it is kept;
- a directory without an owner file (not made by this code: another program's, or an older
  mulligan's) is never touched; neither is an owner file we do not own, a symlink, or a
  path that is not a directory.

The owner file lies outside the scratch directory because model code may write, empty or
delete anything inside that (the worker empties it between programs), and in bubblewrap it is
not visible at all. Its descriptor is close-on-exec, so the sandbox workers never hold it.

Every directory this process still holds when the interpreter exits is removed then (an exit
hook): a shutdown that cancels a sandbox's close half-way (``asyncio.run`` cancels every task
left, shielded ones included) must not leave its directory behind.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)

PREFIX = "mulligan-sbx-"
OWNER_SUFFIX = ".owner"
# An owner file without its directory is left alone this long: its maker may be between
# creating the file and the directory.
_YOUNG_S = 60.0
# Directories made here and not yet released: path -> (owner file, descriptor, maker's pid).
_held: dict[str, tuple[str, int, int]] = {}


def create_scratch(parent: str) -> tuple[str, str, int]:
    """A new empty scratch directory (mode 0700) in ``parent`` and its owner file, locked.

    Returns (directory, owner file, the owner file's descriptor): keep the descriptor open
    while the directory is in use, and give all three to :func:`release_scratch`.
    """
    for _ in range(100):
        path = os.path.join(parent, PREFIX + secrets.token_hex(6))
        owner = path + OWNER_SUFFIX
        try:
            fd = os.open(owner, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"mulligan sandbox scratch directory of process {os.getpid()}\n".encode())
            os.mkdir(path, 0o700)
        except (BlockingIOError, FileExistsError):  # taken meanwhile: another name
            _drop(owner, fd)
            continue
        except BaseException:
            _drop(owner, fd)
            raise
        _held[path] = (owner, fd, os.getpid())
        return path, owner, fd
    raise FileExistsError(f"no free scratch directory name in {parent}")


def _drop(owner: str, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(owner)
    os.close(fd)


def release_scratch(
    path: str, owner: str | None, fd: int | None, onerror: Callable[..., Any] | None = None
) -> None:
    """Remove a scratch directory made by :func:`create_scratch`, then its owner file, then
    drop the lock (in that order, so that no one sees the directory without a held lock)."""
    _held.pop(path, None)
    try:
        shutil.rmtree(path, onerror=onerror)
        if owner is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(owner)
    finally:
        if fd is not None:
            os.close(fd)


@atexit.register
def release_held_at_exit() -> None:
    """Removes the directories this process made and still holds (module docstring). A forked
    child inherits the table but not the directories: it removes nothing."""
    for path, (owner, fd, pid) in list(_held.items()):
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                release_scratch(path, owner, fd, onerror=force_remove)


def force_remove(function: Callable[..., Any], path: str, _info: Any) -> None:
    """``shutil.rmtree``'s error handler: model code may chmod its own files read-only; make
    them removable and retry once."""
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)


def scratch_parents() -> list[str]:
    """Where scratch directories are made: the temporary directory, and /tmp (bubblewrap's)."""
    parents = [tempfile.gettempdir(), "/tmp"]
    return [p for i, p in enumerate(parents) if os.path.isdir(p) and p not in parents[:i]]


def remove_abandoned(
    parents: Iterable[str] | None = None, onerror: Callable[..., Any] | None = None
) -> list[str]:
    """Remove the scratch directories in ``parents`` (default :func:`scratch_parents`) whose
    owner is gone (module docstring), with their owner files; returns the directories removed."""
    removed = []
    for parent in scratch_parents() if parents is None else parents:
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            if name.startswith(PREFIX) and name.endswith(OWNER_SUFFIX):
                owner = os.path.join(parent, name)
                path = owner.removesuffix(OWNER_SUFFIX)
                with contextlib.suppress(OSError):
                    if _remove_if_abandoned(path, owner, onerror):
                        removed.append(path)
    if removed:
        logger.info("removed %d abandoned sandbox scratch directories", len(removed))
    return removed


def _remove_if_abandoned(path: str, owner: str, onerror: Callable[..., Any] | None) -> bool:
    fd = os.open(owner, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        mine = os.fstat(fd)
        if not stat.S_ISREG(mine.st_mode) or mine.st_uid != os.geteuid():
            return False  # not an owner file we made
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner is alive
        now = os.lstat(owner)
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            return False  # removed and made anew while we looked: someone else's now
        try:
            directory = os.lstat(path)
        except FileNotFoundError:
            if time.time() - mine.st_mtime < _YOUNG_S:
                return False
        else:
            if not stat.S_ISDIR(directory.st_mode):
                return False  # a symlink or a file by that name: not a scratch directory
            shutil.rmtree(path, onerror=onerror)
        os.unlink(owner)
        return True
    finally:
        os.close(fd)
