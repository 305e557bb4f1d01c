"""The SQLite run store: round trip, replace, resume keys, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mulligan.events import ActionEvent, Episode, EpisodeKey, ModelCallEvent
from mulligan.store import DB_NAME, RunStore, StoredRun, StoreError
from mulligan.store import sqlite as sqlite_store


def _episode(task_id: str, status: str = "finished", success: bool = False) -> Episode:
    return Episode(
        key=EpisodeKey(suite="mbpp", task_id=task_id),
        run_id="run-1",
        config_hash="h",
        model="scripted/wrong",
        max_turns=2,
        max_proposals=1,
        events=[
            ModelCallEvent(
                turn=1, model="m", output="x <solution>1</solution>", completion_tokens=3
            ),
            ActionEvent(turn=1, kind="solution", content="1", raw="x", proposal=1),
        ],
        status=status,  # type: ignore[arg-type]
        success=success,
        success_turn=1 if success else None,
    )


def test_round_trip_and_resume_keys(tmp_path: Path) -> None:
    solved = _episode("1", success=True)
    with RunStore(tmp_path) as store:
        store.create_run("run-1", "h", {"config": {"model": "m"}})
        store.save_episode(solved)
        store.save_episode(_episode("2", status="failed"))
        assert store.finished_keys() == {"mbpp/1#0"}
        assert store.run() == StoredRun(
            run_id="run-1", config_hash="h", manifest={"config": {"model": "m"}}
        )
    with RunStore.open_existing(tmp_path) as store:
        episodes = list(store.episodes())
        assert [e.id for e in episodes] == ["mbpp/1#0", "mbpp/2#0"]
        assert episodes[0] == solved
        assert store.episode("mbpp/1#0") == episodes[0]
        assert store.episode("nope") is None
        light = list(store.episodes(with_events=False))
        assert light[0].events == []


def test_save_replaces_episode_and_its_events(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        store.create_run("run-1", "h", {})
        store.save_episode(_episode("1", status="failed"))
        store.save_episode(_episode("1", success=True))
        assert store.episode_count() == 1
        (only,) = store.episodes()
        assert only.success and len(only.events) == 2
    rows = sqlite3.connect(tmp_path / DB_NAME).execute("SELECT COUNT(*) FROM events").fetchone()
    assert rows[0] == 2


def test_wal_mode(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    mode = sqlite3.connect(tmp_path / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_open_existing_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no mulligan\.sqlite"):
        RunStore.open_existing(tmp_path / "missing")


# ----------------------------------------------------------------------- schema and read-only


def _v1_store(run_dir: Path) -> None:
    """A store as the first schema wrote it (version 1), with a run and one episode."""
    with RunStore(run_dir) as store:
        store.create_run("run-1", "h", {"k": 1})
        store.save_episode(_episode("t1", success=True))
    _downgrade_to_v1(run_dir)


def _downgrade_to_v1(run_dir: Path) -> None:
    """Undo what MIGRATIONS added since the first schema (step 1 -> 2: the branch columns)."""
    db = sqlite3.connect(run_dir / DB_NAME)
    try:
        db.execute("DROP INDEX episodes_by_parent")
        for column in ("parent_episode", "branch_turn", "branch"):
            db.execute(f"ALTER TABLE episodes DROP COLUMN {column}")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        db.commit()
    finally:
        db.close()


def _add_notes(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE episodes ADD COLUMN notes TEXT NOT NULL DEFAULT ''")


def _schema_version(path: Path) -> str:
    db = sqlite3.connect(path / DB_NAME)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
    finally:
        db.close()


def test_opening_for_writing_migrates_an_older_store_step_by_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1_store(tmp_path)
    steps: list[int] = []

    def step_2(db: sqlite3.Connection) -> None:
        steps.append(2)
        db.execute("UPDATE episodes SET notes='from v2'")

    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(
        sqlite_store, "MIGRATIONS", {1: lambda db: (steps.append(1), _add_notes(db)), 2: step_2}
    )
    with RunStore(tmp_path) as store:
        (episode,) = store.episodes()
        assert episode.key.task_id == "t1"
    assert steps == [1, 2] and _schema_version(tmp_path) == "3"
    notes = sqlite3.connect(tmp_path / DB_NAME).execute("SELECT notes FROM episodes").fetchall()
    assert notes == [("from v2",)]
    RunStore(tmp_path).close()  # up to date: nothing runs again
    assert steps == [1, 2]


def test_reading_an_older_store_migrates_a_copy_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1_store(tmp_path)
    before = (tmp_path / DB_NAME).read_bytes()
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", {1: _add_notes})
    with RunStore.open_existing(tmp_path) as store:
        assert store.read_only and [e.key.task_id for e in store.episodes()] == ["t1"]
        assert store.run() == StoredRun("run-1", "h", {"k": 1})
    assert (tmp_path / DB_NAME).read_bytes() == before and _schema_version(tmp_path) == "1"


def test_a_newer_store_or_a_missing_step_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1_store(tmp_path)
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", {})
    with pytest.raises(StoreError, match="store schema 1 has no migration to 2"):
        RunStore(tmp_path)
    monkeypatch.setattr(sqlite_store, "SCHEMA_VERSION", 0)
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"newer mulligan .*upgrade mulligan"):
            RunStore(tmp_path, read_only=read_only)


def test_a_read_only_store_refuses_writes_and_leaves_the_file_alone(tmp_path: Path) -> None:
    _v1_store(tmp_path)
    before = (tmp_path / DB_NAME).read_bytes()
    with RunStore.open_existing(tmp_path) as store, pytest.raises(StoreError, match="cannot"):
        store.save_episode(_episode("t2"))
    assert (tmp_path / DB_NAME).read_bytes() == before


def test_a_sqlite_file_of_something_else_is_no_run(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / DB_NAME).execute("CREATE TABLE other (x)").connection.commit()
    with pytest.raises(StoreError, match="holds no mulligan run"):
        RunStore.open_existing(tmp_path)


def test_malformed_rows_are_skipped_and_rerun_on_resume(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        store.create_run("run-1", "h", {})
        for task_id in ("t1", "t2", "t3"):
            store.save_episode(_episode(task_id))
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("UPDATE episodes SET record='[]' WHERE task_id='t1'")  # JSON, but no episode
    db.execute("UPDATE events SET data='{' WHERE episode_id LIKE '%t2%'")
    db.commit()
    db.close()
    with RunStore.open_existing(tmp_path) as store:
        assert [e.key.task_id for e in store.episodes()] == ["t3"]
        assert len(store.skipped) == 2
    with RunStore(tmp_path) as store:  # resume runs both again
        assert store.finished_keys() == {_episode("t3").id}


def test_a_first_schema_store_gets_the_branch_columns_and_keeps_its_episodes(
    tmp_path: Path,
) -> None:
    _v1_store(tmp_path)
    with RunStore.open_existing(tmp_path) as store:  # read: migrated in memory only
        (old,) = store.episodes()
        assert (old.parent_episode, old.branch_turn, old.branch) == (None, None, None)
    assert _schema_version(tmp_path) == "1"
    branch = _episode("t2").model_copy(
        update={"parent_episode": "mbpp/t1#0", "branch_turn": 2, "branch": 3}
    )
    with RunStore(tmp_path) as store:  # write: migrated in the file
        store.save_episode(branch)
        assert [e.branch for e in store.episodes()] == [None, 3]
    assert _schema_version(tmp_path) == str(sqlite_store.SCHEMA_VERSION)
    db = sqlite3.connect(tmp_path / DB_NAME)
    rows = db.execute(
        "SELECT task_id, parent_episode, branch_turn, branch FROM episodes ORDER BY task_id"
    ).fetchall()
    db.close()
    assert rows == [("t1", None, None, None), ("t2", "mbpp/t1#0", 2, 3)]
