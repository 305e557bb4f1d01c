"""`mulligan export`: every format from real episode-loop transcripts (scripted policy, scripted
feedback model), masks, pairs with byte-identical context, leak exclusion, splits, dedup, the
`datasets` round trip (JSON Lines and Parquet), Inspect's reader, and bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    Message,
    MessageEvent,
    ModelCallEvent,
    PromptEvent,
    VerdictEvent,
)
from mulligan.export import (
    FORMATS,
    ExportError,
    ExportRequest,
    Filters,
    FormatOptions,
    export_runs,
    parse_splits,
    split_of,
)
from mulligan.feedback import get_feedback
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.models.scripted import WRONG_ANSWER
from mulligan.store import RunStore
from mulligan.tasks import Task, get_checker, load_tasks

WRONG = f"<thought> guess </thought> <solution> {WRONG_ANSWER} </solution>"
EPOCHS = 3  # epoch 0: wrong, then right after feedback; 1: wrong twice; 2: right at once


def _right(task: Task) -> str:
    return f"<thought> know </thought> <solution> {task.gold_solution} </solution>"


class Policy:
    """The replies each epoch's script asks for; keeps every message list it received."""

    name = "test/policy"
    cacheable = False

    def __init__(self) -> None:
        self.received: dict[tuple[str, int], list[list[dict[str, str]]]] = {}

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        task, turn, epoch = context.task, context.turn, context.epoch
        seen = self.received.setdefault((task.id, epoch), [])
        seen.append([m.model_dump() for m in messages])
        script = [[WRONG, _right(task)], [WRONG, WRONG], [_right(task)]][epoch]
        return Completion(text=script[turn - 1], model=self.name)

    async def aclose(self) -> None:
        return None


class FeedbackModel:
    """A simulated user; ``leaks`` makes it state the reference, every time."""

    cacheable = False

    def __init__(self, leaks: bool) -> None:
        self.leaks = leaks
        self.name = f"test/feedback-{'leaky' if leaks else 'clean'}"

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        text = (
            f"That is wrong: the answer is {context.task.reference}."
            if self.leaks
            else "Re-read the question and check each step of your arithmetic."
        )
        return Completion(text=text, model=self.name)

    async def aclose(self) -> None:
        return None


class NoSandbox:
    """The gsm8k checker never runs code; a call here is a bug in the test."""

    def session(self) -> Any:
        raise AssertionError("no sandbox in these tests")

    async def run_program(self, *args: object, **kwargs: object) -> Any:
        raise AssertionError("no sandbox in these tests")


async def _run(run_dir: Path, tasks: list[Task], policy: Policy, leaks: bool) -> None:
    run_id = run_dir.name
    with RunStore(run_dir) as store:
        store.create_run(run_id, "h", {"config": {"model": policy.name, "feedback_model": "f"}})
        for task in tasks:
            for epoch in range(EPOCHS):
                episode = await run_episode(
                    task=task,
                    policy=policy,
                    params=GenerateParams(),
                    checker=get_checker(task.checker),
                    sandboxes=NoSandbox(),  # type: ignore[arg-type]
                    feedback=get_feedback("llm:expert", FeedbackModel(leaks)),
                    limits=EpisodeLimits(max_turns=3, max_proposals=2),
                    run_id=run_id,
                    config_hash="h",
                    epoch=epoch,
                )
                assert episode.status == "finished", episode.error
                store.save_episode(episode)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, mint_dir: Path) -> dict[str, Any]:
    tasks = load_tasks("mint", ["gsm8k"], mint_dir, 4)
    root = tmp_path_factory.mktemp("export-runs")
    clean, leaky = Policy(), Policy()
    asyncio.run(_run(root / "clean", tasks, clean, leaks=False))
    asyncio.run(_run(root / "leaky", tasks, leaky, leaks=True))
    return {"clean": root / "clean", "leaky": root / "leaky", "tasks": tasks, "policy": clean}


def _export(runs: list[Path], out: Path, fmt: str, **kw: Any) -> list[dict[str, Any]]:
    result = export_runs(ExportRequest(runs=tuple(runs), format=fmt, out=out, **kw))
    records = []
    for path in result.files:
        if path.suffix == ".jsonl":
            records += [json.loads(line) for line in path.read_text().splitlines()]
    return records


def test_sft_is_solved_trajectories_with_assistant_turns_learned(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    records = _export([runs["clean"]], tmp_path / "sft", "sft")
    assert len(records) == 4 * 2  # epochs 0 and 2 of each task are solved
    for record in records:
        messages = record["messages"]
        assert [m["train"] for m in messages] == [m["role"] == "assistant" for m in messages]
        assert messages[-1]["role"] == "assistant" and record["provenance"]["success"]
        prov = record["provenance"]
        received = runs["policy"].received[(prov["task_id"], prov["epoch"])]
        # The exported context of the last reply is what the policy received, exactly.
        last = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
        assert last == received[-1]
    card = (tmp_path / "sft" / "README.md").read_text()
    assert "| records: data | 8 |" in card and "gsm8k: MIT" in card


def test_mask_of_a_hand_built_episode(tmp_path: Path) -> None:
    prompt = (Message(role="user", content="What is 2 + 2?"),)
    events = [
        PromptEvent(turn=0, messages=prompt, template="t", template_hash="abc"),
        ModelCallEvent(turn=1, model="m", output="<execute>2+2</execute>", context_messages=1),
        ActionEvent(turn=1, kind="execute", content="2+2", raw="<execute>2+2</execute>"),
        MessageEvent(turn=1, role="assistant", content="<execute>2+2</execute>"),
        MessageEvent(turn=1, role="user", content="Observation:\n4"),
        ModelCallEvent(turn=2, model="m", output="<solution>4</solution>", context_messages=3),
        ActionEvent(turn=2, kind="solution", content="4", raw="<solution>4</solution>", proposal=1),
        VerdictEvent(turn=2, proposal=1, answer="4", correct=True, score=1.0, checker="c"),
        MessageEvent(turn=2, role="assistant", content="<solution>4</solution>"),
    ]
    episode = Episode(
        key=EpisodeKey(suite="gsm8k", task_id="x"),
        run_id="hand",
        config_hash="h",
        model="m",
        max_turns=2,
        max_proposals=1,
        events=events,
        success=True,
        success_turn=2,
        turns_used=2,
        proposals_used=1,
        terminate_reason="solved",
    )
    with RunStore(tmp_path / "hand") as store:
        store.create_run("hand", "h", {})
        store.save_episode(episode)
    (record,) = _export([tmp_path / "hand"], tmp_path / "out", "sft")
    assert [(m["role"], m["content"], m["train"]) for m in record["messages"]] == [
        ("user", "What is 2 + 2?", False),
        ("assistant", "<execute>2+2</execute>", True),
        ("user", "Observation:\n4", False),
        ("assistant", "<solution>4</solution>", True),
    ]
    (rollout,) = _export(
        [tmp_path / "hand"], tmp_path / "ro", "rollouts", options=FormatOptions(turn_penalty=0.1)
    )
    assert [(t["message_index"], t["reward"]) for t in rollout["turns"]] == [(1, -0.1), (3, 1.0)]


def test_dpo_pairs_share_their_context_byte_for_byte(runs: dict[str, Any], tmp_path: Path) -> None:
    records = _export([runs["clean"]], tmp_path / "dpo", "dpo")
    turn = [r for r in records if r["level"] == "turn"]
    trajectory = [r for r in records if r["level"] == "trajectory"]
    # Turn 1: epoch 2 (right) against epochs 0 and 1 (wrong). Turn 2: epochs 0 and 1 got the
    # same wrong first reply and the same feedback, so their turn-2 contexts are identical too:
    # epoch 0 (right) against epoch 1 (wrong). Whole episodes: 2 solved x 1 unsolved.
    assert len(turn) == 4 * 3 and len(trajectory) == 4 * 2
    assert sorted({p["provenance"]["chosen"]["turn"] for p in turn}) == [1, 2]
    received = runs["policy"].received
    for pair in turn:
        chosen, rejected = pair["provenance"]["chosen"], pair["provenance"]["rejected"]
        for side in (chosen, rejected):
            assert received[(side["task_id"], side["epoch"])][side["turn"] - 1] == pair["prompt"]
        assert pair["chosen"] != pair["rejected"] and chosen["task_id"] == rejected["task_id"]
    for pair in trajectory:
        assert pair["provenance"]["chosen"]["success"]
        assert not pair["provenance"]["rejected"]["success"]
    deduped = _export([runs["clean"]], tmp_path / "dedup", "dpo", dedupe=True)
    assert len(deduped) == 4 * 2 + 4 * 2  # the two turn-1 pairs of a task have equal text


def test_feedback_formats(runs: dict[str, Any], tmp_path: Path) -> None:
    sd = _export([runs["clean"]], tmp_path / "sd", "rltf-sd")
    hindsight = _export([runs["clean"]], tmp_path / "hs", "hindsight")
    fm = _export([runs["clean"]], tmp_path / "fm", "feedback-model")
    kto = _export([runs["clean"]], tmp_path / "kto", "kto")
    assert len(sd) == len(hindsight) == 4  # epoch 0: wrong, feedback, right
    assert all("arithmetic" in r["feedback"] and WRONG_ANSWER in r["worse"] for r in hindsight)
    assert all(r["prompt"][0]["role"] == "user" and len(r["prompt"]) == 1 for r in sd)
    # Feedback after each wrong proposal: epoch 0 turn 1, epoch 1 turns 1 and 2.
    assert len(fm) == 4 * 3 and {r["kind"] for r in fm} == {"textual"}
    assert len(kto) == 4 * (2 + 2 + 1)
    assert sum(r["label"] for r in kto) == 4 * 2  # the right proposals


def test_leaked_episodes_are_excluded_from_training_formats(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    both = [runs["clean"], runs["leaky"]]
    sft = _export(both, tmp_path / "a", "sft")
    assert not any(r["provenance"]["feedback_leaked"] for r in sft)
    from_leaky = [r["provenance"] for r in sft if r["provenance"]["run_id"] == "leaky"]
    assert len(from_leaky) == 4 and {p["epoch"] for p in from_leaky} == {2}  # got no feedback
    card = (tmp_path / "a" / "README.md").read_text()
    assert "| dropped: feedback leaked the reference | 8 |" in card  # epochs 0 and 1 x 4
    kept = _export(both, tmp_path / "b", "sft", filters=Filters(exclude_leaked=False))
    leaked = [r for r in kept if r["provenance"]["feedback_leaked"]]
    assert len(leaked) == 4 and all(r["provenance"]["run_id"] == "leaky" for r in leaked)
    assert all(r["provenance"]["feedback_saw_reference"] for r in leaked)


def test_split_by_task_and_filters(runs: dict[str, Any], tmp_path: Path) -> None:
    splits = parse_splits("train=0.5,test=0.5")
    export_runs(
        ExportRequest(
            runs=(runs["clean"],), format="rollouts", out=tmp_path / "s", splits=splits, seed=3
        )
    )
    by_split: dict[str, set[str]] = {}
    for path in (tmp_path / "s").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            by_split.setdefault(path.stem, set()).add(json.loads(line)["provenance"]["task_id"])
    tasks = [t.id for t in runs["tasks"]]
    for name, ids in by_split.items():
        assert ids == {t for t in tasks if split_of("gsm8k", t, splits, 3) == name}
    assert sum(len(ids) for ids in by_split.values()) == len(tasks)  # no task in two splits
    one = _export(
        [runs["clean"]], tmp_path / "f", "rollouts", filters=Filters(tasks=frozenset({tasks[0]}))
    )
    assert {r["provenance"]["task_id"] for r in one} == {tasks[0]} and len(one) == EPOCHS
    solved = _export([runs["clean"]], tmp_path / "g", "rollouts", filters=Filters(solved_only=True))
    assert len(solved) == 8


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"inspect"}))
def test_every_format_round_trips_through_datasets(
    fmt: str, runs: dict[str, Any], tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    both = (runs["clean"], runs["leaky"])
    jsonl = export_runs(ExportRequest(runs=both, format=fmt, out=tmp_path / "j"))
    parquet = export_runs(
        ExportRequest(runs=both, format=fmt, out=tmp_path / "p", output="parquet")
    )
    from_json = datasets.load_dataset("json", data_files=str(jsonl.files[0]), split="train")
    from_parquet = datasets.load_dataset("parquet", data_files=str(parquet.files[0]), split="train")
    expected = [json.loads(line) for line in jsonl.files[0].read_text().splitlines()]
    assert len(from_json) == len(from_parquet) == len(expected) > 0
    assert from_json[0] == from_parquet[0]
    assert set(from_json.column_names) == set(expected[0])
    assert from_json[0]["provenance"] == expected[0]["provenance"]


def test_inspect_log_reads_in_inspect(runs: dict[str, Any], tmp_path: Path) -> None:
    result = export_runs(ExportRequest(runs=(runs["leaky"],), format="inspect", out=tmp_path))
    (path,) = result.files
    data = json.loads(path.read_text())
    assert len(data["samples"]) == 4 * EPOCHS  # not a training format: leaks are kept
    assert data["results"]["scores"][0]["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)
    log = pytest.importorskip("inspect_ai.log")
    read = log.read_eval_log(str(path))
    assert read.status == "success" and len(read.samples) == 4 * EPOCHS
    assert read.samples[0].scores["mulligan"].value in ("C", "I")


def test_a_store_without_recorded_messages_is_refused(tmp_path: Path) -> None:
    prompt = PromptEvent(
        turn=0, messages=(Message(role="user", content="q"),), template="t", template_hash="h"
    )
    episode = Episode(
        key=EpisodeKey(suite="gsm8k", task_id="t"),
        run_id="old",
        config_hash="h",
        model="m",
        max_turns=1,
        max_proposals=1,
        events=[prompt, ModelCallEvent(turn=1, model="m", output="x")],
    )
    with RunStore(tmp_path / "old") as store:
        store.create_run("old", "h", {})
        store.save_episode(episode)
    with pytest.raises(ExportError, match="stored before mulligan recorded the messages"):
        export_runs(ExportRequest(runs=(tmp_path / "old",), format="sft", out=tmp_path / "o"))
    assert not list((tmp_path / "o").glob("*.jsonl*"))  # nothing half-written


def _error(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    return line


def test_bad_input_is_one_error_line(runs: dict[str, Any], tmp_path: Path) -> None:
    run = str(runs["clean"])
    assert "unknown export format 'sf'" in _error(["export", run, "--format", "sf", "--out", "x"])
    missing = _error(["export", str(tmp_path / "nope"), "--format", "sft", "--out", "x"])
    assert "no such run directory" in missing
    (tmp_path / "file").write_text("")
    assert "is a file" in _error(
        ["export", run, "--format", "sft", "--out", str(tmp_path / "file")]
    )
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    full = _error(["export", run, "--format", "sft", "--out", str(tmp_path / "full")])
    assert "--overwrite" in full
    split = _error(["export", run, "--format", "sft", "--out", "y", "--split", "train=0.7"])
    assert "sum to 1" in split
    kind = _error(["export", run, "--format", "sft", "--out", "y", "--feedback-kind", "oracle"])
    assert "'oracle' is no feedback kind" in kind


class SloppyPolicy(Policy):
    """Epoch 2's right answer sits inside an unclosed thought: MINT's lenient parser accepts it."""

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        completion = await super().generate(messages, params, context)
        assert context is not None
        if context.epoch == 2:
            return Completion(text=completion.text.replace("</thought> ", ""), model=self.name)
        return completion


def test_well_formed_drops_episodes_the_lenient_parser_let_through(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    asyncio.run(_run(tmp_path / "sloppy", runs["tasks"], SloppyPolicy(), leaks=False))
    every = _export([tmp_path / "sloppy"], tmp_path / "a", "sft")
    assert len(every) == 8  # epochs 0 and 2 solve each of the 4 tasks
    kept = _export(
        [tmp_path / "sloppy"], tmp_path / "b", "sft", filters=Filters(well_formed_only=True)
    )
    assert len(kept) == 4 and all(r["provenance"]["epoch"] == 0 for r in kept)
    card = (tmp_path / "b" / "README.md").read_text()
    assert "| dropped: a malformed policy reply (--well-formed) | 4 |" in card
    assert "- episodes with a malformed policy reply: excluded" in card
