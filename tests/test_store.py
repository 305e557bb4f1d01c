"""The SQLite run store: round trip, replace, resume keys, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mulligan.events import ActionEvent, Episode, EpisodeKey, ModelCallEvent
from mulligan.store import DB_NAME, RunStore, StoredRun, StoreError


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
