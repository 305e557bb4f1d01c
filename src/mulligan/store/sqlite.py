"""The run store: one SQLite file (WAL) per run directory holding the run, its episodes and events.

It is the single source of truth: reports, metrics and exports read from here, never from
in-memory state. Writes are one transaction per finished episode, so a killed run loses at most
the episodes that were still in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import TypeAdapter

from mulligan.errors import MulliganError
from mulligan.events import Episode, EpisodeKey, Event

DB_NAME = "mulligan.sqlite"
SCHEMA_VERSION = 1

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


class StoreError(MulliganError):
    """The run directory or its database is not usable as asked."""


class StoredRun(NamedTuple):
    """The run a directory holds: its id, its config hash and its manifest."""

    run_id: str
    config_hash: str
    manifest: dict[str, Any]


class RunStore:
    """A run directory's SQLite database."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if found is None:
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(found[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {found[0]}, this mulligan reads {SCHEMA_VERSION}"
            )

    @classmethod
    def open_existing(cls, run_dir: Path) -> RunStore:
        """Open a run directory that must already hold a run."""
        if not (Path(run_dir) / DB_NAME).is_file():
            raise StoreError(
                f"{run_dir}: no {DB_NAME} here; pass the --out directory of a `mulligan run`"
            )
        return cls(run_dir)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs -----------------------------------------------------------------------------------

    def run(self) -> StoredRun | None:
        """The run in this directory, if any."""
        row = self._db.execute("SELECT run_id, config_hash, manifest FROM runs").fetchone()
        if row is None:
            return None
        return StoredRun(row[0], row[1], json.loads(row[2]))

    def create_run(self, run_id: str, config_hash: str, manifest: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO runs(run_id, created_at, config_hash, manifest) "
            "VALUES (?, datetime('now'), ?, ?)",
            (run_id, config_hash, json.dumps(manifest, sort_keys=True)),
        )

    def update_manifest(self, run_id: str, manifest: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE runs SET manifest=? WHERE run_id=?",
            (json.dumps(manifest, sort_keys=True), run_id),
        )

    # episodes -------------------------------------------------------------------------------

    def save_episode(self, episode: Episode) -> None:
        """Insert or replace one episode and its events atomically."""
        record = episode.model_dump(mode="json", exclude={"events"})
        rows = [
            (episode.id, seq, ev.turn, ev.type, ev.model_dump_json())
            for seq, ev in enumerate(episode.events)
        ]
        with self._transaction():
            self._db.execute("DELETE FROM events WHERE episode_id=?", (episode.id,))
            self._db.execute(
                "INSERT OR REPLACE INTO episodes VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
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
                ),
            )
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)

    def finished_keys(self) -> set[str]:
        """Ids of episodes that finished (failed ones are retried on resume)."""
        rows = self._db.execute("SELECT episode_id FROM episodes WHERE status='finished'")
        return {r[0] for r in rows}

    def episode_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])

    def episodes(self, *, with_events: bool = True, suite: str | None = None) -> Iterator[Episode]:
        """Stored episodes in a stable order (suite, task, epoch), streamed."""
        query = "SELECT episode_id, record FROM episodes"
        args: tuple[str, ...] = ()
        if suite is not None:
            query += " WHERE suite=?"
            args = (suite,)
        query += " ORDER BY suite, task_id, epoch"
        for episode_id, record in self._db.execute(query, args).fetchall():
            yield self._load(episode_id, record, with_events)

    def episode(self, key: EpisodeKey | str) -> Episode | None:
        """One stored episode by key or id, or None."""
        episode_id = key.id if isinstance(key, EpisodeKey) else key
        row = self._db.execute(
            "SELECT record FROM episodes WHERE episode_id=?", (episode_id,)
        ).fetchone()
        return None if row is None else self._load(episode_id, row[0], True)

    def _load(self, episode_id: str, record: str, with_events: bool) -> Episode:
        data = json.loads(record)
        data["events"] = []
        if with_events:
            rows = self._db.execute(
                "SELECT data FROM events WHERE episode_id=? ORDER BY seq", (episode_id,)
            )
            data["events"] = [_EVENT.validate_json(r[0]) for r in rows]
        return Episode.model_validate(data)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
