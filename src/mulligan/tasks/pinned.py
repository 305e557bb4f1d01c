"""Pinned third-party data files: where each lies in a data directory, where it comes from, and
the SHA-256 that ``mulligan data pull`` checks before writing it.

A :class:`Dataset` is what ``mulligan data pull NAME`` fetches (``gsm8k``, ``mbpp``, ...): a few
:class:`PinnedFile` records, each stored under ``<data dir>/<path>``, the layout of the project's
shared data (``gsm8k/test.jsonl``, ``humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz``...), so a
copy of that directory is itself a data directory. Suite modules declare their datasets here and
read their files with :func:`locate` and :func:`read_text`; the pull itself is in
:mod:`mulligan.tasks.data`.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mulligan.tasks.errors import TaskDataError

MAX_UNPACKED_BYTES = 64_000_000
"""The largest decompressed file read (HumanEval+ is 7.7 MB): a bound on a damaged archive."""


@dataclass(frozen=True)
class PinnedFile:
    """One data file as stored in a data directory, and its upstream source.

    ``sha256`` and ``size`` are those of the *stored* bytes. Most files are stored as upstream
    serves them; ``convert`` turns upstream bytes into the stored form where upstream's is not
    one record per line (a JSON array, an object of lists), and the stored hash then pins the
    converted result, which is the same whatever the source's formatting. A gzipped file is kept
    compressed; ``content_sha256`` pins its decompressed content, checked when it is pulled.
    """

    path: str
    url: str
    sha256: str
    size: int
    convert: Callable[[bytes], bytes] | None = None
    content_sha256: str | None = None

    @property
    def max_bytes(self) -> int:
        """The most bytes accepted from a source: a little more than upstream's form needs."""
        return max(4 * self.size, 1_000_000)


@dataclass(frozen=True)
class Dataset:
    """What ``mulligan data pull <name>`` fetches and verifies."""

    name: str
    description: str
    licence: str
    files: tuple[PinnedFile, ...]


def data_root(data_dir: Path | None) -> Path:
    """The data directory to read: ``data_dir``, else ``$MULLIGAN_DATA_DIR`` or the default."""
    # Imported here: mint.py reads its records through this module (records.py).
    from mulligan.tasks.mint import default_data_dir

    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def locate(file: PinnedFile, dataset: str, data_dir: Path | None) -> Path:
    """The path of ``file`` under the data directory, or a :class:`TaskDataError` saying how to
    get it."""
    root = data_root(data_dir)
    path = root / file.path
    if path.is_file():
        return path
    raise TaskDataError(
        f"{dataset} data not found: expected {path}. Fix: run `mulligan data pull {dataset}` "
        f"(writes to {root}), or pass --data-dir pointing at a directory that holds {file.path}."
    )


def unpack(content: bytes, origin: str) -> bytes:
    """``content`` decompressed when it is gzip (by its magic bytes), else as it is."""
    if not content.startswith(b"\x1f\x8b"):
        return content
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as archive:
            data = archive.read(MAX_UNPACKED_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise TaskDataError(f"{origin}: not a readable gzip file ({exc})") from exc
    if len(data) > MAX_UNPACKED_BYTES:
        raise TaskDataError(f"{origin}: decompresses to more than {MAX_UNPACKED_BYTES} bytes")
    return data


def read_text(path: Path) -> str:
    """A data file's text, decompressed if it is gzipped; a :class:`TaskDataError` if it is not
    UTF-8."""
    try:
        content = unpack(path.read_bytes(), str(path))
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskDataError(f"{path}: not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise TaskDataError(f"{path}: cannot be read ({exc})") from exc
