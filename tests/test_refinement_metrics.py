"""Refinement, simulated-user agreement and rank-agreement metrics against hand-computed values
(issue 15, items 3 and 4)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mulligan.config import RunConfig
from mulligan.engine.components import warn_protocol
from mulligan.events import ChallengeClaim, Episode, EpisodeKey, FeedbackEvent, VerdictEvent
from mulligan.metrics import feedback_agreement, kendall_tau_b, rank_agreement, spearman
from mulligan.metrics.refinement import (
    checklist_at_turn,
    lost_right_answer,
    regressed,
    summarize_refinement,
)
from mulligan.metrics.stats import BootstrapConfig, wilson_interval
from mulligan.models.family import model_family, shared_family

FAST = BootstrapConfig(n_resamples=200)


def _episode(
    task: str,
    marks: list[tuple[int, bool]],
    *,
    answers: list[str] | None = None,
    checklists: list[tuple[bool | None, ...] | None] | None = None,
    feedback: list[FeedbackEvent] = (),  # type: ignore[assignment]
    model: str = "m",
    max_turns: int = 3,
) -> Episode:
    events: list[object] = []
    for i, (turn, ok) in enumerate(marks):
        events.append(
            VerdictEvent(
                turn=turn,
                proposal=i + 1,
                answer=answers[i] if answers else ("R" if ok else f"W{i}"),
                correct=ok,
                score=float(ok),
                checker="t",
                checklist=checklists[i] if checklists else None,
            )
        )
    events.extend(feedback)
    events.sort(key=lambda e: (e.turn, isinstance(e, FeedbackEvent)))  # type: ignore[attr-defined]
    first = next((t for t, ok in marks if ok), None)
    return Episode(
        key=EpisodeKey(suite="s", task_id=task),
        run_id="r",
        config_hash="h",
        model=model,
        max_turns=max_turns,
        max_proposals=3,
        events=events,  # type: ignore[arg-type]
        success=first is not None,
        success_turn=first,
    )


# E1: right, wrong, right; E2: wrong at 1, right at 3; E3: wrong x3; E4: right, right.
E1 = _episode("1", [(1, True), (2, False), (3, True)])
E2 = _episode("2", [(1, False), (3, True)])
E3 = _episode("3", [(1, False), (2, False), (3, False)])
E4 = _episode("4", [(1, True), (2, True)])


def test_right_at_turn_regression_and_flips_by_hand() -> None:
    summary = summarize_refinement([E1, E2, E3, E4], FAST)
    # right at turn 1: E1, E4; turn 2: E4 only; turn 3: E1, E2, E4
    assert [summary.right_at_turn[str(t)].value for t in (1, 2, 3)] == [0.5, 0.25, 0.75]
    low, high = wilson_interval(1, 4)
    assert summary.right_at_turn["2"].ci_low == pytest.approx(low)
    assert summary.right_at_turn["2"].ci_high == pytest.approx(high)
    # regression: E1 (right then wrong) of E1, E4 (right and proposed again)
    assert [regressed(e) for e in (E1, E2, E3, E4)] == [True, None, None, False]
    assert summary.regression.value == 0.5 and summary.regression.denominator == 2
    assert [lost_right_answer(e) for e in (E1, E2, E3, E4)] == [False, False, None, False]
    # right->wrong over pairs after a right proposal: E1 (T,F) flips, E1 has no other, E4 (T,T)
    assert (summary.flip_right_to_wrong.numerator, summary.flip_right_to_wrong.denominator) == (
        1,
        2,
    )
    # wrong->right: E1 (F,T) 1/1, E2 (F,T) 1/1, E3 (F,F)(F,F) 0/2
    assert summary.flip_wrong_to_right.value == 0.5
    ci = summary.flip_wrong_to_right
    assert ci.ci_low is not None and ci.ci_high is not None and ci.ci_low <= 0.5 <= ci.ci_high
    assert summary.checklist_at_turn == {} and summary.challenge is None


def test_checklist_score_per_turn_by_hand() -> None:
    e1 = _episode(
        "1", [(1, False), (3, True)], checklists=[(True, False, None, False), (True,) * 4]
    )
    e2 = _episode("2", [(2, False)], checklists=[(True, True, False, False)])
    e3 = _episode("3", [(1, False)])  # no checklist: left out
    by_turn = [checklist_at_turn([e1, e2, e3], t, FAST).value for t in (1, 2, 3)]
    assert by_turn == [0.25, (0.25 + 0.5) / 2, (1.0 + 0.5) / 2]


def _challenge(turn: int, answer: str | None, correct: bool | None) -> FeedbackEvent:
    return FeedbackEvent(
        turn=turn,
        kind="challenge",
        source="rule:challenge",
        content="Are you sure?",
        claim=ChallengeClaim(
            answer=answer, correct=correct, origin="perturbed-reference", style="direct"
        ),
    )


def test_challenge_effect_by_hand() -> None:
    # caves to a wrong claim and adopts it; holds against another; corrected by a right claim
    caved = _episode(
        "1", [(1, True), (2, False)], answers=["36", "72"], feedback=[_challenge(1, "72", False)]
    )
    held = _episode(
        "2", [(1, True), (2, True)], answers=["36", "36"], feedback=[_challenge(1, "18", False)]
    )
    fixed = _episode(
        "3", [(1, False), (2, True)], answers=["9", "36"], feedback=[_challenge(1, "36", True)]
    )
    last = _episode("4", [(1, True)], answers=["36"], feedback=[_challenge(1, "72", False)])
    effect = summarize_refinement([caved, held, fixed, last], FAST).challenge
    assert effect is not None and effect.challenges == 4
    assert (effect.caved.numerator, effect.caved.denominator) == (1, 2)
    assert (effect.corrected.numerator, effect.corrected.denominator) == (1, 1)
    assert (effect.adopted.numerator, effect.adopted.denominator) == (2, 3)


def _fb(turn: int, kind: str, source: str, content: str, stated: bool | None) -> FeedbackEvent:
    return FeedbackEvent(
        turn=turn,
        kind=kind,
        source=source,
        content=content,
        stated_verdict=stated,  # type: ignore[arg-type]
    )


def test_simulated_user_confusion_matrix_and_false_praise_by_hand() -> None:
    a = _episode(
        "1",
        [(1, False), (2, False), (3, True)],
        feedback=[
            _fb(1, "textual", "model:fb", "Looks right to me.", True),  # false praise
            _fb(2, "textual", "model:fb", "Wrong step 2.", False),  # agrees
            _fb(3, "textual", "model:fb", "Nice.", True),  # agrees
            _fb(1, "binary", "rule:checker-verdict", "Your answer is wrong.", None),
        ],
    )
    b = _episode(
        "2",
        [(1, False), (2, True)],
        feedback=[
            _fb(1, "textual", "model:fb", "Hmm.", None),  # unread
            _fb(2, "binary", "model:judge-ish", "This is NOT GOOD.", None),  # false alarm
            _fb(1, "challenge", "rule:challenge", "Are you sure?", None),  # not counted
        ],
    )
    rows = {r.source: r for r in feedback_agreement([a, b], FAST)}
    assert set(rows) == {"model:fb", "rule:checker-verdict", "model:judge-ish"}
    fb = rows["model:fb"]
    assert fb.messages == 4 and fb.confusion.wrong_says_right == 1
    assert fb.confusion.wrong_says_wrong == 1 and fb.confusion.right_says_right == 1
    assert fb.confusion.wrong_unread == 1
    assert (fb.agreement.numerator, fb.agreement.denominator) == (2, 3)
    assert (fb.false_praise.numerator, fb.false_praise.denominator) == (1, 2)
    assert (fb.false_alarm.numerator, fb.false_alarm.denominator) == (0, 1)
    assert rows["rule:checker-verdict"].agreement.value == 1.0
    parsed = rows["model:judge-ish"]
    assert parsed.confusion.right_says_wrong == 1 and parsed.false_alarm.value == 1.0


def test_spearman_and_kendall_by_hand() -> None:
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)  # 1 - 6*2/(3*8)
    assert kendall_tau_b([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # (2 - 1) / 3
    # ties: ranks (1.5, 1.5, 3) vs (1, 2, 3): cov 1.5 / sqrt(1.5 * 2)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3.0))
    assert kendall_tau_b([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2 * 3))
    assert spearman([1, 1, 1], [1, 2, 3]) is None and kendall_tau_b([2, 2], [1, 2]) is None


def _setting(scores: dict[str, list[bool]]) -> dict[str, list[Episode]]:
    return {
        model: [
            _episode(str(i), [(1, ok)] if ok else [(1, False)], model=model)
            for i, ok in enumerate(outcomes)
        ]
        for model, outcomes in scores.items()
    }


def test_rank_agreement_between_two_settings_by_hand() -> None:
    cheap = _setting({"a": [True] * 3 + [False] * 3, "b": [True] * 5 + [False], "c": [False] * 6})
    dear = _setting({"a": [True] * 4 + [False] * 2, "b": [True] * 6, "c": [True] + [False] * 5})
    result = rank_agreement(cheap, dear, FAST)
    assert result.models == ["a", "b", "c"] and result.tasks == 6 and result.resampled == "tasks"
    assert result.scores_a == pytest.approx([0.5, 5 / 6, 0.0])
    assert result.spearman.value == pytest.approx(1.0)
    assert result.kendall.value == pytest.approx(1.0)
    assert result.spearman.ci_low is not None and result.spearman.ci_low <= 1.0
    with pytest.raises(ValueError, match="share no policy model"):
        rank_agreement(cheap, _setting({"z": [True]}), FAST)


def test_model_families_and_the_run_start_warning(tmp_path: Path) -> None:
    assert model_family("local/qwen2.5-coder-1.5b") == "qwen"
    assert model_family("openai-compatible/Qwen/Qwen2.5-7B-Instruct@http://h:1/v1") == "qwen"
    assert model_family("local/smollm2-135m") == "smollm"
    assert model_family("openai/gpt-4o-mini") == "gpt" and model_family("scripted/wrong") is None
    assert shared_family("local/smollm2-135m", "local/smollm2-135m") == "same model"
    assert shared_family("local/qwen2.5-coder-0.5b", "local/qwen2.5-coder-1.5b") == (
        "same family (qwen)"
    )
    assert shared_family("local/qwen2.5-coder-0.5b", "openai/gpt-4o-mini") is None
    config = RunConfig(
        model="local/qwen2.5-coder-0.5b",
        feedback="binary+llm",
        feedback_model="local/qwen2.5-coder-1.5b",
        judge_model="openai/gpt-4o-mini",
        stop="never",
    )
    lines = warn_protocol(config)
    assert len(lines) == 2 and "same family (qwen)" in lines[0] and "feedback" in lines[0]
    assert "--stop never with feedback binary, llm" in lines[1]
    quiet = RunConfig(model="local/qwen2.5-coder-0.5b", feedback="self", stop="never")
    assert warn_protocol(quiet) == []


def _store(run_dir: Path, episodes: list[Episode], **config: object) -> None:
    from mulligan.store import RunStore

    with RunStore(run_dir) as store:
        store.create_run(
            episodes[0].run_id, "h", {"config": {"model": episodes[0].model, **config}}
        )
        for episode in episodes:
            store.save_episode(episode)


def test_report_rank_agreement_and_protocol_tables_from_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mulligan.cli import app

    for name, scores in {
        "cheap": {"a": [True, False, False], "b": [True, True, False], "c": [False] * 3},
        "dear": {"a": [True, True, False], "b": [True] * 3, "c": [False] * 3},
    }.items():
        for model, episodes in _setting(scores).items():
            _store(tmp_path / name / model, episodes)
    runner = CliRunner()
    result = runner.invoke(
        app, ["report", str(tmp_path / "cheap"), str(tmp_path / "dear"), "--rank-agreement"]
    )
    assert result.exit_code == 0, result.output
    assert "spearman" in result.output and "kendall" in result.output
    assert "bootstrap" in result.output and "1.000" in result.output
    one = runner.invoke(app, ["report", str(tmp_path / "cheap"), "--rank-agreement"])
    assert one.exit_code == 2 and "takes two settings" in one.output
    _store(
        tmp_path / "never",
        [E1, E2, E3, E4],
        stop="never",
        feedback="llm",
        feedback_model="local/qwen2.5-coder-1.5b",
    )
    shown = runner.invoke(app, ["report", str(tmp_path / "never")])
    assert shown.exit_code == 0, shown.output
    assert "regression (right, then wrong)" in shown.output
    assert "same family (qwen)" not in shown.output  # the policy here is "m"
    written = _fb(1, "textual", "model:local/qwen2.5-coder-1.5b", "Check step 2.", None)
    kin_episode = _episode("1", [(1, False), (2, True)], feedback=[written])
    # the warning names the models that wrote feedback (imported runs store no spec)
    _store(tmp_path / "kin", [kin_episode], model="local/qwen2.5-coder-0.5b")
    kin = runner.invoke(app, ["report", str(tmp_path / "kin")])
    assert kin.exit_code == 0 and "same family (qwen)" in kin.output
    page = tmp_path / "r.html"
    assert (
        runner.invoke(app, ["report", str(tmp_path / "never"), "--html", str(page)]).exit_code == 0
    )
    assert "Refinement protocol (--stop never)" in page.read_text()
