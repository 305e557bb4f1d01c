"""The engine: scripted policies end to end, failure isolation, resume without loss or repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mulligan.config import ConfigError, RunConfig
from mulligan.engine import RunExistsError, execute_run
from mulligan.engine.components import cached
from mulligan.events import FeedbackEvent, Message
from mulligan.metrics import summarize_run
from mulligan.models import (
    CachedModel,
    CallContext,
    Completion,
    GenerateParams,
    ScriptedModel,
    get_model,
)
from mulligan.models.roles import RoleModel
from mulligan.store import RunStore
from mulligan.tasks import Task, load_tasks


def _config(tmp_path: Path, mint_dir: Path, **kw: object) -> RunConfig:
    base: dict[str, object] = {
        "suite": "mint",
        "tasks": ("gsm8k", "mmlu", "mbpp"),
        "data_dir": mint_dir,
        "limit": 3,
        "model": "scripted/reference",
        "turns": 3,
        "proposals": 2,
        "concurrency": 4,
        "out": tmp_path / "run",
    }
    base.update(kw)
    return RunConfig.model_validate(base)


async def test_reference_solves_everything_on_turn_one(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir)
    summary = await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert (summary.total, summary.finished, summary.failed, summary.solved) == (9, 9, 0, 9)
    with RunStore.open_existing(cfg.execution.out) as store:
        result = summarize_run(store.episodes())
    assert (result.episodes, result.failed) == (9, 0)
    assert {k: est.value for k, est in result.sr_at_k.items()} == {"1": 1.0, "2": 1.0, "3": 1.0}


async def test_execute_then_answer_uses_the_sandbox(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, model="scripted/execute-then-answer", tasks=("gsm8k", "mbpp"))
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    assert all(e.success_turn == 2 for e in episodes)
    for episode in episodes:
        kinds = [e.type for e in episode.events if e.type != "message"]  # the stored context
        assert kinds[:4] == ["prompt", "model_call", "action", "observation"]
        assert "verdict" in kinds


async def test_wrong_uses_both_proposals_and_fails(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, model="scripted/wrong", turns=5, proposals=2)
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    assert all(not e.success and e.proposals_used == 2 for e in episodes)
    assert all(e.terminate_reason == "max_proposals" and e.turns_used == 2 for e in episodes)
    # 'none' feedback: after a wrong proposal the policy sees only the count-down, no verdict.
    assert not any(e.type == "feedback" for ep in episodes for e in ep.events)


async def test_invalid_actions_run_out_of_turns(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, model="scripted/invalid", tasks=("gsm8k",), limit=1)
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(cfg.execution.out) as store:
        (episode,) = store.episodes()
    assert episode.terminate_reason == "max_turns" and episode.turns_used == 3
    observations = [e for e in episode.events if e.type == "observation"]
    assert len(observations) == 3 and "<execute>" in observations[0].content  # type: ignore[union-attr]


class FlakyModel(ScriptedModel):
    """Answers correctly but raises on chosen tasks, to test isolation."""

    def __init__(self, fail_on: set[str]) -> None:
        super().__init__("reference")
        self.fail_on = fail_on
        self.seen: list[str] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        self.seen.append(context.task.id)
        if context.task.id in self.fail_on:
            raise RuntimeError(f"backend exploded on {context.task.id}")
        return await super().generate(messages, params, context)


async def test_failures_are_isolated_and_resume_redoes_only_them(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=5)
    first = FlakyModel(fail_on={"1", "3"})
    summary = await execute_run(cfg, model=first, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert (summary.finished, summary.failed) == (3, 2)
    assert any("backend exploded on 1" in line for line in summary.errors)
    with RunStore.open_existing(cfg.execution.out) as store:
        failed = {e.key.task_id: e for e in store.episodes() if e.status == "failed"}
    assert set(failed) == {"1", "3"}
    assert failed["1"].events[-1].type == "error"
    # The stored error says where it was raised, and where in mulligan it passed through.
    assert failed["1"].error is not None
    assert failed["1"].error.startswith(
        "RuntimeError: backend exploded on 1 (at tests/test_engine.py:"
    )
    assert "in generate, from mulligan/" in failed["1"].error

    with pytest.raises(RunExistsError, match="--resume"):
        await execute_run(cfg, model=FlakyModel(set()), sandboxes=sandboxes)  # type: ignore[arg-type]

    second = FlakyModel(set())
    summary = await execute_run(cfg, resume=True, model=second, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert sorted(second.seen) == ["1", "3"]  # finished episodes are not redone
    assert (summary.skipped, summary.finished, summary.failed) == (3, 2, 0)
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    assert len(episodes) == 5 and all(e.success for e in episodes)  # none lost, none duplicated

    third = FlakyModel(set())
    summary = await execute_run(cfg, resume=True, model=third, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert third.seen == [] and summary.skipped == 5


async def test_resume_with_other_config_is_refused(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=1)
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    changed = cfg.with_options(turns=4)
    with pytest.raises(ConfigError, match="turns: 3 -> 4"):
        await execute_run(changed, resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]
    # operational options may change on resume
    faster = cfg.with_options(concurrency=16)
    summary = await execute_run(faster, resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert summary.skipped == 1


async def test_humaneval_suite_needs_no_data(tmp_path: Path, sandboxes: object) -> None:
    tasks: list[Task] = load_tasks("humaneval", None, None, 4)
    assert len(tasks) == 4
    cfg = RunConfig(suite="humaneval", limit=4, model="scripted/reference", out=tmp_path / "he")
    summary = await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert summary.solved == 4


class PeekingModel(ScriptedModel):
    """Tries to read the reference data from inside the sandbox, then gives up."""

    def __init__(self, path: Path) -> None:
        super().__init__("wrong")
        self.path = path

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        code = f"import os\nprint(sorted(os.listdir({str(self.path)!r})))"
        return Completion(text=f"<execute>\n{code}\n</execute>", model=self.name)


async def test_model_code_cannot_read_the_reference_data(tmp_path: Path, mint_dir: Path) -> None:
    from mulligan.sandbox import detect_isolation

    if not detect_isolation().use_bwrap:
        pytest.skip("hiding paths needs bubblewrap (scripts/ensure_system.sh installs it)")
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=1, turns=1)
    await execute_run(cfg, model=PeekingModel(mint_dir.resolve()))
    with RunStore.open_existing(cfg.execution.out) as store:
        (episode,) = store.episodes()
    (observation,) = [e for e in episode.events if e.type == "observation"]
    # Outside bubblewrap's allow-list the data directory does not exist at all (where it lies
    # inside the allow-list it is covered by an empty directory).
    content = observation.content  # type: ignore[union-attr]
    assert content == "[]" or content.endswith(f"No such file or directory: '{mint_dir.resolve()}'")


HOSTILE = {
    "0": "while True:\n    pass",
    "1": "input('your name? ')",
    "2": "import os\nwhile True:\n    os.fork()",
    "3": "x = bytearray(10 * 1024**3)",
    "4": "open('/etc/mulligan-was-here', 'w').write('x')",
    "5": "print('x' * 100_000_000)",
    "6": "import os\nprint(os.environ.get('OPENAI_API_KEY'))",
}


class HostileModel(ScriptedModel):
    """Runs one hostile cell on turn 1 (chosen by task id), then proposes the right answer."""

    def __init__(self) -> None:
        super().__init__("reference")

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        if context.turn == 1:
            code = HOSTILE[context.task.id]
            return Completion(text=f"<execute>\n{code}\n</execute>", model=self.name)
        return await super().generate(messages, params, context)


async def test_hostile_cells_end_with_an_observation_and_the_run_goes_on(
    tmp_path: Path, mint_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mulligan.sandbox import SandboxLimits, SandboxPool

    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=7, turns=2, concurrency=4)
    async with SandboxPool(size=2, limits=SandboxLimits(cell_timeout_s=1.0)) as pool:
        summary = await execute_run(cfg, model=HostileModel(), sandboxes=pool)
    assert (summary.finished, summary.failed, summary.solved) == (7, 0, 7)
    with RunStore.open_existing(cfg.execution.out) as store:
        seen = {
            e.key.task_id: next(ev for ev in e.events if ev.type == "observation")
            for e in store.episodes()
        }
    assert seen["0"].timed_out  # type: ignore[union-attr]
    assert "EOFError" in seen["1"].content  # type: ignore[union-attr]
    assert seen["2"].error is not None or seen["2"].timed_out  # type: ignore[union-attr]
    assert "MemoryError" in seen["3"].content  # type: ignore[union-attr]
    assert seen["4"].error in ("PermissionError", "OSError")  # type: ignore[union-attr]
    assert not Path("/etc/mulligan-was-here").exists()
    assert "truncated" in seen["5"].content and len(seen["5"].content) < 50_000  # type: ignore[union-attr]
    assert seen["6"].content.strip() == "None"  # type: ignore[union-attr]


async def test_a_run_from_an_older_version_resumes_unless_new_options_are_used(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=1)
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    # As if written before these options existed:
    with RunStore.open_existing(cfg.execution.out, read_only=False) as store:
        stored = store.run()
        assert stored is not None
        run_id, manifest = stored.run_id, stored.manifest
        for name in ("judge_model", "reject_repeats", "sample"):
            del manifest["config"][name]
        store.update_manifest(run_id, manifest)
    summary = await execute_run(cfg, resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]
    assert summary.skipped == 1
    with pytest.raises(ConfigError, match="reject_repeats: False -> True"):
        await execute_run(
            cfg.with_options(reject_repeats=True),
            resume=True,
            sandboxes=sandboxes,  # type: ignore[arg-type]
        )


class CountingModel(ScriptedModel):
    """A scripted policy that reports counters, as a real backend reports retries."""

    def counters(self) -> dict[str, int]:
        return {"retry.timeout": 2, "ejections": 1, "calls": self.calls}


async def test_the_manifest_keeps_the_components_counters(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, tasks=("gsm8k",), limit=2, feedback="binary")
    model = CountingModel("wrong")
    await execute_run(cfg, model=model, sandboxes=sandboxes)  # type: ignore[arg-type]
    on_disk = json.loads((cfg.execution.out / "manifest.json").read_text())
    with RunStore.open_existing(cfg.execution.out) as store:
        stored = store.run()
    assert stored is not None and stored.manifest == on_disk
    counters = on_disk["counters"]
    assert counters["model:scripted/wrong"] == {
        "retry.timeout": 2,
        "ejections": 1,
        "calls": model.calls,
    }
    guard = counters["feedback.0:binary"]  # the leak guard around the binary provider
    assert guard["leak.checked"] == 4 and guard["leak.leaked"] == 0  # 2 tasks x 2 proposals


def test_backends_declare_whether_the_cache_goes_in_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cache"))
    config = RunConfig(out=tmp_path / "run")
    scripted = get_model("scripted/reference")
    assert not scripted.cacheable and cached(scripted, config) is scripted
    assert not RoleModel(scripted, "feedback").cacheable

    class Remote(ScriptedModel):
        cacheable = True

    remote = Remote("reference")
    wrapped = cached(remote, config)
    assert isinstance(wrapped, CachedModel) and wrapped.inner is remote
    assert not wrapped.cacheable  # a second cache would gain nothing
    assert cached(remote, config.with_options(cache="off")) is remote
    assert wrapped.counters() == {"cache.hits": 0, "cache.misses": 0, "cache.errors": 0}


async def test_replayed_feedback_is_marked_and_counted_in_the_manifest(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    """``replay:RUN`` feedback says where it came from, on each event and in the manifest."""
    recorded = _config(
        tmp_path, mint_dir, model="scripted/wrong", tasks=("gsm8k",), limit=2,
        feedback="binary", out=tmp_path / "recorded",
    )  # fmt: skip
    await execute_run(recorded, sandboxes=sandboxes)  # type: ignore[arg-type]
    with RunStore.open_existing(recorded.execution.out) as store:
        stored = store.run()
    assert stored is not None
    # One task more than was recorded: its feedback has to be produced live.
    cfg = _config(
        tmp_path, mint_dir, model="scripted/wrong", tasks=("gsm8k",), limit=3,
        feedback=f"replay:{recorded.execution.out}", out=tmp_path / "replayed",
    )  # fmt: skip
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    counters = json.loads((cfg.execution.out / "manifest.json").read_text())["counters"]
    replay = counters["feedback.0:replay:binary"]
    assert {k: v for k, v in replay.items() if not k.startswith("live.")} == {
        "turns.replayed": 4,  # 2 recorded tasks x 2 wrong proposals
        "turns.live": 2,
        "events.replayed": 4,
        "events.live": 2,
    }
    assert replay["live.leak.checked"] == 2
    with RunStore.open_existing(cfg.execution.out) as store:
        episodes = list(store.episodes())
    feedback = [e for ep in episodes for e in ep.events if isinstance(e, FeedbackEvent)]
    replayed = [e for e in feedback if e.replayed_from is not None]
    assert len(feedback) == 6 and len(replayed) == 4
    for event in replayed:
        origin = event.replayed_from
        assert origin is not None
        assert (origin.run_id, origin.run_dir) == (stored.run_id, str(recorded.execution.out))
        assert origin.turn == event.turn and origin.at < event.at
    live_tasks = {ep.key.task_id for ep in episodes for e in ep.events
                  if isinstance(e, FeedbackEvent) and e.replayed_from is None}  # fmt: skip
    assert len(live_tasks) == 1
    assert {e.replayed_from.task_id for e in replayed if e.replayed_from} == {
        ep.key.task_id for ep in episodes
    } - live_tasks
