"""Fetching MINT's ALFWorld games (part of ``mulligan data pull mint``), verified file by file.

MINT keeps its 134 ALFWorld games under ``data/processed/alfworld`` of its repository. mulligan
needs ``gamefile_id.txt`` and, per game, ``game.tw-pddl`` (the game) and ``gt_traj.txt`` (the
expert's actions): 269 files, each pinned by SHA-256 in ``alfworld_files.json``. They are copied
from a local MINT checkout (``--from``) or downloaded from GitHub at :data:`MINT_COMMIT` into
``<dest>/processed/alfworld/``; every file is verified before it is written, and written
atomically, as :func:`~mulligan.tasks.data.pull_mint` does for the text suites.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import httpx

from mulligan.tasks.data import (
    MINT_COMMIT,
    _download,
    _is_url,
    _sha256,
    _write_atomically,
)
from mulligan.tasks.errors import DataChecksumError, TaskDataError
from mulligan.tasks.mint import default_data_dir

ALFWORLD_URL_TEMPLATE = (
    "https://raw.githubusercontent.com/xingyaoww/mint-bench/{commit}/data/processed/alfworld/{path}"
)


@cache
def alfworld_files() -> dict[str, str]:
    """Relative path under ``processed/alfworld`` -> its pinned SHA-256."""
    text = resources.files("mulligan.tasks").joinpath("alfworld_files.json").read_text()
    return dict(json.loads(text)["files"])


def _local_root(source: Path) -> Path:
    for candidate in (
        source / "data" / "processed" / "alfworld",
        source / "processed" / "alfworld",
        source / "mint" / "processed" / "alfworld",
        source / "alfworld",
        source,
    ):
        if (candidate / "gamefile_id.txt").is_file():
            return candidate
    raise TaskDataError(
        f"{source} holds no ALFWorld games (looked for data/processed/alfworld/gamefile_id.txt "
        "and the other layouts of MINT's data). Fix: point --from at a MINT checkout."
    )


def _verify(path: str, content: bytes, origin: str) -> None:
    expected = alfworld_files()[path]
    actual = _sha256(content)
    if actual != expected:
        raise DataChecksumError(f"alfworld/{path}", expected=expected, actual=actual, origin=origin)


def pull_alfworld(
    dest: Path | None = None,
    source: str | None = None,
    *,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
) -> Path:
    """Put MINT's ALFWorld files under ``dest/processed/alfworld``; returns that folder.

    ``source``: None (GitHub at :data:`MINT_COMMIT`), a local MINT checkout or data folder, or
    an ``http(s)://`` base URL of a ``processed/alfworld`` tree. Files already present with the
    pinned hash are kept. A file that does not match its hash raises
    :class:`DataChecksumError` before anything is written."""
    dest = Path(dest).expanduser() if dest is not None else default_data_dir()
    target = dest / "processed" / "alfworld"
    files = alfworld_files()
    wanted = [
        path
        for path, digest in files.items()
        if not ((target / path).is_file() and _sha256((target / path).read_bytes()) == digest)
    ]
    fetched: dict[str, bytes] = {}
    if wanted and source is not None and not _is_url(source):
        root = _local_root(Path(source).expanduser())
        for path in wanted:
            if not (root / path).is_file():
                raise TaskDataError(f"{root / path} is missing; --from needs all 134 games")
            content = (root / path).read_bytes()
            _verify(path, content, str(root / path))
            fetched[path] = content
    elif wanted:
        http = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
        try:
            for path in wanted:
                url = (
                    f"{source.rstrip('/')}/{path}"
                    if source
                    else ALFWORLD_URL_TEMPLATE.format(commit=MINT_COMMIT, path=path)
                )
                content = _download(http, url)
                _verify(path, content, url)
                fetched[path] = content
        finally:
            if client is None:
                http.close()
    for path, content in fetched.items():
        _write_atomically(target / path, content)
    return target
