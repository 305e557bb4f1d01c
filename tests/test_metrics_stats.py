"""Intervals (Wilson's for proportions; the bootstrap seeded, deterministic, sensible) and
McNemar's exact test."""

from __future__ import annotations

import math

import pytest

from mulligan.metrics import (
    BootstrapConfig,
    count_rate_estimate,
    macro_estimate,
    mcnemar_exact,
    mcnemar_test,
    mean_estimate,
    paired_difference,
    proportion_difference,
    proportion_estimate,
    ratio_estimate,
    unpaired_difference,
    wilson_interval,
)

OUTCOMES = [True] * 30 + [False] * 70


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = [math.sqrt(i) for i in range(50)]  # continuous: quantiles differ between seeds
    first = mean_estimate(values, BootstrapConfig(seed=7))
    again = mean_estimate(values, BootstrapConfig(seed=7))
    other = mean_estimate(values, BootstrapConfig(seed=8))
    assert first == again
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.value == pytest.approx(sum(values) / 50)
    assert proportion_estimate(OUTCOMES).value == 0.3


def test_bootstrap_interval_matches_the_normal_approximation() -> None:
    values = [1.0] * 200 + [0.0] * 200
    half_width = 1.96 * math.sqrt(0.25 / 400)  # ~0.049
    # Away from the edges the bootstrap and Wilson's interval both agree with it.
    for estimate in (
        mean_estimate(values, BootstrapConfig(n_resamples=4000)),
        proportion_estimate(values),
    ):
        assert estimate.ci_low is not None and estimate.ci_high is not None
        assert estimate.ci_low == pytest.approx(0.5 - half_width, abs=0.01)
        assert estimate.ci_high == pytest.approx(0.5 + half_width, abs=0.01)
        assert estimate.confidence == 0.95


def test_degenerate_and_undefined_estimates() -> None:
    sure = proportion_estimate([True] * 10)
    # 10/10 does not prove a rate of exactly 1: Wilson's lower bound is 0.72.
    assert (sure.value, sure.ci_high) == (1.0, 1.0)
    assert sure.ci_low == pytest.approx(0.7225, abs=1e-4)
    empty = proportion_estimate([])
    assert (empty.value, empty.ci_low, empty.episodes) == (None, None, 0)
    undefined = ratio_estimate([0.0, 0.0], [0.0, 0.0])
    assert undefined.value is None and undefined.ci_low is None
    with pytest.raises(ValueError):
        ratio_estimate([1.0], [1.0, 1.0])


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (0, 21, 0.0, 0.1546),  # the percentile bootstrap said [0, 0]
        (3, 3, 0.4385, 1.0),  # ... and [1, 1]
        (1, 1, 0.2065, 1.0),
        (10, 20, 0.2993, 0.7007),
        (1, 10, 0.0179, 0.4042),  # Wilson (1927); Newcombe (1998), method 3
    ],
)
def test_wilson_interval_is_right_at_the_edges(
    successes: int, n: int, low: float, high: float
) -> None:
    estimate = proportion_estimate([True] * successes + [False] * (n - successes))
    assert estimate.method == "wilson"
    assert (estimate.ci_low, estimate.ci_high) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )
    assert estimate.ci_low is not None and estimate.ci_high is not None
    assert estimate.ci_low < estimate.ci_high  # never a point, whatever the data
    assert estimate.ci_low <= successes / n <= estimate.ci_high


def test_wilson_interval_widens_with_confidence_and_refuses_nonsense() -> None:
    narrow = wilson_interval(5, 20, 0.8)
    wide = wilson_interval(5, 20, 0.99)
    assert wide[0] < narrow[0] < 0.25 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="mean_estimate"):
        proportion_estimate([0.5, 1.0])  # not a proportion: a mean of values


def test_each_estimate_names_its_interval_method() -> None:
    a, b = [1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]
    bootstrap = BootstrapConfig(n_resamples=50)
    assert ratio_estimate(a, b, bootstrap).method == "cluster-bootstrap"
    assert mean_estimate(a, bootstrap).method == "cluster-bootstrap"
    assert paired_difference(a, b, bootstrap).method == "paired-bootstrap"
    assert unpaired_difference(a, b, bootstrap).method == "unpaired-bootstrap"
    assert macro_estimate({"x": (a, [1.0] * 4)}, bootstrap).method == "stratified-bootstrap"


def test_ratio_estimate_resamples_episodes_not_events() -> None:
    # Two episodes with 1/1 and 0/9: pooled 1/10. Every draw is 0/18, 1/10 or 2/2, so the
    # interval spans [0, 1] while a per-event bootstrap would be far narrower.
    estimate = ratio_estimate([1.0, 0.0], [1.0, 9.0], BootstrapConfig(n_resamples=500))
    assert estimate.value == pytest.approx(0.1)
    assert estimate.ci_low == 0.0 and estimate.ci_high == 1.0


def test_chunked_draws_give_the_same_answer_as_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    from mulligan.metrics import stats

    whole = mean_estimate(OUTCOMES, BootstrapConfig(n_resamples=100))
    monkeypatch.setattr(stats, "_MAX_DRAWS_PER_CHUNK", 1000)  # 10 draws per chunk
    chunked = mean_estimate(OUTCOMES, BootstrapConfig(n_resamples=100))
    assert chunked == whole


def test_macro_estimate_averages_groups_and_is_deterministic() -> None:
    groups = {
        "a": ([1.0, 1.0, 0.0, 0.0], [1.0] * 4),  # 0.5
        "b": ([1.0, 0.0, 0.0, 0.0], [1.0] * 4),  # 0.25
        "empty": ([0.0], [0.0]),  # no denominator: left out
    }
    estimate = macro_estimate(groups, BootstrapConfig(n_resamples=500))
    assert estimate.value == pytest.approx(0.375)
    assert estimate.denominator == 2
    assert estimate == macro_estimate(
        dict(reversed(groups.items())), BootstrapConfig(n_resamples=500)
    )
    assert estimate.ci_low is not None and estimate.ci_low <= 0.375 <= (estimate.ci_high or 0)


def test_macro_estimate_of_unequal_groups_is_not_the_pooled_rate() -> None:
    groups = {
        "big": ([1.0] * 9 + [0.0], [1.0] * 10),  # 0.9 over 10 episodes
        "small": ([0.0, 0.0], [1.0, 1.0]),  # 0.0 over 2
    }
    estimate = macro_estimate(groups, BootstrapConfig(n_resamples=500))
    assert estimate.value == pytest.approx(0.45)  # pooled would be 9/12 = 0.75
    assert (estimate.numerator, estimate.denominator, estimate.episodes) == (0.9, 2, 12)
    # Stratified draws: "small" is always 0, so no draw exceeds 0.5 and none reaches 0.75.
    assert estimate.ci_high is not None and estimate.ci_high <= 0.5


def test_paired_and_unpaired_differences() -> None:
    a = [1.0] * 60 + [0.0] * 40
    b = [1.0] * 40 + [0.0] * 60
    paired = paired_difference(a, b, BootstrapConfig(n_resamples=1000))
    unpaired = unpaired_difference(a, b, BootstrapConfig(n_resamples=1000))
    assert paired.value == pytest.approx(0.2) and unpaired.value == pytest.approx(0.2)
    assert paired.ci_low is not None and paired.ci_high is not None
    assert unpaired.ci_low is not None and unpaired.ci_high is not None
    # The pairs agree on 80 of 100 tasks, so pairing removes most of the noise.
    assert paired.ci_high - paired.ci_low < unpaired.ci_high - unpaired.ci_low
    with pytest.raises(ValueError):
        paired_difference([1.0], [])


@pytest.mark.parametrize(
    ("a_only", "b_only", "p"),
    [
        (0, 0, 1.0),
        (2, 8, 112 / 1024),  # 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10
        (8, 2, 112 / 1024),
        (1, 10, 24 / 2048),  # 2 * (1 + 11) / 2^11
        (5, 5, 1.0),
        (0, 12, 2 / 4096),
    ],
)
def test_mcnemar_exact_known_values(a_only: int, b_only: int, p: float) -> None:
    assert mcnemar_exact(a_only, b_only) == pytest.approx(p)


def test_mcnemar_test_on_a_small_table() -> None:
    # Table: both 3, A only 6, B only 1, neither 2.
    a = [True] * 3 + [True] * 6 + [False] * 1 + [False] * 2
    b = [True] * 3 + [False] * 6 + [True] * 1 + [False] * 2
    result = mcnemar_test(a, b)
    assert (result.pairs, result.both, result.a_only, result.b_only, result.neither) == (
        12,
        3,
        6,
        1,
        2,
    )
    assert result.p_value == pytest.approx(2 * (1 + 7) / 128)  # 0.125
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_macro_of_proportions_is_wilson_for_one_group_and_never_a_point_at_the_edges() -> None:
    from mulligan.metrics import macro_proportion_estimate

    one = macro_proportion_estimate({"a": [True] * 3 + [False] * 7})
    wilson = proportion_estimate([True] * 3 + [False] * 7)
    assert (one.value, one.ci_low, one.ci_high) == (
        pytest.approx(0.3),
        pytest.approx(wilson.ci_low),
        pytest.approx(wilson.ci_high),
    )
    # Every suite at 0/7: the stratified bootstrap said [0, 0]; MOVER keeps the doubt.
    none = macro_proportion_estimate({s: [False] * 7 for s in "abc"})
    assert none.value == 0.0 and none.ci_low == 0.0
    assert none.ci_high == pytest.approx(wilson_interval(0, 7)[1] / math.sqrt(3))
    every = macro_proportion_estimate({s: [True] for s in "abc"}, confidence=0.9)
    assert every.ci_high == 1.0 and every.ci_low is not None and 0.0 < every.ci_low < 1.0
    assert every.method == "mover-wilson" and every.confidence == 0.9
    mixed = macro_proportion_estimate({"a": [True, True], "b": [False] * 4, "empty": []})
    assert (mixed.value, mixed.denominator, mixed.episodes) == (0.5, 2.0, 6)
    assert mixed.ci_low is not None and mixed.ci_high is not None
    assert 0.0 < mixed.ci_low < 0.5 < mixed.ci_high < 1.0
    assert macro_proportion_estimate({}).value is None


def test_count_rates_keep_their_edges_open_where_the_bootstrap_collapses() -> None:
    # 9 episodes, one proposal pair each, no flip: every bootstrap draw is 0/9.
    assert ratio_estimate([0.0] * 9, [1.0] * 9).ci_high == 0.0
    none = count_rate_estimate([0.0] * 9, [1.0] * 9)
    assert none.value == 0.0 and none.ci_low == 0.0 and none.method == "cluster-bootstrap+wilson"
    assert none.ci_high == pytest.approx(wilson_interval(0, 9)[1]) and none.ci_high > 0.29
    every = count_rate_estimate([2.0, 1.0, 3.0], [2.0, 1.0, 3.0])
    assert every.ci_high == 1.0 and every.ci_low == pytest.approx(wilson_interval(6, 6)[0])
    # In between, the interval covers both the bootstrap's (clustered) and Wilson's.
    nums, dens = [3.0, 0.0, 0.0, 1.0, 0.0] * 4, [3.0, 1.0, 2.0, 2.0, 1.0] * 4
    boot, hull = ratio_estimate(nums, dens), count_rate_estimate(nums, dens)
    low, high = wilson_interval(sum(nums), int(sum(dens)))
    assert hull.value == boot.value
    assert hull.ci_low == min(low, boot.ci_low) and hull.ci_high == max(high, boot.ci_high)
    assert count_rate_estimate([0.0], [0.0]).value is None  # no pair: undefined, no interval
    with pytest.raises(ValueError, match="whole-number counts"):
        count_rate_estimate([1.5], [2.0])
    with pytest.raises(ValueError, match="whole-number counts"):
        count_rate_estimate([3.0], [2.0])


def test_proportion_differences_are_never_a_point_when_runs_agree() -> None:
    # Newcombe (1998), method 10, his worked example: 56/70 vs 48/80 -> [0.0524, 0.3339].
    a, b = [True] * 56 + [False] * 14, [True] * 48 + [False] * 32
    unpaired = proportion_difference(a, b, paired=False)
    assert unpaired.value == pytest.approx(0.2) and unpaired.method == "unpaired-bootstrap+newcombe"
    assert unpaired.ci_low <= 0.0525 and unpaired.ci_high >= 0.3338  # type: ignore[operator]
    # Two runs that agree on every one of 32 tasks: the bootstrap says [0, 0].
    same = [True] * 2 + [False] * 30
    assert paired_difference([float(x) for x in same], [float(x) for x in same]).ci_high == 0.0
    paired = proportion_difference(same, same, paired=True)
    assert paired.value == 0.0 and paired.method == "paired-bootstrap+newcombe"
    assert paired.ci_low == pytest.approx(-paired.ci_high) and 0.05 < paired.ci_high < 0.15  # type: ignore[operator]
    # Discordant pairs widen it, and the sign follows a - b.
    better = [True] * 8 + [False] * 24
    moved = proportion_difference(better, same, paired=True)
    assert moved.value == pytest.approx(6 / 32) and 0 < moved.ci_low < moved.value < moved.ci_high  # type: ignore[operator]
