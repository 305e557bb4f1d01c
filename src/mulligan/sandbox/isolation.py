"""How sandbox workers are isolated: mode detection, worker command lines, identities, killing.

Three modes, best first (``detect_isolation`` picks one; probes are cached per process):

- ``bwrap``: bubblewrap gives the worker its own PID, IPC, UTS and network namespaces and a new,
  empty root that holds only an allow-list of the host, read-only: the system directories
  (/usr, /etc, /lib...) and the interpreter's prefixes, standard library and site-packages.
  Everything else (home directories, /work, /var, /srv, run directories, any copy of task data)
  does not exist inside; hidden paths that lie inside the allow-list (a package's reference
  data) are covered. /tmp and /dev/shm are private, only the scratch directory is writable. When
  we run as root the worker then drops to a throwaway uid of its own (RLIMIT_NPROC is not
  enforced for root). This is what the README promises.
- ``rlimits-only`` (weak): no bubblewrap. The worker gets its own session, resource limits, a
  scrubbed environment, a scratch working directory, a throwaway uid when we are root (so it
  cannot write outside its scratch directory or read our /proc entries) and, when root, its own
  network namespace if the kernel allows. The host's files are visible.
- ``rlimits-only-as-root`` (weakest): as above, but the worker keeps running as root (e.g. the
  interpreter lives under a private home the throwaway uid cannot enter): limits and a scrubbed
  environment only; no fork-bomb guard, no filesystem protection, our /proc readable.

The weak modes are never chosen on their own: ``detect_isolation(..., allow_weak=True)`` is the
explicit opt-in, and then a loud warning says what does not hold. Without it, a host where
bubblewrap does not work gets a one-line error saying how to fix that.

Every worker gets a scratch directory and (when we are root) a uid nobody else uses, so all of
its processes, however they were spawned, can be found by uid and killed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mulligan.sandbox.limits import SandboxError, SandboxLimits
from mulligan.sandbox.scratch import (
    create_scratch,
    force_remove,
    release_scratch,
    remove_abandoned,
)

logger = logging.getLogger(__name__)

IsolationRequest = Literal["auto", "bwrap", "rlimits", "rlimits-only", "rlimits-only-as-root"]

# Throwaway uids/gids for workers when we are root: high, unnamed, one per live sandbox.
_UID_BASE = 1_900_000_000
_UID_SPAN = 100_000_000
_FILE_LIMIT_MB = 64
_TMP_BYTES = 128 * 1024 * 1024
_SHM_BYTES = 64 * 1024 * 1024
_PROBE_TIMEOUT_S = 30.0

_uids_in_use: set[int] = set()
_releasing = threading.Lock()
# Modes whose probe worker started, by name (probed once per process); weak modes warned of.
_detected: dict[str, IsolationMode] = {}
_warned: set[str] = set()


@dataclass(frozen=True)
class IsolationMode:
    """One way of isolating workers, with what it does and does not protect against."""

    name: str
    use_bwrap: bool
    drop_uid: bool
    notes: tuple[str, ...] = ()
    # Weaker than the README promises (no bubblewrap): used only when explicitly allowed.
    weak: bool = False


@dataclass
class WorkerIdentity:
    """What belongs to one sandbox across worker restarts: its scratch directory and uid, and
    the scratch directory's owner file and its locked descriptor (``sandbox/scratch.py``)."""

    scratch: str
    uid: int | None
    owner: str | None = None
    owner_fd: int | None = None

    @property
    def gid(self) -> int | None:
        return self.uid


# ----------------------------------------------------------------------------------------------
# Identities (scratch directory + uid)
# ----------------------------------------------------------------------------------------------
@functools.cache
def _uid_range() -> tuple[int, int]:
    """(first uid, how many) usable as throwaway ids: inside our user namespace's mapping."""
    try:
        lines = Path("/proc/self/uid_map").read_text().split("\n")
    except OSError:
        return _UID_BASE, _UID_SPAN
    extents = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            extents.append((int(parts[0]), int(parts[2])))
    for start, count in extents:
        if start <= _UID_BASE and start + count >= _UID_BASE + _UID_SPAN:
            return _UID_BASE, _UID_SPAN
    # A container with a partial mapping: use the upper half of its largest extent.
    start, count = max(extents, key=lambda extent: extent[1], default=(0, 65536))
    half = count // 2
    return start + half, max(half - 1, 1)


def _allocate_uid() -> int:
    first, span = _uid_range()
    while True:
        uid = first + secrets.randbelow(span)
        if uid not in _uids_in_use and uid != 65534:
            _uids_in_use.add(uid)
            return uid


def _traversable(path: str) -> bool:
    """True when every directory on the way to ``path`` can be entered by other users."""
    current = Path(path).resolve()
    for directory in [current, *current.parents]:
        try:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def new_identity(mode: IsolationMode) -> WorkerIdentity:
    """Creates a private scratch directory (owned by a fresh uid when we drop privileges)."""
    parent = tempfile.gettempdir()
    if os.path.isdir("/tmp") and (mode.use_bwrap or (mode.drop_uid and not _traversable(parent))):
        # Inside bubblewrap /tmp is a fresh tmpfs that the scratch dir is bound into, so every
        # directory on the way is one the worker can enter.
        parent = "/tmp"
    uid = _allocate_uid() if mode.drop_uid else None
    try:
        scratch, owner, fd = create_scratch(parent)
    except BaseException:
        if uid is not None:
            _uids_in_use.discard(uid)
        raise
    try:
        if uid is not None:
            os.chown(scratch, uid, uid)
        os.chmod(scratch, 0o700)
    except OSError:
        release_scratch(scratch, owner, fd)
        if uid is not None:
            _uids_in_use.discard(uid)
        raise
    return WorkerIdentity(os.path.realpath(scratch), uid, owner=owner, owner_fd=fd)


def rotate_uid(identity: WorkerIdentity) -> None:
    """Gives a sandbox a fresh uid before its worker restarts (blocking).

    Processes killed with the old worker may linger as zombies until the host's init reaps
    them, and zombies count against RLIMIT_NPROC of their uid: a fresh uid starts at zero.
    """
    old = identity.uid
    if old is None:
        return
    new = _allocate_uid()
    for root, directories, files in os.walk(identity.scratch):
        for name in [*directories, *files]:
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(root, name), new, new)
    os.chown(identity.scratch, new, new)
    identity.uid = new
    _uids_in_use.discard(old)


def release_identity(identity: WorkerIdentity) -> None:
    """Deletes the scratch directory (and its owner file) and frees the uid (call after killing
    the processes)."""
    with _releasing:  # released once, even if called twice at once (a thread and a cancelled close)
        owner_fd, identity.owner_fd = identity.owner_fd, None
    release_scratch(identity.scratch, identity.owner, owner_fd, onerror=force_remove)
    if identity.uid is not None:
        _uids_in_use.discard(identity.uid)


def remove_abandoned_scratch() -> list[str]:
    """Removes the scratch directories that processes killed outright left behind, and only
    those (``sandbox/scratch.py``: an owner file nobody holds); returns them (blocking)."""
    return remove_abandoned(onerror=force_remove)


# ----------------------------------------------------------------------------------------------
# Worker command line
# ----------------------------------------------------------------------------------------------
WORKER_FILENAME = "<mulligan-sandbox-worker>"
# Compiles the worker under a name its tracebacks can be filtered by (not "<string>", which
# model code's own exec() uses too).
_BOOTSTRAP = (
    f"import sys; _source = sys.argv.pop(1); exec(compile(_source, {WORKER_FILENAME!r}, 'exec'))"
)


@functools.cache
def worker_source() -> str:
    """The worker script's source, passed with ``-c`` so its path need not be visible."""
    return (Path(__file__).with_name("_worker.py")).read_text(encoding="utf-8")


@functools.cache
def _interpreter_paths() -> list[str]:
    """Directories the worker's interpreter needs to see (outermost only): the prefixes, the
    standard library and site-packages, and the real interpreter behind a venv's symlink."""
    candidates = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            candidates.add(sysconfig.get_paths()[key])
    paths = {os.path.realpath(path) for path in candidates if path} | {
        os.path.abspath(path) for path in candidates if path
    }
    return _outermost(p for p in paths if os.path.exists(p))


def _outermost(paths: Any) -> list[str]:
    result: list[str] = []
    for path in sorted(set(paths)):
        if not any(_inside(path, kept) for kept in result):
            result.append(path)
    return result


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# What the worker sees of the host besides its interpreter: the system's programs and
# libraries and their configuration (read-only; a throwaway uid reads only world-readable
# files). Nothing else: not /home, /root, /var, /srv, /opt, /mnt, /work, nor the run directory.
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


def _allowed_paths() -> list[str]:
    """Host paths bound read-only into the sandbox: the system paths, then the interpreter's
    directories that are not already inside one of them."""
    system = [path for path in _SYSTEM_PATHS if os.path.lexists(path)]
    interpreter = [
        path
        for path in _interpreter_paths()
        if not any(_inside(path, root) for root in system) and path != "/"
    ]
    return system + interpreter


def _parent_dirs(path: str, made: set[str]) -> list[str]:
    """``--dir`` arguments that create ``path``'s missing parents, enterable by any uid."""
    args: list[str] = []
    for directory in reversed(Path(path).parents):
        name = str(directory)
        if (
            name != "/"
            and name not in made
            and not any(_inside(name, root) for root in _SYSTEM_PATHS)
        ):
            made.add(name)
            args += ["--perms", "0755", "--dir", name]
    return args


def _bind_allowed(made: set[str]) -> list[str]:
    """Read-only binds of the allow-list (symlinks such as /lib -> usr/lib are recreated)."""
    args: list[str] = []
    for path in _allowed_paths():
        if path in _SYSTEM_PATHS and os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
            continue
        args += _parent_dirs(path, made)
        args += ["--ro-bind", path, path]
    return args


def _cover_hidden(hide: Sequence[str], made: set[str]) -> list[str]:
    """Covers hidden paths that lie inside the allow-list (e.g. a package's reference data in
    site-packages) with an empty read-only directory, or /dev/null for a file."""
    allowed = _allowed_paths()
    hidden = {os.path.realpath(os.path.expanduser(path)) for path in hide}
    args: list[str] = []
    covered_dirs: list[str] = []
    for path in _outermost(p for p in hidden if os.path.exists(p)):
        if path == "/" or not any(_inside(path, root) for root in allowed):
            continue  # not bound at all, so already invisible
        if any(_inside(needed, path) for needed in _interpreter_paths()):
            logger.warning("not hiding %s: the sandbox's interpreter lives there", path)
            continue
        if os.path.isdir(path):
            args += ["--tmpfs", path]
            covered_dirs.append(path)
        else:
            args += ["--ro-bind", "/dev/null", path]
    for path in covered_dirs:
        # Read-only, so that even a worker that owns the cover (no uid switch) cannot write.
        args += ["--remount-ro", path]
    return args


def _bwrap_args(
    mode: IsolationMode, limits: SandboxLimits, identity: WorkerIdentity, hide: Sequence[str]
) -> list[str]:
    """Bubblewrap's arguments: a new, empty root holding only the allow-list (read-only), a
    fresh /proc, /dev, /tmp and /dev/shm, the scratch directory (writable), and the hidden
    paths covered where they lie inside the allow-list."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
    ]
    if not limits.network:
        args.append("--unshare-net")
    if os.geteuid() != 0:
        args.append("--unshare-user")  # unprivileged bubblewrap needs a user namespace
    made = {"/proc", "/dev", "/tmp", "/dev/shm"}
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(_TMP_BYTES), "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", str(_SHM_BYTES), "--tmpfs", "/dev/shm"]
    args += _bind_allowed(made)
    args += _cover_hidden(hide, made)
    # No --chdir: the scratch dir belongs to the worker's uid and bubblewrap has no
    # CAP_DAC_OVERRIDE left; the worker changes into it after switching uid.
    args += _parent_dirs(identity.scratch, made)
    args += ["--bind", identity.scratch, identity.scratch, "--chdir", "/"]
    if os.geteuid() == 0:
        # Keep only what the worker needs to switch to its own uid (which clears them).
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return [*args, "--"]


def _count_own_tasks() -> int:
    """Processes+threads of our uid (RLIMIT_NPROC counts them all when we cannot switch uid)."""
    own = os.getuid()
    total = 0
    for pid in _pids():
        status = _read_status(pid)
        if status is not None and status[0] == own:
            total += status[2]
    return total


def worker_env(mode: IsolationMode, identity: WorkerIdentity) -> dict[str, str]:
    """The worker's whole environment: nothing of ours (no API keys) gets through."""
    path = os.pathsep.join(
        dict.fromkeys([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
    )
    env = {
        "PATH": path,
        "HOME": identity.scratch,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONSAFEPATH": "1",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "TERM": "dumb",
        "MPLBACKEND": "Agg",
        # One BLAS/OpenMP thread: thread pools would eat the process and memory limits.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }
    if not mode.use_bwrap:
        env["TMPDIR"] = identity.scratch  # the host /tmp is shared; keep temp files in scratch
    return env


def worker_command(
    mode: IsolationMode,
    limits: SandboxLimits,
    identity: WorkerIdentity,
    *,
    hide: Sequence[str] = (),
    probe: bool = False,
) -> list[str]:
    """The argv that starts one worker in ``mode``."""
    root = os.geteuid() == 0
    nproc = limits.max_processes
    if not root:
        nproc += _count_own_tasks()  # the limit counts all our processes, not just the worker's
    config = {
        "scratch": identity.scratch,
        "uid": identity.uid,
        "gid": identity.gid,
        "memory_mb": limits.memory_mb,
        "cpu_s": limits.cpu_s,
        "nproc": nproc,
        "file_mb": _FILE_LIMIT_MB,
        "output_bytes": limits.output_bytes,
        "unshare_net": root and not mode.use_bwrap and not limits.network,
        "parent_pid": None if mode.use_bwrap else os.getpid(),
        "subreaper": not mode.use_bwrap,
        # kill(-1) reaches only the sandbox inside a PID namespace or under a throwaway uid.
        "may_kill_all": mode.use_bwrap or identity.uid is not None,
        # Emptied after each program a warm program runner runs (bubblewrap's own tmpfs only).
        "private_tmp": ["/tmp", "/dev/shm"] if mode.use_bwrap else [],
        "probe": probe,
    }
    # -s -P: no user site, no script dir on sys.path. Not -I: our env is already minimal and we
    # want the PYTHONHASHSEED=0 it sets (reproducible set ordering in observations).
    python = [
        sys.executable,
        "-s",
        "-P",
        "-u",
        "-c",
        _BOOTSTRAP,
        worker_source(),
        json.dumps(config),
    ]
    if mode.use_bwrap:
        return [*_bwrap_args(mode, limits, identity, hide), *python]
    return python


# ----------------------------------------------------------------------------------------------
# Killing
# ----------------------------------------------------------------------------------------------
def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _read_status(pid: int) -> tuple[int, str, int] | None:
    """(real uid, state letter, thread count) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    uid, state, threads = -1, "?", 1
    for line in text.split("\n"):
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("State:"):
            state = line.split()[1]
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return uid, state, threads


def _session_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    # After "pid (comm) ": state ppid pgrp session ...; zombies are already dead.
    if len(fields) < 4 or fields[0] in ("Z", "X"):
        return None
    return int(fields[3])


def _kill_until_gone(find: Callable[[], list[int]]) -> bool:
    """SIGKILLs what ``find`` returns until it returns nothing (a fork bomb races us)."""
    for attempt in range(400):
        pids = [pid for pid in find() if pid != os.getpid()]
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001 if attempt < 20 else 0.01)
    return False


def kill_worker_processes(mode: IsolationMode, identity: WorkerIdentity, pid: int | None) -> None:
    """Kills a worker and everything it started (blocking; run it in a thread).

    ``pid`` is the process we spawned (bubblewrap or the worker itself), which leads its own
    process group. In bubblewrap mode its death takes the whole PID namespace with it. With a
    throwaway uid, every process of that uid is ours to kill; otherwise we kill the worker's
    session (processes that started their own session escape: reported as a weakness).
    """
    if pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if identity.uid is not None:
        uid = identity.uid

        def of_uid() -> list[int]:
            found = []
            for candidate in _pids():
                status = _read_status(candidate)
                if status is not None and status[0] == uid and status[1] not in ("Z", "X"):
                    found.append(candidate)
            return found

        if not _kill_until_gone(of_uid):
            logger.warning("sandbox uid %d still has processes after repeated SIGKILL", uid)
    elif pid is not None and not mode.use_bwrap:
        session = pid

        def of_session() -> list[int]:
            return [p for p in _pids() if p != pid and _session_of(p) == session]

        _kill_until_gone(of_session)


# ----------------------------------------------------------------------------------------------
# Detection
# ----------------------------------------------------------------------------------------------
def read_message(data: bytes) -> dict[str, Any] | None:
    """Decodes one length-prefixed JSON message from the start of ``data``."""
    if len(data) < 4:
        return None
    (size,) = struct.unpack(">I", data[:4])
    if len(data) < 4 + size:
        return None
    value = json.loads(data[4 : 4 + size].decode("utf-8"))
    return value if isinstance(value, dict) else None


def _probe(mode: IsolationMode) -> str | None:
    """Starts one worker in ``mode`` and checks its handshake; returns the problem, or None."""
    try:
        identity = new_identity(mode)
    except OSError as exc:
        return f"cannot create a scratch directory: {exc}"
    process: subprocess.Popen[bytes] | None = None
    try:
        argv = worker_command(mode, SandboxLimits(), identity, probe=True)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(mode, identity),
            cwd=identity.scratch,
            start_new_session=True,
        )
        out, err = process.communicate(timeout=_PROBE_TIMEOUT_S)
        message = read_message(out)
        if message is None or not message.get("ready"):
            detail = err.decode("utf-8", "replace").strip()[-500:]
            return f"worker did not start (exit status {process.returncode}): {detail}"
        problems = message.get("problems") or []
        return "; ".join(problems) if problems else None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        kill_worker_processes(mode, identity, process.pid if process else None)
        if process is not None:
            with contextlib.suppress(subprocess.SubprocessError):
                process.wait(timeout=5)
        release_identity(identity)


def _mode(name: str) -> IsolationMode:
    root = os.geteuid() == 0
    if name == "bwrap":
        notes = [
            "bubblewrap: own PID, IPC, UTS and network namespaces (network per limits)",
            "allow-list view of the host, read-only: system directories (/usr, /etc, ...) and "
            "the interpreter with its standard library and site-packages; nothing else",
            "private /tmp and /dev/shm; writable: the scratch directory only",
        ]
        if root:
            notes.append("runs as a throwaway uid: RLIMIT_NPROC enforced, our /proc unreadable")
        return IsolationMode("bwrap", use_bwrap=True, drop_uid=root, notes=tuple(notes))
    if name == "rlimits-only":
        notes = [
            "WEAK: no bubblewrap: resource limits, own session, scrubbed environment, scratch "
            "cwd; the host filesystem is visible (task data and references may be readable), "
            "hidden paths are not hidden, /tmp is shared"
        ]
        if root:
            notes.append(
                "runs as a throwaway uid: cannot write outside scratch (unless a path is "
                "world-writable) or read our /proc; own network namespace if the kernel allows"
            )
        else:
            notes.append("same uid as us: can write wherever we can and read our /proc; network on")
        return IsolationMode(
            "rlimits-only", use_bwrap=False, drop_uid=root, notes=tuple(notes), weak=True
        )
    return IsolationMode(
        "rlimits-only-as-root",
        use_bwrap=False,
        drop_uid=False,
        weak=True,
        notes=(
            "WEAK: no bubblewrap and the worker runs as root: resource limits and a scrubbed "
            "environment only; no fork-bomb guard (RLIMIT_NPROC does not apply to root), no "
            "filesystem protection (task data and references readable, any file writable), "
            "our secrets readable in /proc/<pid>/environ, our process killable",
        ),
    )


# Why a weak mode is refused, and the way out: one line, for the command line's error.
_FIX = (
    "install bubblewrap (apt-get install bubblewrap, or scripts/ensure_system.sh) or accept "
    "weaker isolation explicitly with --allow-weak-isolation"
)


def _requested(request: IsolationRequest) -> IsolationRequest:
    """``request``, with "auto" replaced by MULLIGAN_SANDBOX_ISOLATION when that is set."""
    if request != "auto":
        return request
    # Lets an operator (or a test run) pick the mode per host; weak ones still need allow_weak.
    override = os.environ.get("MULLIGAN_SANDBOX_ISOLATION", "auto")
    if override not in _REQUESTS:
        raise SandboxError(
            f"MULLIGAN_SANDBOX_ISOLATION={override!r}: use one of {', '.join(_REQUESTS)}"
        )
    return override  # type: ignore[return-value]


def _try(name: str) -> IsolationMode | str:
    """The mode ``name`` if a probe worker starts in it here (cached), else why not."""
    cached = _detected.get(name)
    if cached is not None:
        return cached
    if name == "bwrap" and shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    mode = _mode(name)
    if name == "rlimits-only-as-root" and os.geteuid() != 0:
        mode = _mode("rlimits-only")  # without root there is no uid to give up
    problem = _probe(mode)
    if problem is not None:
        what = {"bwrap": "bubblewrap does not work here"}.get(
            name, f"the {name} worker cannot start"
        )
        return f"{what}: {' '.join(problem.split())[:300]}"
    _detected[name] = mode
    return mode


# The modes each request may use, strongest first.
_CANDIDATES: dict[str, tuple[str, ...]] = {
    "auto": ("bwrap", "rlimits-only", "rlimits-only-as-root"),
    "bwrap": ("bwrap",),
    "rlimits": ("rlimits-only", "rlimits-only-as-root"),
    "rlimits-only": ("rlimits-only",),
    "rlimits-only-as-root": ("rlimits-only-as-root",),
}
_REQUESTS = tuple(_CANDIDATES)


def detect_isolation(
    request: IsolationRequest = "auto", *, allow_weak: bool = False
) -> IsolationMode:
    """The strongest isolation that works here among those ``request`` allows.

    ``request``: "auto" (bubblewrap; the environment variable MULLIGAN_SANDBOX_ISOLATION can
    replace "auto" with another request), "bwrap", "rlimits" (rlimits-only, else
    rlimits-only-as-root), or one mode by name. Modes weaker than bubblewrap (``mode.weak``:
    the README's promises do not hold) are used only with ``allow_weak=True``, and then with a
    loud warning; otherwise a one-line SandboxError says what is missing and how to fix it.
    Blocking (starts probe workers, ~0.1 s each, results cached per process): call it from a
    thread in async code.
    """
    if not sys.platform.startswith("linux"):
        raise SandboxError("the sandbox needs Linux (resource limits, /proc)")
    request = _requested(request)
    if request not in _CANDIDATES:
        raise SandboxError(f"unknown sandbox isolation {request!r}: use one of {_REQUESTS}")
    failures: list[str] = []
    for name in _CANDIDATES[request]:
        if name != "bwrap" and not allow_weak:
            break
        found = _try(name)
        if isinstance(found, str):
            failures.append(found)
            continue
        if found.weak:
            _warn_weak(found, failures)
        return found
    if not allow_weak and request not in ("auto", "bwrap"):
        raise SandboxError(
            f"sandbox isolation {request!r} is weaker than bubblewrap (see README, Sandbox) "
            "and needs an explicit opt-in: pass --allow-weak-isolation"
        )
    reason = "; ".join(failures) or "no isolation mode was tried"
    if not allow_weak and request == "auto":
        raise SandboxError(
            f"no strong sandbox isolation: {reason}; mulligan does not fall back to weaker "
            f"isolation on its own: {_FIX}"
        )
    raise SandboxError(f"no sandbox worker can start here: {reason}; {_FIX}")


def _warn_weak(mode: IsolationMode, failures: list[str]) -> None:
    """Says loudly, once per mode and process, that model code runs with weak isolation."""
    if mode.name in _warned:
        return
    _warned.add(mode.name)
    why = "; ".join(failures) or "requested explicitly"
    logger.warning(
        "WEAK SANDBOX ISOLATION (%s, allowed by --allow-weak-isolation): %s. Because: %s. "
        "Model-written code is not contained as the README promises; do not run untrusted "
        "models or keep secrets on this host.",
        mode.name,
        " ".join(mode.notes),
        why,
    )
