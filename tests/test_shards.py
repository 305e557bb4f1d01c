"""Shards and merge: a deterministic partition by task key, and shards joined into one run that
reports exactly as the unsharded run does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig
from mulligan.engine import execute_run
from mulligan.engine.merge import MergeError, merge_runs
from mulligan.events import Message
from mulligan.models import CallContext, Completion, GenerateParams, ScriptedModel
from mulligan.report import report_data
from mulligan.store import RunStore
from mulligan.tasks.shard import Shard, task_key_hash


class HalfRight(ScriptedModel):
    """Right on tasks whose key hashes even, wrong on the rest: results that differ by task."""

    def __init__(self) -> None:
        super().__init__("reference")

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        assert context is not None
        self.script = "reference" if task_key_hash("x", context.task.id) % 2 else "wrong"
        return await super().generate(messages, params, context)


def _config(tmp_path: Path, mint_dir: Path, out: str, **kw: object) -> RunConfig:
    options: dict[str, object] = {
        "suite": "mint",
        "tasks": ("gsm8k", "mmlu", "hotpotqa"),
        "data_dir": mint_dir,
        "limit": 4,
        "model": "scripted/reference",
        "turns": 2,
        "proposals": 2,
        "epochs": 2,
        "out": tmp_path / out,
        **kw,
    }
    return RunConfig.model_validate(options)


def _comparable(value: Any) -> Any:
    """The report without what differs between equal runs: paths, ids, timings, the manifest."""
    volatile = {"label", "path", "run_id", "manifest", "generated_at"}
    if isinstance(value, dict):
        return {
            k: _comparable(v)
            for k, v in value.items()
            if k not in volatile and not any(t in k for t in ("latency", "seconds", "wall"))
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_a_shard_is_parsed_checked_and_stable() -> None:
    assert Shard.parse(" 1 / 4 ") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    for bad in ("4/4", "1/0", "-1/2", "a/b", "1"):
        with pytest.raises(ValueError, match="i/n"):
            Shard.parse(bad)
    # SHA-256 of the key, never Python's salted hash(): pinned, the same on every machine.
    assert task_key_hash("gsm8k", "1") == 0x91FC15626BC97F07
    keys = [("gsm8k", str(i)) for i in range(200)]
    parts = [[k for k in keys if Shard(i, 3).holds(*k)] for i in range(3)]
    assert sorted(k for part in parts for k in part) == sorted(
        keys
    )  # every task in exactly one shard
    assert all(20 < len(p) < 110 for p in parts)  # and spread over all of them
    with pytest.raises(ConfigError, match="shard"):
        from mulligan.config import build_config

        build_config(None, {"shard": "2/2"})


async def test_shards_merged_report_as_the_unsharded_run(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    whole = _config(tmp_path, mint_dir, "whole")
    await execute_run(whole, model=HalfRight(), sandboxes=sandboxes)  # type: ignore[arg-type]
    shards = []
    for i in range(2):
        cfg = _config(tmp_path, mint_dir, f"shard{i}", shard=f"{i}/2")
        outcome = await execute_run(cfg, model=HalfRight(), sandboxes=sandboxes)  # type: ignore[arg-type]
        assert 0 < outcome.total < 24  # each shard holds part of the 12 tasks x 2 epochs
        shards.append(tmp_path / f"shard{i}")
    merged = merge_runs(shards, tmp_path / "merged")
    assert merged.episodes == 24 and not merged.missing
    expected, got = report_data([tmp_path / "whole"]), report_data([tmp_path / "merged"])
    assert 0 < expected["runs"][0]["summary"]["sr_at_k"]["2"]["value"] < 1  # a mixed run
    assert _comparable(got) == _comparable(expected)
    with RunStore.open_existing(tmp_path / "merged") as store:
        run = store.run()
        assert run is not None
        assert {e.run_id for e in store.episodes(with_events=False)} == {run.run_id}
    assert run.manifest["tasks"] == 12 and run.manifest["config"]["shard"] is None
    assert [m["shard"] for m in run.manifest["merged_from"]] == ["0/2", "1/2"]

    # What does not fit is refused, naming it; nothing is written.
    with pytest.raises(MergeError, match=r"shards 1/2 are missing"):
        merge_runs(shards[:1], tmp_path / "m1")
    assert merge_runs(shards[:1], tmp_path / "m1", allow_missing=True).missing == ["1/2"]
    with pytest.raises(MergeError, match="both shard 0/2"):
        merge_runs([shards[0], shards[0]], tmp_path / "m2")
    with pytest.raises(MergeError, match="not a shard"):
        merge_runs([shards[0], tmp_path / "whole"], tmp_path / "m3")
    with pytest.raises(MergeError, match="holds a run"):
        merge_runs(shards, tmp_path / "merged")
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()


async def test_merge_refuses_duplicates_other_configs_and_resume_keeps_the_shard(
    tmp_path: Path, mint_dir: Path, sandboxes: object
) -> None:
    cfg = _config(tmp_path, mint_dir, "s0", shard="0/2", epochs=1, limit=2)
    await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
    # A copy relabelled as the other shard holds the same episodes.
    shutil.copytree(tmp_path / "s0", tmp_path / "copy")
    with RunStore(tmp_path / "copy") as store:
        run = store.run()
        assert run is not None
        config = {**run.manifest["config"], "shard": "1/2"}
        store.update_manifest(run.run_id, {**run.manifest, "config": config})
    with pytest.raises(MergeError, match=r"episode \S+ is stored in both"):
        merge_runs([tmp_path / "s0", tmp_path / "copy"], tmp_path / "m")
    other = _config(tmp_path, mint_dir, "s1", shard="1/2", epochs=1, limit=2, turns=3)
    await execute_run(other, sandboxes=sandboxes)  # type: ignore[arg-type]
    with pytest.raises(MergeError, match="turns: 2 vs 3"):
        merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    with pytest.raises(ConfigError, match="shard: '0/2' -> '1/2'"):
        await execute_run(cfg.with_options(shard="1/2"), resume=True, sandboxes=sandboxes)  # type: ignore[arg-type]


def test_merge_command_reports_a_misfit_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "no mulligan.sqlite here" in result.output
