"""The command line end to end: run, report (table and JSON), resume, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.metrics import wilson_interval

runner = CliRunner()
SUITES = ["gsm8k", "hotpotqa", "humaneval", "math", "mbpp", "mmlu", "theoremqa"]


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _values(estimates: dict[str, dict[str, object]]) -> dict[str, object]:
    """``{k: value}`` of a report's ``{k: Estimate}`` (the point values, without intervals)."""
    return {k: est["value"] for k, est in estimates.items()}


def test_reference_gives_100_and_wrong_gives_0_on_every_mint_suite(
    tmp_path: Path, mint_dir: Path
) -> None:
    for model, expected in (("scripted/reference", 1.0), ("scripted/wrong", 0.0)):
        out = tmp_path / model.split("/")[1]
        code, output = _run(
            "run",
            "--suite",
            "mint",
            "--tasks",
            ",".join(SUITES),
            "--data-dir",
            str(mint_dir),
            "--limit",
            "4",
            "--model",
            model,
            "--turns",
            "3",
            "--proposals",
            "2",
            "--concurrency",
            "8",
            "--out",
            str(out),
            "--no-progress",
        )
        assert code == 0, output
        code, output = _run("report", str(out), "--format", "json")
        assert code == 0, output
        report = json.loads(output)
        assert report["schema"] == "mulligan.report/4"
        (summary,) = (run["summary"] for run in report["runs"])
        assert summary["episodes"] == 4 * len(SUITES)
        assert set(summary["suites"]) == set(SUITES)
        for name, row in summary["suites"].items():
            assert _values(row["sr_at_k"]) == {"1": expected, "2": expected, "3": expected}, name
        code, output = _run("report", str(out))
        assert code == 0 and "SR@3" in output and "overall" in output
        # The table shows each rate's 95% interval, as the HTML report does: Wilson's, which
        # does not shrink to a point when every episode succeeded or every one failed.
        low, high = wilson_interval(int(expected) * 4 * len(SUITES), 4 * len(SUITES))
        assert f"[{100 * low:.0f}-{100 * high:.0f}]" in output
        assert f"[{100 * expected:.0f}-{100 * expected:.0f}]" not in output


def test_resume_skips_finished(tmp_path: Path, mint_dir: Path) -> None:
    args = [
        "run",
        "--suite",
        "mint",
        "--tasks",
        "gsm8k",
        "--data-dir",
        str(mint_dir),
        "--limit",
        "2",
        "--model",
        "scripted/reference",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
    ]
    assert _run(*args)[0] == 0
    code, output = _run(*args)
    assert code == 2 and "--resume" in output
    code, output = _run(*args, "--resume")
    assert code == 0 and "2 resumed" in output


def test_bad_config_file_names_file_field_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "run.yaml"
    bad.write_text("suite: humaneval\nturns: 0\nmodle: x\n")
    code, output = _run("run", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2
    assert str(bad) in output and "turns" in output and "modle: unknown option" in output
    broken = tmp_path / "broken.toml"
    broken.write_text("turns = [\n")
    code, output = _run("run", "--config", str(broken))
    assert code == 2 and "broken.toml" in output and "not valid toml" in output


def test_config_file_with_cli_override(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('suite = "humaneval"\nlimit = 2\nmodel = "scripted/wrong"\nturns = 2\n')
    out = tmp_path / "o"
    code, output = _run(
        "run",
        "--config",
        str(cfg),
        "--model",
        "scripted/reference",
        "--out",
        str(out),
        "--no-progress",
    )
    assert code == 0, output
    (run,) = json.loads(_run("report", str(out), "--format", "json")[1])["runs"]
    summary = run["summary"]
    assert (summary["episodes"], summary["failed"]) == (2, 0)
    assert _values(summary["sr_at_k"]) == {"1": 1.0, "2": 1.0}


def test_missing_data_and_unknown_model_are_clear(tmp_path: Path) -> None:
    code, output = _run(
        "run",
        "--suite",
        "mint",
        "--data-dir",
        str(tmp_path / "nothing"),
        "--model",
        "scripted/reference",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2 and "mulligan data pull mint" in output
    code, output = _run(
        "run",
        "--suite",
        "humaneval",
        "--model",
        "nosuch/model",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "o2"),
        "--no-progress",
    )
    assert code == 2 and "unknown model provider" in output
    code, output = _run("report", str(tmp_path / "none"))
    assert code == 2 and "no mulligan.sqlite" in output


def test_report_counts_feedback_and_its_leaks_per_source(tmp_path: Path) -> None:
    out = tmp_path / "o"
    # A feedback "model" that answers with the reference itself: every message leaks.
    code, output = _run(
        "run",
        "--suite",
        "humaneval",
        "--limit",
        "2",
        "--model",
        "scripted/wrong",
        "--turns",
        "2",
        "--feedback",
        "binary+llm",
        "--feedback-model",
        "scripted/reference",
        "--out",
        str(out),
        "--no-progress",
    )
    assert code == 0, output
    (run,) = json.loads(_run("report", str(out), "--format", "json")[1])["runs"]
    feedback = {row.pop("source"): row for row in run["feedback"]["sources"]}
    assert feedback["rule:checker-verdict"] == {
        "messages": 4,
        "leaked": 0,
        "leak_rate": 0.0,
        "by_flag": {},
        "solved_after_leak": 0,
        "raw_leaked": 0,
        "raw_leak_rate": 0.0,
        "raw_by_flag": {},
        "interventions": {},
        "regenerations": 0,
        "replayed": 0,
    }
    llm = feedback["model:scripted/reference"]
    assert llm["messages"] >= 2 and llm["leaked"] == llm["messages"] and llm["leak_rate"] == 1.0
    # leak=flag: what reached the policy is what the provider wrote.
    assert llm["raw_leaked"] == llm["leaked"] and llm["interventions"] == {}
    assert llm["by_flag"]["code"] == llm["messages"]
    assert llm["solved_after_leak"] == 0  # the scripted policy never solves
    code, output = _run("report", str(out))
    assert code == 0 and "Feedback by source" in output and "100.0%" in output


def test_run_and_report_say_which_sandbox_isolation_held(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--suite", "humaneval", "--limit", "1", "--model", "scripted/reference"]
    code, output = _run(*args, "--turns", "1", "--out", str(out), "--no-progress")
    assert code == 0, output
    assert "sandbox isolation: bwrap" in output and "WEAK" not in output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sandbox_isolation"] == "bwrap"
    assert manifest["sandbox_isolation_weak"] is False
    code, output = _run("report", str(out))
    assert code == 0 and "sandbox isolation: bwrap" in output


def test_a_weak_sandbox_needs_an_explicit_opt_in_and_is_said_loudly(tmp_path: Path) -> None:
    args = ["run", "--suite", "humaneval", "--limit", "1", "--model", "scripted/reference"]
    weak = ["--isolation", "rlimits-only-as-root", "--turns", "1", "--no-progress"]
    code, output = _run(*args, *weak, "--out", str(tmp_path / "refused"))
    assert code == 2 and "--allow-weak-isolation" in output and "Traceback" not in output
    code, output = _run(*args, *weak, "--allow-weak-isolation", "--out", str(tmp_path / "weak"))
    assert code == 0, output
    assert "sandbox isolation: rlimits-only-as-root (WEAK" in output
    manifest = json.loads((tmp_path / "weak" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sandbox_isolation_weak"] is True
