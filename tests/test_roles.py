"""Model roles: per-role sampling settings, concurrency limits, and feedback calls recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mulligan.config import ConfigError, RunConfig
from mulligan.engine import execute_run
from mulligan.events import Message
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.models.roles import RoleModel
from mulligan.store import RunStore


class SlowEcho:
    """Records parameters and peak concurrency; answers with a fixed critique."""

    def __init__(self) -> None:
        self.name = "test/critic"
        self.params: list[GenerateParams] = []
        self.in_flight = 0
        self.peak = 0

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.params.append(params)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return Completion(
            text="Check your arithmetic in the last step.",
            model=self.name,
            prompt_tokens=10,
            completion_tokens=7,
        )

    async def aclose(self) -> None:
        return None


def gsm8k_run(tmp_path: Path, mint_dir: Path, **options: object) -> RunConfig:
    """A run of MINT's first gsm8k tasks with the scripted wrong policy, options on top."""
    base: dict[str, object] = {
        "suite": "mint",
        "tasks": ("gsm8k",),
        "data_dir": mint_dir,
        "model": "scripted/wrong",
        "out": tmp_path / "r",
    }
    return RunConfig(**{**base, **options})  # type: ignore[arg-type]


async def test_role_overrides_and_concurrency() -> None:
    inner = SlowEcho()
    role = RoleModel(
        inner, "feedback", overrides={"temperature": 0.7, "max_tokens": None}, max_concurrency=2
    )
    params = GenerateParams(temperature=0.0, max_tokens=99, seed=5)
    await asyncio.gather(*(role.generate([], params) for _ in range(6)))
    assert {p.temperature for p in inner.params} == {0.7}
    assert {p.max_tokens for p in inner.params} == {99} and {p.seed for p in inner.params} == {5}
    assert inner.peak == 2 and role.calls == 6
    with pytest.raises(ValueError, match="seed"):
        RoleModel(inner, "feedback", overrides={"seed": 1})


async def test_llm_feedback_needs_a_feedback_model(tmp_path: Path, mint_dir: Path) -> None:
    cfg = gsm8k_run(tmp_path, mint_dir, limit=1, feedback="llm")
    with pytest.raises(ConfigError, match="--feedback-model"):
        await execute_run(cfg)
    assert not (tmp_path / "r").exists()  # nothing written for a run that cannot start


async def test_feedback_calls_are_recorded_with_their_role(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = gsm8k_run(tmp_path, mint_dir, limit=2, turns=3, feedback="binary+llm:no-reference")
    critic = SlowEcho()
    await execute_run(cfg, feedback_model=critic, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    for episode in episodes:
        calls = [e for e in episode.events if e.type == "model_call"]
        assert {c.role for c in calls} == {"policy", "feedback"}  # type: ignore[union-attr]
        feedback = [e for e in episode.events if e.type == "feedback"]
        kinds = [f.kind for f in feedback]  # type: ignore[union-attr]
        assert kinds[:2] == ["binary", "textual"]  # composition order is kept
        llm = feedback[1]
        assert llm.source == "model:test/critic" and not llm.saw_reference  # type: ignore[union-attr]
        assert llm.template_hash  # type: ignore[union-attr]


class JudgeStub:
    """A judge that accepts answers naming Paris, whatever the wording."""

    def __init__(self) -> None:
        self.name = "test/judge"
        self.prompts: list[str] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.prompts.append(messages[-1].content)
        answer = messages[-1].content.split("Proposed answer:\n")[1].split("\n")[0]
        verdict = "GOOD" if "paris" in answer.lower() else "BAD"
        return Completion(
            text=f"Compared.\nVERDICT: {verdict}",
            model=self.name,
            prompt_tokens=50,
            completion_tokens=5,
        )

    async def aclose(self) -> None:
        return None


async def test_judge_rescues_a_paraphrase_but_not_a_wrong_answer(
    tmp_path: Path, sandboxes: object
) -> None:
    from mulligan.judge import LLMJudge
    from mulligan.tasks import Task

    def task(n: int) -> Task:
        return Task(
            id=str(n),
            suite="qa",
            category="reasoning",
            prompt="Capital of France?",
            reference="Paris",
            checker="exact_match",
            gold_solution="Paris",
        )

    class Replies(SlowEcho):
        def __init__(self) -> None:
            super().__init__()
            self.name = "test/policy"

        async def generate(
            self,
            messages: list[Message],
            params: GenerateParams,
            context: CallContext | None = None,
        ) -> Completion:
            assert context is not None
            text = {"0": "The city of Paris", "1": "Lyon"}[context.task.id]
            return Completion(text=f"<solution> {text} </solution>", model=self.name)

    stub = JudgeStub()
    cfg = RunConfig(model="test/policy", turns=1, proposals=1, out=tmp_path / "r")
    await execute_run(
        cfg, model=Replies(), judge=LLMJudge(stub), tasks=[task(0), task(1)], sandboxes=sandboxes
    )  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = {e.key.task_id: e for e in store.episodes()}
    assert episodes["0"].success and not episodes["1"].success
    verdict = next(e for e in episodes["0"].events if e.type == "verdict")
    assert verdict.checker == "exact_match+judge" and "test/judge" in verdict.detail  # type: ignore[union-attr]
    roles = [e.role for e in episodes["0"].events if e.type == "model_call"]  # type: ignore[union-attr]
    assert roles == ["policy", "judge"]
    assert len(stub.prompts) == 2 and "Reference answer:\nParis" in stub.prompts[0]


class SmallWindow(SlowEcho):
    """A feedback model whose context window holds only ``limit`` characters of prompt."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[int] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        from mulligan.models import ContextWindowExceeded

        size = len(messages[-1].content)
        self.sizes.append(size)
        if size > self.limit:
            raise ContextWindowExceeded(f"prompt of {size} characters does not fit")
        return await super().generate(messages, params, context)


async def test_a_full_feedback_context_never_fails_the_episode(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = gsm8k_run(tmp_path, mint_dir, limit=1, turns=3, feedback="llm")
    tiny = SmallWindow(limit=10)  # nothing fits: feedback is skipped and the gap recorded
    summary = await execute_run(cfg, feedback_model=tiny, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert (summary.finished, summary.failed) == (1, 0)
    with RunStore.open_existing(cfg.execution.out) as store:
        (episode,) = store.episodes()
    errors = [e for e in episode.events if e.type == "error"]
    assert errors and all(not e.fatal and e.where.startswith("feedback") for e in errors)  # type: ignore[union-attr]
    assert len(tiny.sizes) == 2 * len(errors) and tiny.sizes[1] <= tiny.sizes[0]  # retried, cut


def test_judge_and_feedback_roles_share_one_instance_of_the_same_model(tmp_path: Path) -> None:
    from mulligan.engine.components import build_feedback_model, build_judge
    from mulligan.models import get_model

    config = RunConfig(
        model="scripted/reference",
        feedback="llm",
        feedback_model="scripted/wrong",
        judge_model="scripted/wrong",
        out=tmp_path / "r",
    )
    policy = get_model(config.policy.model)
    feedback = build_feedback_model(config, policy, None)
    judge = build_judge(config, policy, feedback)
    assert isinstance(feedback, RoleModel) and judge is not None
    # One instance (a local model would be loaded once), two roles with their own settings.
    assert judge.model.inner is feedback.inner and feedback.inner is not policy
    assert (judge.model.role, feedback.role) == ("judge", "feedback")
    other = build_judge(config.with_options(judge_model="scripted/invalid"), policy, feedback)
    assert other is not None and other.model.inner is not feedback.inner
    same_as_policy = build_judge(config.with_options(judge_model=config.policy.model), policy, None)
    assert same_as_policy is not None and same_as_policy.model.inner is policy
