"""Metrics on hand-built episodes with known answers: SR@k, trend, turns, dynamics, cost, runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mulligan.events import (
    Episode,
    EpisodeKey,
    Event,
    FeedbackEvent,
    FeedbackKind,
    LeakFlags,
    ModelCallEvent,
    VerdictEvent,
)
from mulligan.metrics import (
    BootstrapConfig,
    RunSummary,
    compare_runs,
    cost_per_solved,
    delta_feedback,
    feedback_counts,
    feedback_friction,
    feedback_provider_value,
    leak_counts,
    linear_trend,
    macro_sr_at_k_estimates,
    mean_reciprocal_rank,
    mean_turns_to_success,
    recall_at_budget,
    recovery_rate,
    regression_rate,
    repeated_answer_rate,
    sr_at_k_curve,
    sr_at_k_estimates,
    sr_trend,
    summarize_run,
)
from mulligan.store import RunStore, find_runs

FAST = BootstrapConfig(n_resamples=300)


def episode(
    task_id: str,
    *,
    suite: str = "gsm8k",
    success_turn: int | None = None,
    answers: tuple[tuple[str, bool], ...] = (),
    events: tuple[Event, ...] = (),
    model: str = "policy-m",
    max_turns: int = 3,
) -> Episode:
    """An episode whose proposals are ``answers`` ((answer, correct) in order, one per turn)."""
    verdicts = [
        VerdictEvent(
            turn=turn,
            proposal=turn,
            answer=answer,
            correct=correct,
            score=float(correct),
            checker="test",
        )
        for turn, (answer, correct) in enumerate(answers, start=1)
    ]
    return Episode(
        key=EpisodeKey(suite=suite, task_id=task_id),
        run_id="r",
        config_hash="h",
        model=model,
        max_turns=max_turns,
        max_proposals=5,
        events=[*verdicts, *events],
        success=success_turn is not None,
        success_turn=success_turn,
    )


def feedback(
    turn: int,
    *,
    kind: FeedbackKind = "textual",
    saw_reference: bool = True,
    leaked: bool = False,
) -> FeedbackEvent:
    return FeedbackEvent(
        turn=turn,
        kind=kind,
        source="model:critic",
        content="look again",
        saw_reference=saw_reference,
        leak=LeakFlags(exact=leaked),
    )


# SR@k and its trend --------------------------------------------------------------------------


def test_sr_at_k_micro_and_macro() -> None:
    episodes = [
        episode("1", suite="a", success_turn=1),
        episode("2", suite="a", success_turn=3),
        episode("3", suite="b"),
        episode("4", suite="b", success_turn=2),
    ]
    assert sr_at_k_curve(episodes) == {1: 0.25, 2: 0.5, 3: 0.75}
    micro = sr_at_k_estimates(episodes, bootstrap=FAST)
    assert [micro[k].value for k in (1, 2, 3)] == [0.25, 0.5, 0.75]
    assert micro[3].numerator == 3 and micro[3].denominator == 4 and micro[3].episodes == 4
    macro = macro_sr_at_k_estimates(episodes, bootstrap=FAST)
    # suite a: 0.5, 0.5, 1.0; suite b: 0, 0.5, 0.5
    assert [macro[k].value for k in (1, 2, 3)] == [0.25, 0.5, 0.75]
    summary = summarize_run(episodes, FAST)
    assert [summary.macro_sr_at_k[str(k)].value for k in (1, 2, 3)] == [0.25, 0.5, 0.75]


def test_macro_sr_at_k_weighs_suites_not_episodes() -> None:
    # Unequal suites: 4 episodes in a, 1 in b. With equal sizes macro = micro, so an
    # implementation that returned the micro-average passed the test above.
    episodes = [
        episode("1", suite="a", success_turn=1),
        episode("2", suite="a", success_turn=1),
        episode("3", suite="a", success_turn=2),
        episode("4", suite="a"),
        episode("5", suite="b"),
    ]
    micro = sr_at_k_estimates(episodes, bootstrap=FAST)
    assert [micro[k].value for k in (1, 2, 3)] == [0.4, 0.6, 0.6]
    macro = macro_sr_at_k_estimates(episodes, bootstrap=FAST)
    # suite a: 0.5, 0.75, 0.75; suite b: 0, 0, 0; macro = their mean.
    assert [macro[k].value for k in (1, 2, 3)] == [0.25, 0.375, 0.375]
    assert (macro[2].numerator, macro[2].denominator, macro[2].episodes) == (0.75, 2, 5)
    # The interval combines the suites' own intervals (MOVER over Wilson), so it brackets the
    # macro value, not the micro one, and differs from micro's.
    low, high = macro[1].ci_low, macro[1].ci_high
    assert low is not None and high is not None and low <= 0.25 <= high
    assert (low, high) != (micro[1].ci_low, micro[1].ci_high)
    summary = summarize_run(episodes, FAST)
    assert [summary.macro_sr_at_k[str(k)].value for k in (1, 2, 3)] == [0.25, 0.375, 0.375]
    assert [summary.sr_at_k[str(k)].value for k in (1, 2, 3)] == [0.4, 0.6, 0.6]
    assert summary.suites["b"].sr_at_k["1"].value == 0.0


def test_linear_trend_known_lines() -> None:
    fit = linear_trend({1: 1.0, 2: 3.0, 3: 5.0})
    assert fit.slope == pytest.approx(2.0)
    assert fit.intercept == pytest.approx(-1.0)
    assert fit.rsquared == pytest.approx(1.0)
    assert linear_trend({1: 4.0, 2: 4.0}).rsquared is None  # flat: r^2 undefined, not 1
    # MINT's published gpt-3.5-turbo-0613 SR@1..5 (percent): slope 8.175, r^2 0.9587.
    mint = linear_trend({1: 2.73, 2: 16.89, 3: 24.06, 4: 31.74, 5: 36.18})
    assert mint.slope == pytest.approx(8.175)
    assert mint.rsquared == pytest.approx(0.958672, abs=1e-6)
    with pytest.raises(ValueError, match="two points"):
        linear_trend({1: 1.0})


def test_sr_trend_is_in_percentage_points_per_turn() -> None:
    episodes = [episode("1", success_turn=1), episode("2", success_turn=2), episode("3")]
    fit = sr_trend(episodes)  # SR = 1/3, 2/3, 2/3
    assert fit is not None
    assert fit.slope == pytest.approx(100 / 6)
    assert sr_trend([episode("1", max_turns=1)]) is None


# Turns ----------------------------------------------------------------------------------------


def test_mrr_recall_and_turns_to_success() -> None:
    episodes = [
        episode("1", success_turn=1, max_turns=4),
        episode("2", success_turn=2, max_turns=4),
        episode("3", max_turns=4),
        episode("4", success_turn=4, max_turns=4),
    ]
    assert mean_reciprocal_rank(episodes, bootstrap=FAST).value == pytest.approx(1.75 / 4)
    assert recall_at_budget(episodes, bootstrap=FAST).value == 0.75
    assert mean_turns_to_success(episodes, bootstrap=FAST).value == pytest.approx(7 / 3)
    # With a budget of 2 turns the episode solved at turn 4 counts as unsolved.
    assert mean_reciprocal_rank(episodes, 2, FAST).value == pytest.approx(1.5 / 4)
    assert recall_at_budget(episodes, 2, FAST).value == 0.5
    assert mean_turns_to_success(episodes, 2, FAST).value == pytest.approx(1.5)
    assert mean_turns_to_success([episode("x")], bootstrap=FAST).value is None


# Dynamics -------------------------------------------------------------------------------------


def test_recovery_and_regression_rates() -> None:
    episodes = [
        episode("1", answers=(("3", False), ("4", True)), success_turn=2),  # recovered
        episode("2", answers=(("3", False), ("5", False))),  # not recovered
        episode("3", answers=(("4", True),), success_turn=1),  # no pair
        episode("4", answers=(("9", False),)),  # wrong, never tried again: no pair
    ]
    recovery = recovery_rate(episodes, FAST)
    assert (recovery.numerator, recovery.denominator, recovery.value) == (1, 2, 0.5)
    assert regression_rate(episodes, FAST).value is None  # MINT stops at the first correct one
    # A protocol that keeps going after a correct answer can regress.
    keeps_going = [episode("5", answers=(("4", True), ("5", False), ("4", True)), success_turn=1)]
    assert regression_rate(keeps_going, FAST).value == 1.0
    assert recovery_rate(keeps_going, FAST).value == 1.0


def test_repeated_answer_rate_uses_normalised_answers() -> None:
    episodes = [
        # 2nd repeats the 1st (6 == 6.0), 3rd is new: 1 of 2.
        episode("1", answers=(("6", False), (" 6.0 ", False), ("7", False))),
        # 2nd is new and correct: 0 of 1.
        episode("2", answers=(("A", False), ("B", True)), success_turn=2),
        # Nothing was wrong before the only proposal: not eligible.
        episode("3", answers=(("C", True),), success_turn=1),
    ]
    rate = repeated_answer_rate(episodes, FAST)
    assert (rate.numerator, rate.denominator) == (1, 3)


def test_feedback_friction_counts_only_reference_aware_non_leaking_feedback() -> None:
    episodes = [
        episode("1", events=(feedback(1),)),  # qualifies, stays wrong
        episode("2", success_turn=3, events=(feedback(1),)),  # qualifies, solved
        episode("3", events=(feedback(1, leaked=True),)),  # leaked: not counted
        episode("4", events=(feedback(1, saw_reference=False),)),  # did not know: not counted
        episode("5", success_turn=1, events=(feedback(1),)),  # came after the solution
        episode("6", events=(feedback(1, kind="binary"),)),  # qualifies, stays wrong
    ]
    friction = feedback_friction(episodes, bootstrap=FAST)
    assert (friction.numerator, friction.denominator) == (2, 3)
    textual = feedback_friction(episodes, kinds={"textual"}, bootstrap=FAST)
    assert (textual.numerator, textual.denominator) == (1, 2)
    assert feedback_friction(episodes, kinds={"critique"}, bootstrap=FAST).value is None


def test_feedback_counts_per_provider_kind_and_source() -> None:
    episodes = [
        episode("1", events=(feedback(1), feedback(2, leaked=True))),
        episode("2", success_turn=3, events=(feedback(1, kind="binary"), feedback(2))),
        episode("3"),  # no feedback at all
    ]
    counts = feedback_counts(episodes, FAST)
    (binary, textual) = counts.kinds
    assert (textual.kind, textual.messages, textual.episodes, textual.leaks) == ("textual", 3, 2, 1)
    assert (binary.kind, binary.messages, binary.episodes) == ("binary", 1, 1)
    assert textual.friction == feedback_friction(episodes, {"textual"}, FAST)
    assert [(p.kind, p.messages, p.episodes) for p in counts.providers] == [
        ("binary", 1, 1),
        ("textual", 3, 2),
    ]
    (source,) = counts.sources  # both kinds come from the one source "model:critic"
    assert (source.source, source.messages, source.leaked, source.leak_rate) == (
        "model:critic",
        4,
        1,
        0.25,
    )
    assert source.by_flag == {"exact": 1} and source.solved_after_leak == 0


# Cost -----------------------------------------------------------------------------------------


def _call(role: str, prompt: int, completion: int, seconds: float, usd: float) -> ModelCallEvent:
    return ModelCallEvent(
        turn=1,
        role=role,  # type: ignore[arg-type]
        model="m",
        output="x",
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_s=seconds,
        cost_usd=usd,
    )


def test_cost_per_solved_charges_every_episode_to_the_solved_ones() -> None:
    episodes = [
        episode(
            "1",
            success_turn=1,
            events=(_call("policy", 100, 10, 1.5, 0.01), _call("feedback", 50, 5, 0.5, 0.02)),
        ),
        episode("2", events=(_call("policy", 200, 20, 2.0, 0.03),)),
    ]
    cost = cost_per_solved(episodes, bootstrap=FAST)
    assert (cost.episodes, cost.solved) == (2, 1)
    assert cost.tokens_per_solved.value == 385
    assert cost.seconds_per_solved.value == pytest.approx(4.0)
    assert cost.usd_per_solved.value == pytest.approx(0.06)
    assert cost.by_role["policy"].total_tokens == 330 and cost.by_role["feedback"].calls == 1
    policy_only = cost_per_solved(episodes, roles=("policy",), bootstrap=FAST)
    assert policy_only.tokens_per_solved.value == 330
    assert cost_per_solved([episode("3")], bootstrap=FAST).usd_per_solved.value is None


def test_cost_leaves_out_a_fork_branchs_replayed_calls() -> None:
    """A branch's policy and judge calls before its branch turn were replayed from the source
    run, which paid for them: they stay in the events, and neither usage nor cost counts them."""
    calls = [
        _call("policy", 100, 10, 1.0, 0.01).model_copy(update={"turn": turn}) for turn in (1, 2, 3)
    ]
    judged = [_call("judge", 7, 3, 0.5, 0.0).model_copy(update={"turn": turn}) for turn in (2, 3)]
    branch = episode("1", success_turn=3, events=(*calls, *judged)).model_copy(
        update={"parent_episode": "gsm8k/1#0", "branch_turn": 3, "branch": 0}
    )
    assert [branch.is_replayed(c) for c in (*calls, *judged)] == [True, True, False, True, False]
    assert branch.own_calls() == [calls[2], judged[1]]
    assert (branch.prompt_tokens, branch.completion_tokens) == (107, 13)
    cost = cost_per_solved([branch], bootstrap=FAST)
    assert cost.replayed_calls == 3 and cost.by_role["policy"].calls == 1
    assert cost.by_role["judge"].calls == 1
    assert cost.tokens_per_solved.value == 120
    assert cost.seconds_per_solved.value == pytest.approx(1.5)
    plain = episode("2", success_turn=3, events=tuple(calls))  # not a branch: all its own
    assert cost_per_solved([plain], bootstrap=FAST).tokens_per_solved.value == 330


# Two runs ----------------------------------------------------------------------------------------


def _run(
    outcomes: dict[str, int | None], model: str = "policy-m", kind: FeedbackKind = "textual"
) -> list[Episode]:
    return [
        episode(task, success_turn=turn, model=model, events=(feedback(1, kind=kind),))
        for task, turn in outcomes.items()
    ]


def test_compare_runs_pairs_shared_tasks_and_runs_mcnemar() -> None:
    with_fb = _run({"1": 1, "2": 2, "3": 1, "4": None})
    without = _run({"1": None, "2": None, "3": 3, "4": None, "5": 1}, kind="binary")
    result = delta_feedback(with_fb, without, k=3, bootstrap=FAST)
    assert (result.shared, result.only_a, result.only_b, result.paired) == (4, 0, 1, True)
    assert result.sr_a.value == 0.75 and result.sr_b.value == 0.25
    assert result.delta.value == pytest.approx(0.5)
    assert result.test is not None
    assert (result.test.both, result.test.a_only, result.test.b_only, result.test.neither) == (
        1,
        2,
        0,
        1,
    )
    assert result.test.p_value == pytest.approx(0.5)  # 2 * P(Bin(2, 1/2) <= 0)
    assert result.delta.ci_low is not None and result.delta.ci_high is not None
    assert result.delta.ci_low <= 0.5 <= result.delta.ci_high
    # At k = 1 only tasks solved at turn 1 count.
    assert compare_runs(with_fb, without, k=1, bootstrap=FAST).delta.value == pytest.approx(0.5)


def test_compare_runs_without_shared_tasks_is_unpaired() -> None:
    result = compare_runs(_run({"1": 1, "2": 1}), _run({"3": None, "4": 1}), bootstrap=FAST)
    assert not result.paired and result.test is None
    assert result.delta.value == pytest.approx(0.5)


def test_feedback_provider_value_needs_one_policy_and_shared_tasks() -> None:
    a = _run({"1": 1, "2": None}, kind="textual")
    b = _run({"1": None, "2": None}, kind="binary")
    value = feedback_provider_value(a, b, bootstrap=FAST)
    assert value.policy == "policy-m"
    assert value.providers_a == ["textual:model:critic"]
    assert value.providers_b == ["binary:model:critic"]
    assert value.comparison.delta.value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one policy"):
        feedback_provider_value(a, _run({"1": 1}, model="other"), bootstrap=FAST)
    with pytest.raises(ValueError, match="share no task"):
        feedback_provider_value(a, _run({"9": 1}), bootstrap=FAST)


# Summary and runs ------------------------------------------------------------------------------


def test_summarize_run_round_trips_as_json() -> None:
    episodes = [
        episode("1", suite="a", answers=(("1", False), ("2", True)), success_turn=2),
        episode("2", suite="b", answers=(("1", False),), events=(feedback(1),)),
    ]
    summary = summarize_run(episodes, FAST)
    assert summary.episodes == 2 and summary.max_k == 3
    assert summary.sr_at_k["2"].value == 0.5
    assert set(summary.suites) == {"a", "b"}
    assert summary.recovery_rate.value == 1.0
    assert RunSummary.model_validate_json(summary.model_dump_json()) == summary


def test_find_runs(tmp_path: Path) -> None:
    for name in ("b/run", "a", "c/deeper/run"):
        with RunStore(tmp_path / name) as store:
            store.create_run(name, "h", {})
    (tmp_path / "not-a-run").mkdir()
    assert find_runs(tmp_path) == [tmp_path / "a", tmp_path / "b/run", tmp_path / "c/deeper/run"]
    with pytest.raises(FileNotFoundError):
        find_runs(tmp_path / "missing")


def test_leak_counts_solves_that_followed_a_leak() -> None:
    def said(turn: int, source: str, leaked: bool) -> FeedbackEvent:
        flags = LeakFlags(exact=True) if leaked else LeakFlags()
        return FeedbackEvent(turn=turn, kind="textual", source=source, content="x", leak=flags)

    episodes = [
        # Leak at turn 1, solved at turn 2: counted (once, though it leaked twice).
        episode("1", success_turn=2, events=(said(1, "model:a", True), said(1, "model:a", True))),
        # A leak at the solving turn came after the solution: not counted.
        episode("2", success_turn=2, events=(said(1, "model:a", False), said(2, "model:a", True))),
        # Leaked but never solved: not counted.
        episode("3", events=(said(1, "model:a", True), said(2, "model:a", True))),
        # Solved after a leak from another source only.
        episode("4", success_turn=3, events=(said(1, "model:a", False), said(2, "model:b", True))),
    ]
    counts = leak_counts(iter(episodes))  # a one-shot iterable is enough
    assert (counts["model:a"].events, counts["model:a"].leaked) == (7, 5)
    assert counts["model:a"].solved_after_leak == 1
    assert counts["model:b"].solved_after_leak == 1
    # Bare events carry no outcome.
    assert leak_counts(episodes[0].events)["model:a"].solved_after_leak == 0


def _audited(
    turn: int,
    *,
    raw: LeakFlags | None,
    leak: LeakFlags | None = None,
    intervention: str = "none",
    regenerations: int = 0,
    source: str = "model:critic",
    replayed: bool = False,
) -> FeedbackEvent:
    origin = (
        {"run_id": "old", "run_dir": "runs/old", "suite": "gsm8k", "task_id": "1", "epoch": 0,
         "turn": turn, "at": "2024-01-01T00:00:00Z"}
        if replayed
        else None
    )  # fmt: skip
    return FeedbackEvent.model_validate(
        {
            "turn": turn,
            "kind": "textual",
            "source": source,
            "content": "x",
            "leak": leak or LeakFlags(),
            "raw_leak": raw,
            "intervention": intervention,
            "regenerations": regenerations,
            "replayed_from": origin,
        }
    )


def test_leak_audit_counts_raw_and_residual_leaks_per_source() -> None:
    numeric, letter = LeakFlags(numeric=True), LeakFlags(option_letter=True)
    episodes = [
        episode("1", events=(
            _audited(1, raw=numeric, intervention="redacted"),  # leaked, masked
            _audited(2, raw=letter, intervention="regenerated", regenerations=2),
        )),
        episode("2", success_turn=3, events=(
            _audited(1, raw=numeric, leak=numeric, intervention="gave_up", regenerations=3),
            _audited(2, raw=LeakFlags()),  # clean
            _audited(1, raw=None, leak=numeric, source="model:old"),  # stored before raw_leak
        )),
    ]  # fmt: skip
    counts = leak_counts(episodes)
    critic = counts["model:critic"]
    # Before the fix the audit saw only the delivered text: 1 leak of 4, as if the guard's two
    # clean-ups had never been needed.
    assert (critic.events, critic.leaked, critic.raw_leaked) == (4, 1, 3)
    assert critic.raw_by_flag == {"numeric": 2, "option_letter": 1}
    assert critic.by_flag == {"numeric": 1}
    assert critic.interventions == {"redacted": 1, "regenerated": 1, "gave_up": 1}
    assert critic.regenerations == 5 and critic.solved_after_leak == 1
    assert (counts["model:old"].leaked, counts["model:old"].raw_leaked) == (1, 1)

    numbers = feedback_counts(episodes, FAST)
    row = next(s for s in numbers.sources if s.source == "model:critic")
    assert (row.leaked, row.leak_rate, row.raw_leaked, row.raw_leak_rate) == (1, 0.25, 3, 0.75)
    assert row.interventions == critic.interventions and row.regenerations == 5
    [kind] = numbers.kinds
    assert (kind.leaks, kind.raw_leaks) == (2, 4)
    provider = next(p for p in numbers.providers if p.source == "model:critic")
    assert (provider.leaks, provider.raw_leaks) == (1, 3)


def test_feedback_counts_tell_replayed_from_live() -> None:
    episodes = [
        episode("1", events=(
            _audited(1, raw=LeakFlags(), replayed=True),
            _audited(2, raw=LeakFlags(), replayed=True),
        )),
        episode("2", events=(_audited(1, raw=LeakFlags()),)),
    ]  # fmt: skip
    numbers = feedback_counts(episodes, FAST)
    assert (numbers.replayed, numbers.live) == (2, 1)
    [source] = numbers.sources
    assert source.replayed == 2 and source.messages == 3
    assert numbers.providers[0].replayed == numbers.kinds[0].replayed == 2
