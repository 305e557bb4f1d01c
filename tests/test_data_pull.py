"""``pull_mint``: copies and downloads of MINT's task files, verified against pinned hashes."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mulligan.tasks import (
    MINT_COMMIT,
    MINT_SHA256,
    MINT_SUITES,
    DataChecksumError,
    TaskDataError,
    load_suite,
    pull_mint,
)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_pulled(dest: Path, paths: list[Path]) -> None:
    assert paths == [dest / "processed" / s / "test_prompts.json" for s in MINT_SUITES]
    for suite, path in zip(MINT_SUITES, paths, strict=True):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == MINT_SHA256[suite]
    assert tree(dest) == sorted(f"processed/{s}/test_prompts.json" for s in MINT_SUITES)


def test_pinned_hashes_match_the_shared_upstream_files(mint_dir: Path) -> None:
    for suite in MINT_SUITES:
        content = (mint_dir / "processed" / suite / "test_prompts.json").read_bytes()
        assert hashlib.sha256(content).hexdigest() == MINT_SHA256[suite]
    assert len(MINT_COMMIT) == 40 and MINT_COMMIT.startswith("3f7f12c")


# --- local sources ----------------------------------------------------------------------------


def test_pull_from_a_directory_like_the_shared_data(mint_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    paths = pull_mint(dest, str(mint_dir.parent))  # a directory holding mint/processed
    assert_pulled(dest, paths)
    assert len(load_suite("mint", dest)) == 452


@pytest.mark.parametrize("layout", ["checkout", "processed"])
def test_pull_from_a_checkout_or_its_processed_dir(
    layout: str, mint_dir: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "mint-bench"
    shutil.copytree(mint_dir / "processed", checkout / "data" / "processed")
    source = checkout if layout == "checkout" else checkout / "data" / "processed"
    dest = tmp_path / "data"
    assert_pulled(dest, pull_mint(dest, str(source)))


def test_pull_from_an_incomplete_directory_names_what_is_missing(
    mint_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "partial"
    shutil.copytree(mint_dir / "processed", source)
    shutil.rmtree(source / "mbpp")
    dest = tmp_path / "data"
    with pytest.raises(TaskDataError, match=r"holds no mbpp/test_prompts\.json"):
        pull_mint(dest, str(source))
    assert not dest.exists()  # nothing written: verification happens before any write


def test_pull_refuses_a_modified_local_file(mint_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "processed"
    shutil.copytree(mint_dir / "processed", source)
    with (source / "math" / "test_prompts.json").open("a") as handle:
        handle.write("\n")
    dest = tmp_path / "data"
    with pytest.raises(DataChecksumError) as info:
        pull_mint(dest, str(source))
    assert "math/test_prompts.json" in str(info.value)
    assert MINT_SHA256["math"] in str(info.value)
    assert not dest.exists()


def test_pull_is_idempotent_and_offline_when_done(mint_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "data"
    pull_mint(dest, str(mint_dir))

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    with httpx.Client(transport=httpx.MockTransport(no_network)) as client:
        assert_pulled(dest, pull_mint(dest, client=client))


# --- downloads --------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(mint_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a copy of MINT's processed dir; yields (URL, dir)."""
    root = tmp_path / "served"
    shutil.copytree(mint_dir / "processed", root / "processed")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/processed", root / "processed"
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_a_local_server(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dest = tmp_path / "data"
    assert_pulled(dest, pull_mint(dest, url))


def test_download_with_a_url_template(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dest = tmp_path / "data"
    assert_pulled(dest, pull_mint(dest, url + "/{task}/test_prompts.json"))


def test_corrupted_download_is_refused_and_nothing_is_written(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = served
    corrupted = root / "hotpotqa" / "test_prompts.json"
    corrupted.write_bytes(corrupted.read_bytes().replace(b"yes", b"no"))
    actual = hashlib.sha256(corrupted.read_bytes()).hexdigest()
    dest = tmp_path / "data"
    with pytest.raises(DataChecksumError) as info:
        pull_mint(dest, url)
    message = str(info.value)
    assert "hotpotqa/test_prompts.json" in message
    assert MINT_SHA256["hotpotqa"] in message and actual in message
    assert f"{url}/hotpotqa/test_prompts.json" in message
    assert info.value.expected == MINT_SHA256["hotpotqa"] and info.value.actual == actual
    assert not dest.exists() or tree(dest) == []


def test_missing_download_names_the_url(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    (root / "gsm8k" / "test_prompts.json").unlink()
    with pytest.raises(TaskDataError, match=r"gsm8k/test_prompts\.json: HTTP 404"):
        pull_mint(tmp_path / "data", url)


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError, match=r"could not download http://127\.0\.0\.1:9/"):
        pull_mint(tmp_path / "data", "http://127.0.0.1:9", timeout_s=2)


def test_default_source_is_github_at_the_pinned_commit(mint_dir: Path, tmp_path: Path) -> None:
    requested: list[str] = []

    def github(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        suite = request.url.path.split("/")[-2]
        return httpx.Response(
            200, content=(mint_dir / "processed" / suite / "test_prompts.json").read_bytes()
        )

    dest = tmp_path / "data"
    with httpx.Client(transport=httpx.MockTransport(github)) as client:
        assert_pulled(dest, pull_mint(dest, client=client))
    assert requested == [
        f"https://raw.githubusercontent.com/xingyaoww/mint-bench/{MINT_COMMIT}/data/processed/"
        f"{suite}/test_prompts.json"
        for suite in MINT_SUITES
    ]


def test_default_destination_respects_the_environment(
    mint_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULLIGAN_DATA_DIR", str(tmp_path / "from-env"))
    assert_pulled(tmp_path / "from-env", pull_mint(source=str(mint_dir)))


def test_alfworld_games_are_pulled_and_verified(mint_dir: Path, tmp_path: Path) -> None:
    from mulligan.tasks.alfworld_data import alfworld_files, pull_alfworld
    from mulligan.tasks.suites import load_suite

    if not (mint_dir / "processed" / "alfworld" / "gamefile_id.txt").is_file():
        pytest.skip("ALFWorld data not in the shared data")
    target = pull_alfworld(tmp_path, str(mint_dir))
    assert len(alfworld_files()) == 1 + 2 * 134
    assert len(load_suite("alfworld", tmp_path)) == 134
    game = next(p for p in alfworld_files() if p.endswith("gt_traj.txt"))
    (target / game).write_text("changed")
    pull_alfworld(tmp_path, str(mint_dir))  # a changed file is fetched again
    assert (target / game).read_bytes() == (mint_dir / "processed" / "alfworld" / game).read_bytes()
    source = tmp_path / "bad" / "processed" / "alfworld"
    source.mkdir(parents=True)
    (source / "gamefile_id.txt").write_text("x\n")
    with pytest.raises(DataChecksumError, match=r"gamefile_id\.txt"):
        pull_alfworld(tmp_path / "dest", str(tmp_path / "bad"))
    assert not (tmp_path / "dest").exists()
