"""``mulligan data pull`` for the pinned datasets (GSM8K, MATH-500, MBPP, RefineBench...):
downloads from a mirror on 127.0.0.1 serving upstream's form of each file (built from
``../shared/data``), conversion of upstream's JSON into the stored JSONL, checksum refusal
with nothing written, local copies, and the default upstream URLs. No test reaches the network.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from conftest import require_shared
from mulligan.cli import app
from mulligan.tasks import DataChecksumError, TaskDataError
from mulligan.tasks.data import DATASETS, pull_dataset
from mulligan.tasks.pinned import Dataset, PinnedFile

PULLED = [name for name in DATASETS]


def _shared(dataset: Dataset) -> Path:
    return require_shared(*(f.path for f in dataset.files))


def upstream_form(file: PinnedFile, stored: bytes) -> bytes:
    """What upstream serves for a file stored as ``stored``: converted files are rebuilt in
    upstream's shape (a JSON array; an object of lists by field), indented unlike the stored
    form, so the conversion is what makes the hash match."""
    if file.path.endswith("sanitized-mbpp.jsonl"):
        records = [json.loads(line) for line in stored.decode().splitlines()]
        return json.dumps(records, indent=2).encode()
    if file.path.startswith("refinebench/"):
        grouped: dict[str, list[object]] = {}
        for line in stored.decode("utf-8").split("\n"):
            if line:
                record = json.loads(line)
                grouped.setdefault(record["field"], []).append(record)
        return json.dumps(grouped, indent="\t", ensure_ascii=False).encode("utf-8")
    assert file.convert is None
    return stored


def mirror_path(file: PinnedFile) -> str:
    return urlsplit(file.url).path.lstrip("/")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server on 127.0.0.1 serving every pinned file at its upstream URL's path, in
    upstream's form; yields (base URL, served directory)."""
    root = tmp_path / "mirror"
    for dataset in DATASETS.values():
        shared = _shared(dataset)
        for file in dataset.files:
            target = root / mirror_path(file)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upstream_form(file, (shared / file.path).read_bytes()))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", PULLED)
def test_pull_from_a_mirror_stores_the_pinned_bytes(
    name: str, mirror: tuple[str, Path], tmp_path: Path
) -> None:
    dataset = DATASETS[name]
    dest = tmp_path / "data"
    paths = pull_dataset(dataset, dest, mirror[0])
    assert paths == [dest / f.path for f in dataset.files]
    for file in dataset.files:
        assert (dest / file.path).read_bytes() == (_shared(dataset) / file.path).read_bytes()


def test_a_tampered_download_is_refused_and_nothing_is_written(
    mirror: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = mirror
    mbpp = DATASETS["mbpp"]
    full = root / mirror_path(mbpp.files[0])
    full.write_bytes(full.read_bytes().replace(b"assert", b"assert ", 1))
    dest = tmp_path / "data"
    with pytest.raises(DataChecksumError) as caught:
        pull_dataset(mbpp, dest, base)
    assert "mbpp/mbpp.jsonl" in str(caught.value) and base in str(caught.value)
    assert not dest.exists() or not any(dest.rglob("*"))  # not even the good sanitized file


def test_upstream_in_the_wrong_shape_is_a_clear_error(
    mirror: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = mirror
    refinebench = DATASETS["refinebench"]
    (root / mirror_path(refinebench.files[0])).write_text('["not", "grouped"]')
    with pytest.raises(TaskDataError, match="not in the upstream format"):
        pull_dataset(refinebench, tmp_path / "data", base)


def test_a_missing_file_names_the_url(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base, root = mirror
    gsm8k = DATASETS["gsm8k"]
    (root / mirror_path(gsm8k.files[0])).unlink()
    with pytest.raises(TaskDataError, match="HTTP 404") as caught:
        pull_dataset(gsm8k, tmp_path / "data", base)
    assert mirror_path(gsm8k.files[0]) in str(caught.value)


def test_pull_from_a_local_copy_then_offline(tmp_path: Path) -> None:
    mbpp = DATASETS["mbpp"]
    dest = tmp_path / "data"
    pull_dataset(mbpp, dest, str(_shared(mbpp)))

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.url}")

    with httpx.Client(transport=httpx.MockTransport(no_network)) as client:
        pull_dataset(mbpp, dest, client=client)  # everything verified in place: no download


def test_default_source_is_upstream_at_the_pinned_commit(tmp_path: Path) -> None:
    dataset = DATASETS["gsm8k"]
    body = (_shared(dataset) / dataset.files[0].path).read_bytes()
    seen: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=body)

    with httpx.Client(transport=httpx.MockTransport(upstream)) as client:
        pull_dataset(dataset, tmp_path / "data", client=client)
    assert seen == [
        "https://raw.githubusercontent.com/openai/grade-school-math/"
        "3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl"
    ]


def test_gzipped_files_are_checked_after_decompressing(tmp_path: Path) -> None:
    """An archive whose bytes match but whose content pin does not is refused (the pin of a
    ``.gz`` file covers both), and a good one is stored compressed."""
    content = b'{"task_id": "x"}\n'
    archive = gzip.compress(content, mtime=0)
    import hashlib

    def pinned(content_sha: str) -> Dataset:
        file = PinnedFile(
            path="toy/data.jsonl.gz",
            url="https://example.invalid/toy/data.jsonl.gz",
            sha256=hashlib.sha256(archive).hexdigest(),
            size=len(archive),
            content_sha256=content_sha,
        )
        return Dataset(name="toy", description="", licence="", files=(file,))

    source = tmp_path / "src" / "toy"
    source.mkdir(parents=True)
    (source / "data.jsonl.gz").write_bytes(archive)
    good = pinned(hashlib.sha256(content).hexdigest())
    (stored,) = pull_dataset(good, tmp_path / "ok", str(tmp_path / "src"))
    assert stored.read_bytes() == archive
    with pytest.raises(DataChecksumError, match="decompressed"):
        pull_dataset(pinned("0" * 64), tmp_path / "bad", str(tmp_path / "src"))
    assert not (tmp_path / "bad" / "toy").exists()


def test_cli_pulls_by_dataset_or_suite_name(mirror: tuple[str, Path], tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    dest = tmp_path / "data"
    result = runner.invoke(
        app, ["data", "pull", "gsm8k-test", "--from", mirror[0], "--data-dir", str(dest)]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and (dest / "gsm8k" / "test.jsonl").is_file()
    listed = runner.invoke(app, ["suites", "--data-dir", str(dest)])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if "gsm8k-test" in line)
    assert "1319" in row
    assert "mulligan data pull math500" in listed.output  # not pulled here: says how
    unknown = runner.invoke(app, ["data", "pull", "nosuch"])
    assert unknown.exit_code == 2
    assert "gsm8k" in unknown.output and "refinebench" in unknown.output
