"""Run discovery: the run directories (each holds one ``mulligan.sqlite``) under a root directory."""

from __future__ import annotations

from pathlib import Path

from mulligan.store.sqlite import DB_NAME


def find_runs(root: Path) -> list[Path]:
    """Every directory at or below ``root`` that holds a run database, sorted by path.

    Importers write one run directory per configuration (e.g. per MINT model x feedback x k),
    so a report over an import root starts here.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    return sorted(db.parent for db in root.rglob(DB_NAME) if db.is_file())
