"""Two runs on the same tasks: Delta-feedback, feedback-provider value, and their paired tests.

With tasks T shared by runs A and B (same suite, task id and epoch) and s_X(t) = 1[run X solved
t within k turns]:

    Delta = SR_A@k - SR_B@k = (1/|T|) sum_{t in T} (s_A(t) - s_B(t))

with a paired-bootstrap interval (tasks resampled with both outcomes) and McNemar's exact test
on the discordant tasks. MINT's Delta-feedback is Delta with A = the run with feedback and B the
run without, at k = 5. Feedback-provider value is Delta for one fixed policy under provider A vs
provider B. When the runs share no task, Delta is the difference of the two SRs with an unpaired
bootstrap interval and no test.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from mulligan.events import Episode, FeedbackEvent
from mulligan.metrics.stats import (
    DEFAULT_BOOTSTRAP,
    BootstrapConfig,
    Estimate,
    PairedTest,
    mcnemar_test,
    proportion_difference,
    proportion_estimate,
)


class RunComparison(BaseModel):
    """SR@k of run A vs run B, over their shared tasks when there are any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int
    episodes_a: int
    episodes_b: int
    shared: int
    only_a: int
    only_b: int
    paired: bool
    sr_a: Estimate
    sr_b: Estimate
    delta: Estimate
    test: PairedTest | None


class ProviderValue(BaseModel):
    """The SR gain of one policy when feedback comes from provider A instead of provider B."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: str
    providers_a: list[str]
    providers_b: list[str]
    comparison: RunComparison


def _by_key(episodes: Iterable[Episode]) -> dict[str, Episode]:
    out: dict[str, Episode] = {}
    for episode in episodes:
        if episode.id in out:
            raise ValueError(f"episode {episode.id} appears twice in one run")
        out[episode.id] = episode
    return out


def compare_runs(
    run_a: Iterable[Episode],
    run_b: Iterable[Episode],
    k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> RunComparison:
    """SR@k(A) - SR@k(B), paired on shared tasks; k defaults to the smaller of the two budgets."""
    a, b = _by_key(run_a), _by_key(run_b)
    if not a or not b:
        raise ValueError("both runs need at least one episode")
    if k is None:
        k = min(max(e.max_turns for e in a.values()), max(e.max_turns for e in b.values()))
    shared = sorted(a.keys() & b.keys())
    if shared:
        wins_a = [a[key].success_at(k) for key in shared]
        wins_b = [b[key].success_at(k) for key in shared]
        test: PairedTest | None = mcnemar_test(wins_a, wins_b)
    else:
        wins_a = [e.success_at(k) for e in a.values()]
        wins_b = [e.success_at(k) for e in b.values()]
        test = None
    delta = proportion_difference(wins_a, wins_b, bool(shared), bootstrap)
    return RunComparison(
        k=k,
        episodes_a=len(a),
        episodes_b=len(b),
        shared=len(shared),
        only_a=len(a.keys() - b.keys()),
        only_b=len(b.keys() - a.keys()),
        paired=bool(shared),
        sr_a=proportion_estimate(wins_a, bootstrap),
        sr_b=proportion_estimate(wins_b, bootstrap),
        delta=delta,
        test=test,
    )


def delta_feedback(
    with_feedback: Iterable[Episode],
    without_feedback: Iterable[Episode],
    k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> RunComparison:
    """Delta-feedback = SR@k with feedback - SR@k without (MINT uses k = 5), paired by task."""
    return compare_runs(with_feedback, without_feedback, k, bootstrap)


def _providers(episodes: list[Episode]) -> list[str]:
    return sorted(
        {
            f"{e.kind}:{e.source}"
            for ep in episodes
            for e in ep.events
            if isinstance(e, FeedbackEvent)
        }
    )


def feedback_provider_value(
    run_a: Iterable[Episode],
    run_b: Iterable[Episode],
    k: int | None = None,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
) -> ProviderValue:
    """SR gain of a fixed policy under the feedback of run A over that of run B, same tasks.

    Raises ValueError if the runs used different policy models or share no task: the value of
    a provider is only defined with everything else held fixed.
    """
    a, b = list(run_a), list(run_b)
    policies = {e.model for e in a} | {e.model for e in b}
    if len(policies) != 1:
        raise ValueError(
            f"runs must share one policy model to compare providers, got {sorted(policies)}"
        )
    comparison = compare_runs(a, b, k, bootstrap)
    if not comparison.paired:
        raise ValueError("runs share no task; a provider's value needs the same tasks in both")
    return ProviderValue(
        policy=policies.pop(),
        providers_a=_providers(a),
        providers_b=_providers(b),
        comparison=comparison,
    )
