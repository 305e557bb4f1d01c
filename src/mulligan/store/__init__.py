"""The SQLite run store: runs, episodes and their events, and finding run directories."""

from mulligan.store.runs import find_runs
from mulligan.store.sqlite import DB_NAME, RunStore, StoredRun, StoreError

__all__ = ["DB_NAME", "RunStore", "StoreError", "StoredRun", "find_runs"]
