"""The run store: one SQLite file (WAL) per run directory holding the run, its episodes and events.

It is the single source of truth: reports, metrics and exports read from here, never from
in-memory state. Each write of episodes is one transaction (a run batches the episodes that
finish together: :mod:`mulligan.store.writer`), so a killed run loses at most the episodes that
were still in flight or not yet committed.

Readers (reports, the viewer, replay) open a store read-only (:meth:`RunStore.open_existing`), so
archived runs and read-only mounts work. The schema has a version (``meta.schema_version``);
a store written by an older mulligan is brought up to date step by step by :data:`MIGRATIONS`
when opened for writing, and in memory when opened for reading. A damaged database is a
:class:`StoreError` naming the file; one malformed episode is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from mulligan.errors import MulliganError
from mulligan.events import Episode, EpisodeKey, Event

DB_NAME = "mulligan.sqlite"
SCHEMA_VERSION = 2

Migration = Callable[[sqlite3.Connection], None]


def _add_branch_columns(db: sqlite3.Connection) -> None:
    """1 -> 2: an episode's fork parent, branch turn and branch index as columns (they are in
    the record too), indexed so that siblings (same parent and branch turn) are found and
    streamed together."""
    for column, kind in (
        ("parent_episode", "TEXT"),
        ("branch_turn", "INTEGER"),
        ("branch", "INTEGER"),
    ):
        db.execute(f"ALTER TABLE episodes ADD COLUMN {column} {kind}")
    db.execute(
        "CREATE INDEX IF NOT EXISTS episodes_by_parent ON episodes(parent_episode, branch_turn)"
    )


MIGRATIONS: dict[int, Migration] = {1: _add_branch_columns}
"""``MIGRATIONS[n]`` brings a store from schema version ``n`` to ``n + 1``, inside a transaction
(so it uses ``execute``, never ``executescript``, which commits). ``_SCHEMA`` is the first
schema (version 1); a new store is created with it and brought up to date by the same steps, so
the current schema is ``_SCHEMA`` plus every step. A change means raising
:data:`SCHEMA_VERSION` and adding its step."""

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    suite TEXT NOT NULL,
    task_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    status TEXT NOT NULL,
    success INTEGER NOT NULL,
    success_turn INTEGER,
    turns_used INTEGER NOT NULL,
    proposals_used INTEGER NOT NULL,
    terminate_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS episodes_by_suite ON episodes(run_id, suite);
CREATE TABLE IF NOT EXISTS events (
    episode_id TEXT NOT NULL REFERENCES episodes(episode_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (episode_id, seq)
);
"""

_EVENT = TypeAdapter(Event)
# The episodes table's columns as save_episode writes them (the first schema's, then those that
# MIGRATIONS added).
_EPISODE_COLUMNS = (
    "episode_id", "run_id", "suite", "task_id", "epoch", "status", "success", "success_turn",
    "turns_used", "proposals_used", "terminate_reason", "prompt_tokens", "completion_tokens",
    "error", "started_at", "finished_at", "record", "parent_episode", "branch_turn", "branch",
)  # fmt: skip


class StoreError(MulliganError):
    """The run directory or its database is not usable as asked."""


class StoredRun(NamedTuple):
    """The run a directory holds: its id, its config hash and its manifest."""

    run_id: str
    config_hash: str
    manifest: dict[str, Any]


class RunStore:
    """A run directory's SQLite database, opened for writing (the default) or read-only.

    Attributes:
        skipped: ids of the episodes that were skipped because their rows are malformed.
    """

    def __init__(self, run_dir: Path, *, read_only: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.read_only = read_only
        self.skipped: list[str] = []
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        if read_only:
            self._db = self._connect_read_only()
        else:
            _make_run_dir(self.run_dir)
            self._db = self._connect(str(self.path), uri=False)
        try:
            with self._guard():
                if read_only:
                    self._check_readable_schema()
                else:
                    self._prepare_for_writing()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open_existing(cls, run_dir: Path, *, read_only: bool = True) -> RunStore:
        """Open a run directory that must already hold a run (read-only unless asked)."""
        if not (Path(run_dir) / DB_NAME).is_file():
            raise StoreError(
                f"{run_dir}: no {DB_NAME} here; pass the --out directory of a `mulligan run`"
            )
        return cls(run_dir, read_only=read_only)

    def close(self) -> None:
        self._db.close()
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # opening --------------------------------------------------------------------------------

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        with self._guard():
            return sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro`` where SQLite may keep its shared-memory file beside the database; in a
        directory it cannot write, ``immutable=1`` (nothing is written, no lock is taken), or a
        private copy when the run left episodes in its write-ahead log (``immutable`` would
        not read them)."""
        uri = self.path.resolve().as_uri()
        wal = self.path.with_name(f"{DB_NAME}-wal")
        if os.access(self.run_dir, os.W_OK):
            return self._connect(f"{uri}?mode=ro", uri=True)
        if not (wal.is_file() and wal.stat().st_size > 0):
            return self._connect(f"{uri}?immutable=1", uri=True)
        self._copy = tempfile.TemporaryDirectory(prefix="mulligan-store-")
        copy = Path(self._copy.name) / DB_NAME
        shutil.copyfile(self.path, copy)
        shutil.copyfile(wal, copy.with_name(wal.name))
        return self._connect(f"{copy.as_uri()}?mode=ro", uri=True)

    def _prepare_for_writing(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = _schema_version(db)
        if version is None:  # a new store (or one whose first open did not finish)
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')")
            version = 1
        _migrate(db, version, self.path)

    def _check_readable_schema(self) -> None:
        version = _schema_version(self._db)
        if version is None:
            raise StoreError(
                f"{self.path}: holds no mulligan run (no schema version); pass the --out "
                "directory of a `mulligan run`"
            )
        if version < SCHEMA_VERSION:
            # The file stays as it is: an in-memory copy is brought up to date and read.
            memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._db.backup(memory)
            self._db.close()
            self._db = memory
            _migrate(self._db, version, self.path)
            # Read-only like the file: a write must fail, not vanish with the copy.
            self._db.execute("PRAGMA query_only=ON")
            return
        _migrate(self._db, version, self.path)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite's errors about the file (damaged, unreadable, unwritable) as a StoreError
        naming it; its errors about how it was called stay what they are (programming errors)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if type(exc) not in (sqlite3.DatabaseError, sqlite3.OperationalError):
                raise
            raise _store_error(self.path, exc, read_only=self.read_only) from exc

    # runs -----------------------------------------------------------------------------------

    def run(self) -> StoredRun | None:
        """The run in this directory, if any."""
        with self._guard():
            row = self._db.execute("SELECT run_id, config_hash, manifest FROM runs").fetchone()
        if row is None:
            return None
        try:
            manifest = json.loads(row[2])
        except ValueError as exc:
            raise StoreError(
                f"{self.path}: the manifest of run {row[0]} is damaged ({exc}); the run's "
                "manifest.json beside it holds a copy"
            ) from exc
        return StoredRun(row[0], row[1], manifest)

    def create_run(self, run_id: str, config_hash: str, manifest: dict[str, Any]) -> None:
        with self._guard():
            self._db.execute(
                "INSERT INTO runs(run_id, created_at, config_hash, manifest) "
                "VALUES (?, datetime('now'), ?, ?)",
                (run_id, config_hash, json.dumps(manifest, sort_keys=True)),
            )

    def update_manifest(self, run_id: str, manifest: dict[str, Any]) -> None:
        with self._guard():
            self._db.execute(
                "UPDATE runs SET manifest=? WHERE run_id=?",
                (json.dumps(manifest, sort_keys=True), run_id),
            )

    # episodes -------------------------------------------------------------------------------

    def save_episode(self, episode: Episode) -> None:
        """Insert or replace one episode and its events atomically."""
        self.save_episodes([episode])

    def save_episodes(self, episodes: Sequence[Episode]) -> None:
        """Insert or replace several episodes and their events in one transaction: all of them
        or none (one commit for many is what makes a batch cheaper than its episodes one by
        one; :mod:`mulligan.store.writer` batches a run's episodes so)."""
        rows = [_episode_row(episode) for episode in episodes]
        events = [
            (episode.id, seq, ev.turn, ev.type, ev.model_dump_json())
            for episode in episodes
            for seq, ev in enumerate(episode.events)
        ]
        with self._guard(), self._transaction():
            self._db.executemany(
                "DELETE FROM events WHERE episode_id=?", [(e.id,) for e in episodes]
            )
            self._db.executemany(
                f"INSERT OR REPLACE INTO episodes ({', '.join(_EPISODE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_EPISODE_COLUMNS))})",
                rows,
            )
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", events)

    def finished_keys(self) -> set[str]:
        """Ids of episodes that finished (failed ones are retried on resume, and so are those
        whose stored JSON is malformed, which reports skip)."""
        query = (
            "SELECT episode_id FROM episodes AS e WHERE status='finished'"
            # CASE: json_type raises on malformed JSON, and SQLite may evaluate AND either way.
            " AND CASE WHEN json_valid(record) THEN json_type(record) END = 'object'"
            " AND NOT EXISTS (SELECT 1 FROM events AS v"
            " WHERE v.episode_id = e.episode_id AND NOT json_valid(v.data))"
        )
        with self._guard():
            return {r[0] for r in self._db.execute(query)}

    def finished_task_digests(self) -> Iterator[tuple[str, str, str | None]]:
        """(suite, task id, ``Episode.task_digest``) of each finished episode, streamed (None
        where it predates task digests or its record is malformed): the resume check of
        ``engine/task_digests.py`` reads them without loading whole episodes."""
        query = (
            "SELECT suite, task_id, CASE WHEN json_valid(record) THEN"
            " json_extract(record, '$.task_digest') END FROM episodes WHERE status='finished'"
        )
        with self._guard():
            cursor = self._db.execute(query)
            while rows := cursor.fetchmany(1024):
                for suite, task_id, digest in rows:
                    yield suite, task_id, digest if isinstance(digest, str) else None

    def episode_count(self) -> int:
        with self._guard():
            return int(self._db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])

    def episodes(self, *, with_events: bool = True, suite: str | None = None) -> Iterator[Episode]:
        """Stored episodes in a stable order (suite, task, epoch), streamed; a malformed one is
        skipped with a warning naming it (and listed in :attr:`skipped`)."""
        query = "SELECT episode_id, record FROM episodes"
        args: tuple[str, ...] = ()
        if suite is not None:
            query += " WHERE suite=?"
            args = (suite,)
        query += " ORDER BY suite, task_id, epoch"
        with self._guard():
            cursor = self._db.execute(query, args)
        while True:  # in batches: exports stream runs of any size in constant memory
            with self._guard():
                rows = cursor.fetchmany(256)
            if not rows:
                return
            for episode_id, record in rows:
                episode = self._load(episode_id, record, with_events)
                if episode is not None:
                    yield episode

    def episode(self, key: EpisodeKey | str) -> Episode | None:
        """One stored episode by key or id, or None (also when it is malformed, with a
        warning)."""
        episode_id = key.id if isinstance(key, EpisodeKey) else key
        with self._guard():
            row = self._db.execute(
                "SELECT record FROM episodes WHERE episode_id=?", (episode_id,)
            ).fetchone()
        return None if row is None else self._load(episode_id, row[0], True)

    def _load(self, episode_id: str, record: str, with_events: bool) -> Episode | None:
        try:
            data = json.loads(record)
            data["events"] = []
            if with_events:
                with self._guard():
                    rows = self._db.execute(
                        "SELECT data FROM events WHERE episode_id=? ORDER BY seq", (episode_id,)
                    ).fetchall()
                data["events"] = [_EVENT.validate_json(r[0]) for r in rows]
            return Episode.model_validate(data)
        except (ValueError, TypeError) as exc:  # JSON, validation, or a record that is no object
            reason = _reason(exc)
            log.warning(
                "%s: episode %s is malformed (%s); skipped. `mulligan run --resume` with the "
                "same options runs it again",
                self.path,
                episode_id,
                reason,
            )
            self.skipped.append(episode_id)
            return None

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _episode_row(episode: Episode) -> tuple[Any, ...]:
    """An episode's row of the episodes table, in :data:`_EPISODE_COLUMNS` order."""
    record = episode.model_dump(mode="json", exclude={"events"})
    return (
        episode.id,
        episode.run_id,
        episode.key.suite,
        episode.key.task_id,
        episode.key.epoch,
        episode.status,
        int(episode.success),
        episode.success_turn,
        episode.turns_used,
        episode.proposals_used,
        episode.terminate_reason,
        episode.prompt_tokens,
        episode.completion_tokens,
        episode.error,
        episode.started_at.isoformat(),
        episode.finished_at.isoformat() if episode.finished_at else None,
        json.dumps(record, sort_keys=True),
        episode.parent_episode,
        episode.branch_turn,
        episode.branch,
    )


def _reason(exc: Exception) -> str:
    """One line on why a row did not load: the first validation problem, or the message."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _make_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` for writing, or say why it cannot be one."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{run_dir} is a file, not a directory; choose another --out") from None
    except NotADirectoryError:
        parent = next((p for p in run_dir.parents if p.is_file()), run_dir.parent)
        raise StoreError(
            f"{run_dir}: {parent} is a file, not a directory; choose another --out"
        ) from None
    except OSError as exc:
        raise StoreError(
            f"{run_dir}: cannot create the run directory ({(exc.strerror or str(exc)).lower()});"
            " choose an --out on a disk you can write"
        ) from exc
    if _read_only_fs(run_dir):
        raise StoreError(f"{run_dir} is on a read-only file system; choose another --out")
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise StoreError(f"{run_dir} is not writable by you; choose another --out")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # statvfs is POSIX only
        return False


def _store_error(path: Path, exc: sqlite3.Error, *, read_only: bool) -> StoreError:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"{path}: the run database is damaged ({text}); restore it from a copy, or start "
            "a new run with another --out"
        )
    if read_only and "readonly" in text:
        return StoreError(f"{path}: opened read-only, so it cannot be written ({text})")
    if read_only:
        return StoreError(f"{path}: cannot read the run database ({text}); check its permissions")
    return StoreError(
        f"{path}: cannot write the run database ({text}); choose an --out on a disk you can "
        "write, with free space"
    )


def _schema_version(db: sqlite3.Connection) -> int | None:
    """The store's schema version, or None when it has none yet (a new store)."""
    meta = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if meta is None:
        return None
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return None if row is None else int(row[0])


def _migrate(db: sqlite3.Connection, version: int, path: Path) -> None:
    """Bring the store from ``version`` to :data:`SCHEMA_VERSION`, one step per transaction."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer mulligan (store schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}); upgrade mulligan to read it"
        )
    for step in range(version, SCHEMA_VERSION):
        migration = MIGRATIONS.get(step)
        if migration is None:
            raise StoreError(f"{path}: store schema {step} has no migration to {step + 1}")
        with _Transaction(db):
            if _schema_version(db) != step:  # another process migrated it meanwhile
                continue
            migration(db)
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(step + 1),))
