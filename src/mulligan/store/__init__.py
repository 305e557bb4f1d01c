"""The SQLite run store: runs, episodes and their events."""

from mulligan.store.sqlite import DB_NAME, RunStore, StoredRun, StoreError

__all__ = ["DB_NAME", "RunStore", "StoreError", "StoredRun"]
