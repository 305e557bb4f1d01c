"""Fetching task data (``mulligan data pull NAME``), verified against pinned SHA-256s.

``mint`` (:func:`pull_mint`) and the pinned datasets of :data:`DATASETS` (GSM8K, MATH-500, MBPP,
HumanEval+, MBPP+, RefineBench: :func:`pull_dataset`, files declared beside their suites with
:class:`~mulligan.tasks.pinned.PinnedFile`). For MINT:

The seven ``processed/<task>/test_prompts.json`` files of MINT at commit 3f7f12c are copied
from a local directory or downloaded from GitHub into ``<dest>/processed/<task>/``. Every file
is checked against :data:`MINT_SHA256` before anything is written, and each file is written to
a temporary name then renamed, so a failed pull leaves no partial or unverified file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from mulligan.tasks.errors import DataChecksumError, TaskDataError
from mulligan.tasks.evalplus import HUMANEVALPLUS_DATA, MBPPPLUS_DATA
from mulligan.tasks.gsm8k import GSM8K_DATA
from mulligan.tasks.math500 import MATH500_DATA
from mulligan.tasks.mbpp import MBPP_DATA
from mulligan.tasks.mint import DATA_FILE_NAME, MINT_SUITES, candidate_paths, default_data_dir
from mulligan.tasks.pinned import Dataset, PinnedFile, unpack
from mulligan.tasks.refinebench import REFINEBENCH_DATA

MINT_COMMIT = "3f7f12c10bf763be1e6dbdeb42feb57624121f61"
"""The MINT commit whose data mulligan pins (xingyaoww/mint-bench)."""

MINT_URL_TEMPLATE = (
    "https://raw.githubusercontent.com/xingyaoww/mint-bench/{commit}/data/processed/"
    "{task}/" + DATA_FILE_NAME
)

MINT_SHA256: dict[str, str] = {
    "gsm8k": "cb64217de242508aa95ececfffde657c507d244ae434bfed80b9663a331e3006",
    "hotpotqa": "3d85c77e4c8c25c8c8f7415fb29067be0d13b5a784ab45b6a89900f04e693282",
    "humaneval": "4928a066639367b11c18d903816d6c5705073694c974892371fe9d30f5b6a75d",
    "math": "48a8c50efe9a206ca2cc634192545ed132596846fcd07631d5de2f4c6b54642d",
    "mbpp": "5aa7dd825467a624b400f4a18c95f23211019bb9da76c9041288b44b315538b6",
    "mmlu": "77bd8aa372ddabb587392d7c9c7d275b75ac32d31fdbc836f1faa4d66d4300c3",
    "theoremqa": "0a66cce3ccfbb3645fb26c5c37951c7043284f9c82c04121a2bd0102abe12779",
}
"""SHA-256 of each suite's ``test_prompts.json`` at :data:`MINT_COMMIT`."""

MAX_FILE_BYTES = 10_000_000
"""A MINT task file is under 100 kB; refuse to hold more than this in memory."""


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _url_for(task: str, source: str | None) -> str:
    if source is None:
        return MINT_URL_TEMPLATE.format(commit=MINT_COMMIT, task=task)
    if "{task}" in source:
        return source.format(task=task)
    return f"{source.rstrip('/')}/{task}/{DATA_FILE_NAME}"


_MINT_LOCAL_COPY = "MINT's data/processed directory"


def _download(
    client: httpx.Client,
    url: str,
    max_bytes: int = MAX_FILE_BYTES,
    local_copy: str = _MINT_LOCAL_COPY,
) -> bytes:
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise TaskDataError(
                    f"could not download {url}: HTTP {response.status_code}. Fix: check the URL "
                    f"or pass --from with a local copy of {local_copy}."
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise TaskDataError(f"{url} is larger than {max_bytes} bytes; refused")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise TaskDataError(
            f"could not download {url}: {exc.__class__.__name__}: {exc}. Fix: check the network, "
            f"or pass --from with a local copy of {local_copy}."
        ) from exc


def _read_local(task: str, root: Path) -> tuple[bytes, str]:
    for path in candidate_paths(root, task):
        if path.is_file():
            if path.stat().st_size > MAX_FILE_BYTES:
                raise TaskDataError(f"{path} is larger than {MAX_FILE_BYTES} bytes; refused")
            return path.read_bytes(), str(path)
    raise TaskDataError(
        f"{root} holds no {task}/{DATA_FILE_NAME} (looked for "
        f"{', '.join(str(p) for p in candidate_paths(root, task))}). Fix: point --from at a "
        "MINT checkout, its data/processed directory, or a directory holding mint/processed."
    )


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def pull_mint(
    dest: Path | None = None,
    source: str | None = None,
    *,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
) -> list[Path]:
    """Put MINT's seven task files under ``dest/processed/<task>/test_prompts.json``.

    Args:
        dest: the data directory; default ``$MULLIGAN_DATA_DIR`` or ``~/.cache/mulligan/data``.
        source: where to take the files from. None downloads them from GitHub at
            :data:`MINT_COMMIT`. A local path may be a MINT checkout, its ``data/processed``
            directory, or a directory holding ``mint/processed``. An ``http(s)://`` URL is the
            base of a ``<task>/test_prompts.json`` tree, or a template containing ``{task}``.
        timeout_s: network timeout per request.
        client: an ``httpx.Client`` to use instead of a fresh one (tests, proxies).

    Returns the seven written paths, in :data:`MINT_SUITES` order. Files already present with
    the pinned hash are kept as they are. Raises :class:`DataChecksumError` when a file does not
    match its pinned hash and :class:`TaskDataError` when one cannot be read; in both cases
    nothing is written.
    """
    dest = Path(dest).expanduser() if dest is not None else default_data_dir()
    targets = {task: dest / "processed" / task / DATA_FILE_NAME for task in MINT_SUITES}
    wanted = [
        task
        for task, path in targets.items()
        if not (path.is_file() and _sha256(path.read_bytes()) == MINT_SHA256[task])
    ]

    # Fetch and verify everything first, so that one bad file leaves the directory untouched.
    fetched: dict[str, bytes] = {}
    if wanted and source is not None and not _is_url(source):
        root = Path(source).expanduser()
        if not root.is_dir():
            raise TaskDataError(f"--from {root} is not a directory")
        for task in wanted:
            content, origin = _read_local(task, root)
            _verify(task, content, origin)
            fetched[task] = content
    elif wanted:
        own_client = client is None
        http = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
        try:
            for task in wanted:
                url = _url_for(task, source)
                content = _download(http, url)
                _verify(task, content, url)
                fetched[task] = content
        finally:
            if own_client:
                http.close()

    for task, content in fetched.items():
        _write_atomically(targets[task], content)
    return [targets[task] for task in MINT_SUITES]


def _verify(task: str, content: bytes, origin: str) -> None:
    actual = _sha256(content)
    if actual != MINT_SHA256[task]:
        raise DataChecksumError(
            f"{task}/{DATA_FILE_NAME}", expected=MINT_SHA256[task], actual=actual, origin=origin
        )


# --- Pinned datasets beyond MINT (GSM8K, MATH-500, MBPP, EvalPlus, RefineBench) ---------------


def _mirror_url(file: PinnedFile, base: str) -> str:
    """Where a mirror at ``base`` serves ``file``: the path of its upstream URL under ``base``."""
    return f"{base.rstrip('/')}/{urlsplit(file.url).path.lstrip('/')}"


def _fetch(file: PinnedFile, source: str | None, http: httpx.Client | None) -> tuple[bytes, str]:
    """The upstream form of ``file`` (before any conversion) and where it came from."""
    if source is not None and not _is_url(source):
        path = Path(source).expanduser() / file.path
        if not path.is_file():
            raise TaskDataError(
                f"--from {source} holds no {file.path}. Fix: point --from at a data directory "
                f"that holds {file.path} (such as another machine's mulligan data directory)."
            )
        if path.stat().st_size > file.max_bytes:
            raise TaskDataError(f"{path} is larger than {file.max_bytes} bytes; refused")
        return path.read_bytes(), str(path)
    assert http is not None
    url = file.url if source is None else _mirror_url(file, source)
    return _download(http, url, file.max_bytes, f"the {file.path} data"), url


def _stored_form(file: PinnedFile, content: bytes, origin: str, from_upstream: bool) -> bytes:
    """The bytes to store: upstream's converted when the file has a converter. A local copy
    (``--from DIR``) is already in stored form; a stored-form file also passes through an
    upstream URL untouched, so a mirror may serve either."""
    if file.convert is None or not from_upstream or _sha256(content) == file.sha256:
        return content
    try:
        return file.convert(content)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise TaskDataError(
            f"{origin}: not in the upstream format of {file.path} ({exc.__class__.__name__}: "
            f"{exc}); the file was not written"
        ) from exc


def _verify_pinned(dataset: Dataset, file: PinnedFile, stored: bytes, origin: str) -> None:
    fix = (
        f"The source is not {dataset.name}'s pinned data: use the default download, or point "
        "--from at an unmodified copy."
    )
    actual = _sha256(stored)
    if actual != file.sha256:
        raise DataChecksumError(file.path, file.sha256, actual, origin, fix=fix)
    if file.content_sha256 is not None:
        content = _sha256(unpack(stored, origin))
        if content != file.content_sha256:
            name = f"{file.path} (decompressed)"
            raise DataChecksumError(name, file.content_sha256, content, origin, fix=fix)


def pull_dataset(
    dataset: Dataset,
    dest: Path | None = None,
    source: str | None = None,
    *,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
) -> list[Path]:
    """Put a dataset's files under ``dest/<file.path>``, each verified against its pin.

    Args:
        dataset: what to fetch (see :data:`DATASETS`).
        dest: the data directory; default ``$MULLIGAN_DATA_DIR`` or ``~/.cache/mulligan/data``.
        source: None downloads from upstream. A local directory is a data directory holding the
            files in stored form (e.g. the project's shared data); an ``http(s)://`` base is a
            mirror serving each file at its upstream URL's path.
        timeout_s: network timeout per request.
        client: an ``httpx.Client`` to use instead of a fresh one (tests, proxies).

    Returns the paths of the dataset's files. Files already present with the pinned hash are
    kept. Everything is fetched, converted and verified before anything is written, so a bad
    file (:class:`DataChecksumError`) or an unreadable one (:class:`TaskDataError`) leaves the
    directory as it was.
    """
    dest = Path(dest).expanduser() if dest is not None else default_data_dir()
    wanted = [
        f
        for f in dataset.files
        if not ((dest / f.path).is_file() and _sha256((dest / f.path).read_bytes()) == f.sha256)
    ]
    if source is not None and not _is_url(source) and not Path(source).expanduser().is_dir():
        raise TaskDataError(f"--from {source} is not a directory")
    fetched: dict[str, bytes] = {}
    own_client = client is None and bool(wanted) and (source is None or _is_url(source))
    http = httpx.Client(timeout=timeout_s, follow_redirects=True) if own_client else client
    try:
        for file in wanted:
            raw, origin = _fetch(file, source, http)
            stored = _stored_form(file, raw, origin, source is None or _is_url(source))
            _verify_pinned(dataset, file, stored, origin)
            fetched[file.path] = stored
    finally:
        if own_client and http is not None:
            http.close()
    for path, content in fetched.items():
        _write_atomically(dest / path, content)
    return [dest / f.path for f in dataset.files]


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        GSM8K_DATA,
        MATH500_DATA,
        MBPP_DATA,
        HUMANEVALPLUS_DATA,
        MBPPPLUS_DATA,
        REFINEBENCH_DATA,
    )
}
"""Every dataset ``mulligan data pull`` knows besides ``mint`` (which :func:`pull_mint` fetches)."""


def dataset_names() -> tuple[str, ...]:
    """The names ``mulligan data pull`` accepts: ``mint`` and :data:`DATASETS`."""
    return ("mint", *DATASETS)
