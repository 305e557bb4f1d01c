"""mulligan's checkers against MINT's own verdicts in its published logs (gpt-3.5-turbo-0613).

Every proposal in MINT's ``F=None/max5_p2+tool+cd`` runs of the seven text suites is re-judged
with mulligan's tasks and MINT-mode checkers (code through the sandbox) and compared with the
verdict MINT logged for it. Disagreements where MINT's logged verdict is wrong are listed below
with the reason; any other disagreement fails the test, and so does a listed one that no longer
occurs. Run with ``-s`` to see the per-suite table. The last tests run the same re-judging
through ``mulligan import mint DIR --rejudge`` on a two-episode log.

The logs live in the project's shared data (``../shared/data/mint`` or
``$MULLIGAN_SHARED_DATA/mint``); the test is skipped when they are absent.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.interop.mint_rejudge import ConformanceReport, agreement_table, judge_mint_logs
from mulligan.tasks import Task, load_suite
from mulligan.tasks.mint import MINT_SUITES, load_mint_suite
from test_checkers_runner import code_runner

LOG_DIR = Path("outputs", "gpt-3.5-turbo-0613", "F=None", "max5_p2+tool+cd")
MIN_AGREEMENT = 0.98
# Slow-but-correct programs must not time out because the test machine is busy; MINT's 10 s
# limit decided none of the logged verdicts (they agree with a 30 s limit).
CODE_TIMEOUT_S = 30.0

NEGATIVE_REFERENCE = (
    "answer equals the negative reference; MINT's checker when these logs were made allowed "
    "|answer - reference| <= 0.05 * reference without abs(), so no answer to a negative "
    "reference could pass (fixed upstream by 3f7f12c, which mulligan follows)"
)
OPTION_LETTER = (
    "answer names option (c), the reference; MINT's checker at 3f7f12c accepts it "
    "('(c)' == '(' + 'c' + ')'), the logged verdict does not: the log predates that comparison "
    "(its prompt also predates the data: no 'Output format required: option.')"
)

# (suite, task id, index of the proposing assistant message in state.history) -> why MINT's
# logged verdict is wrong.
KNOWN_MINT_ERRORS: dict[tuple[str, str, int], str] = {
    ("math", "13", 3): NEGATIVE_REFERENCE,  # "-150" for -150.0
    ("math", "13", 9): NEGATIVE_REFERENCE,  # "-150" for -150.0
    ("math", "22", 5): NEGATIVE_REFERENCE,  # "-5" for -5.0
    ("math", "22", 9): NEGATIVE_REFERENCE,  # "-5" for -5.0
    ("math", "47", 5): NEGATIVE_REFERENCE,  # "-13" for -13.0
    ("math", "47", 9): NEGATIVE_REFERENCE,  # "-13" for -13.0
    ("math", "52", 5): NEGATIVE_REFERENCE,  # "-1" for -1.0
    ("math", "52", 9): NEGATIVE_REFERENCE,  # "-1" for -1.0
    ("math", "58", 5): NEGATIVE_REFERENCE,  # "-5.0" for -5.0
    ("math", "58", 9): NEGATIVE_REFERENCE,  # "-5.0" for -5.0
    ("theoremqa", "52", 1): OPTION_LETTER,  # "c) $\Phi(\Phi^T\Phi)^{-1}\Phi^T$" for c
    ("theoremqa", "52", 5): OPTION_LETTER,  # same answer, second proposal
}

# Logged task prompts that differ from MINT's data at 3f7f12c: the three TheoremQA option
# questions were reworded after these runs ("Which option is correct?" became "Output format
# required: option."). Every other logged prompt equals mulligan's task prompt exactly.
PROMPTS_CHANGED_SINCE_THE_LOGS = {("theoremqa", "50"), ("theoremqa", "51"), ("theoremqa", "52")}


@pytest.fixture(scope="module")
def log_dir(mint_dir: Path) -> Path:
    path = mint_dir / LOG_DIR
    if not path.is_dir():
        pytest.skip(f"MINT's logs not found at {path}")
    return path


@pytest.fixture(scope="module")
def report(log_dir: Path, mint_dir: Path) -> ConformanceReport:
    """Judged once for the module (about 300 code runs), in its own event loop."""

    async def judge() -> ConformanceReport:
        async with code_runner() as runner:
            return await judge_mint_logs(
                log_dir, mint_dir, runner, concurrency=4, code_timeout_s=CODE_TIMEOUT_S
            )

    return asyncio.run(judge())


def test_checkers_agree_with_mint_logs(report: ConformanceReport) -> None:
    print()
    print(f"Re-judged MINT proposals in {LOG_DIR}")
    Console(width=120).print(agreement_table(report))
    for verdict in report.disagreements:
        reason = KNOWN_MINT_ERRORS.get(verdict.key, "NEW: not explained")
        print(
            f"  {verdict.suite}/{verdict.task_id} message {verdict.message_index}: "
            f"MINT {'right' if verdict.mint_correct else 'wrong'}, mulligan "
            f"{'right' if verdict.our_correct else 'wrong'}; answer {verdict.answer[:60]!r}; "
            f"{reason}"
        )

    assert [s.suite for s in report.suites] == list(MINT_SUITES)
    assert sum(s.proposals for s in report.suites) == 603
    assert report.agreement >= MIN_AGREEMENT

    found = {v.key: v for v in report.disagreements}
    new = [f"{v.key}: {v.answer[:80]!r} -> {v.detail[:200]}" for k, v in found.items()
           if k not in KNOWN_MINT_ERRORS]  # fmt: skip
    assert new == [], "new disagreements with MINT's logs"
    stale = sorted(set(KNOWN_MINT_ERRORS) - set(found))
    assert stale == [], "listed disagreements that no longer occur: update KNOWN_MINT_ERRORS"


def test_listed_disagreements_are_what_their_reason_says(
    report: ConformanceReport, mint_dir: Path
) -> None:
    tasks = {(t.suite, t.id): t for t in load_suite("mint", mint_dir)}
    for verdict in report.disagreements:
        task = tasks[(verdict.suite, verdict.task_id)]
        reason = KNOWN_MINT_ERRORS[verdict.key]
        assert verdict.our_correct and not verdict.mint_correct
        if reason == NEGATIVE_REFERENCE:
            assert float(task.reference) < 0
            assert float(verdict.answer) == float(task.reference)
        else:
            assert task.metadata["answer_type"] == "option"
            assert verdict.answer.startswith(f"{task.reference})")


def test_episode_outcomes_agree_except_the_listed_ones(report: ConformanceReport) -> None:
    listed_episodes = {(suite, task) for suite, task, _ in KNOWN_MINT_ERRORS}
    assert sum(s.episodes for s in report.suites) == 452
    disagreeing = sum(s.episodes - s.episodes_agreeing for s in report.suites)
    assert disagreeing == len(listed_episodes)


def test_task_prompts_match_the_logged_prompts(report: ConformanceReport) -> None:
    by_suite = {s.suite: s for s in report.suites}
    for suite in MINT_SUITES:
        changed = sum(1 for s, _ in PROMPTS_CHANGED_SINCE_THE_LOGS if s == suite)
        assert by_suite[suite].prompts_matching == by_suite[suite].episodes - changed


# ``mulligan import mint DIR --rejudge`` on a two-episode log -----------------------------------


def _logged_episode(task: Task, answers: list[str], success: bool) -> dict[str, object]:
    history = [{"role": "user", "content": f"Task:\n{task.prompt}"}]
    for i, answer in enumerate(answers):
        history.append(
            {"role": "assistant", "content": f"Assistant:\n<solution> {answer} </solution>"}
        )
        if i + 1 < len(answers):
            history.append({"role": "user", "content": "Observation:\nYour answer is wrong.\n"})
    return {
        "state": {"history": history, "success": success, "terminate_reason": "max_propose_steps"},
        "task": {"task_id": task.id, "prompt": task.prompt, "reference": task.reference},
    }


def test_cli_rejudge_prints_the_agreement_table(tmp_path: Path, mint_dir: Path) -> None:
    right, wrong = load_mint_suite("gsm8k", mint_dir)[:2]
    lines = [
        _logged_episode(right, ["-1", right.reference], success=True),
        _logged_episode(wrong, ["-1", "-2"], success=False),
    ]
    results = tmp_path / "F=None" / "max2_p2+tool+cd" / "reasoning" / "gsm8k" / "results.jsonl"
    results.parent.mkdir(parents=True)
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["import", "mint", str(tmp_path), "--rejudge", "--data-dir", str(mint_dir)]

    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gsm8k" in result.output and "overall" in result.output
    assert "100.0%" in result.output and "2/2" in result.output

    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["log_dir"] == str(tmp_path / "F=None" / "max2_p2+tool+cd")
    assert summary["agreement"] == 1.0 and summary["disagreements"] == []
    assert [(s["suite"], s["proposals"], s["episodes"]) for s in summary["suites"]] == [
        ("gsm8k", 4, 2)
    ]


def test_cli_import_mint_needs_out_or_rejudge(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["import", "mint", str(tmp_path)])
    assert result.exit_code == 2 and "--rejudge" in result.output
