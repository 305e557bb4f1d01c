"""Shared fixtures: the shared MINT data location, a real sandbox pool, small task lists."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("MULLIGAN_TEST_LOOP") == "uvloop":
    # ``MULLIGAN_TEST_LOOP=uvloop pytest ...``: async tests on uvloop, the loop ``mulligan run``
    # uses where it is installed (engine/eventloop.py), instead of pytest-asyncio's default.
    # (Commands run through the CLI use it anyway.) Needs pytest-asyncio's loop-factory hook.
    import uvloop

    @pytest.hookimpl(optionalhook=True)
    def pytest_asyncio_loop_factories(config: object, item: object) -> dict[str, object]:
        return {"uvloop": uvloop.new_event_loop}


def shared_mint_dir() -> Path:
    """``../shared/data/mint`` beside the repository, or $MULLIGAN_SHARED_DATA/mint."""
    root = os.environ.get("MULLIGAN_SHARED_DATA")
    base = Path(root) if root else REPO.parent / "shared" / "data"
    return base / "mint"


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository, or $MULLIGAN_SHARED_DATA: a data directory
    for every pinned dataset (its layout is the one ``mulligan data pull`` writes)."""
    root = os.environ.get("MULLIGAN_SHARED_DATA")
    return Path(root) if root else REPO.parent / "shared" / "data"


def require_shared(*relative: str) -> Path:
    """The shared data directory, or a skip naming the first of ``relative`` that is missing."""
    base = shared_data_dir()
    for name in relative:
        if not (base / name).is_file():
            pytest.skip(
                f"{name} not found in {base} (third-party data lives in ../shared/data; "
                "`mulligan data pull` fetches it)"
            )
    return base


@pytest.fixture(scope="session")
def mint_dir() -> Path:
    path = shared_mint_dir()
    if not (path / "processed").is_dir():
        pytest.skip(f"MINT data not found at {path} (third-party data lives in ../shared/data)")
    return path


@pytest.fixture
async def sandboxes() -> AsyncIterator[object]:
    from mulligan.sandbox import SandboxLimits, SandboxPool

    pool = SandboxPool(size=2, limits=SandboxLimits(cell_timeout_s=5.0))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()
