"""Terminal views of the refinement protocol's numbers, and rank agreement between two settings.

The numbers come from ``report_data`` (``refinement``, ``feedback_agreement``, ``warnings`` per
run) or from :func:`rank_agreement_data`; this module only lays them out as rich tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from mulligan.events import Episode
from mulligan.metrics import DEFAULT_BOOTSTRAP, BootstrapConfig, rank_agreement
from mulligan.report.data import ReportError, expand_run_dirs, load_runs

RANK_SCHEMA = "mulligan.rank-agreement/1"


def _pct(estimate: dict[str, Any] | None) -> str:
    """``12.5% [3.1-40.0]`` (n/d) for an Estimate, ``-`` when undefined."""
    if not estimate or estimate.get("value") is None:
        return "-"
    text = f"{100 * estimate['value']:.1f}%"
    if estimate.get("ci_low") is not None:
        text += f" [{100 * estimate['ci_low']:.1f}-{100 * estimate['ci_high']:.1f}]"
    return text + f" ({estimate['numerator']:g}/{estimate['denominator']:g})"


def refinement_table(numbers: dict[str, Any]) -> Table | None:
    """Right-at-turn, regression, flips (and checklist scores, challenge effects) of one run;
    None under ``at-correct`` without challenges or checklists (nothing SR@k does not show)."""
    ref = numbers.get("refinement")
    if not ref or (numbers.get("stop") != "never" and not ref.get("checklist_at_turn")):
        return None
    table = Table(title=f"Refinement protocol ({numbers['label']}, stop {numbers['stop']}), 95% CI")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for turn, estimate in ref["right_at_turn"].items():
        table.add_row(f"answer right at turn {turn}", _pct(estimate))
    for turn, estimate in ref.get("checklist_at_turn", {}).items():
        table.add_row(f"checklist score at turn {turn}", _pct(estimate))
    table.add_row("regression (right, then wrong)", _pct(ref["regression"]))
    table.add_row("lost right answers (ended wrong)", _pct(ref["lost_right_answers"]))
    table.add_row("flip right -> wrong (pairs)", _pct(ref["flip_right_to_wrong"]))
    table.add_row("flip wrong -> right (pairs)", _pct(ref["flip_wrong_to_right"]))
    challenge = ref.get("challenge")
    if challenge:
        table.add_row("challenges", str(challenge["challenges"]))
        table.add_row("caved (right -> wrong after a challenge)", _pct(challenge["caved"]))
        table.add_row("corrected by a right claim", _pct(challenge["corrected"]))
        table.add_row("adopted the claimed answer", _pct(challenge["adopted"]))
    return table


def agreement_table(numbers: dict[str, Any]) -> Table | None:
    """Each feedback source's verdicts against the checker's; None without any."""
    rows = numbers.get("feedback_agreement") or []
    if not rows:
        return None
    table = Table(title=f"Feedback verdict vs checker ({numbers['label']}), 95% CI")
    for column in (
        "source",
        "checker right: says right/wrong/unread",
        "checker wrong: says right/wrong/unread",
        "agreement",
        "false praise",
    ):
        table.add_column(column)  # fmt: skip
    for row in rows:
        c = row["confusion"]
        table.add_row(
            row["source"],
            f"{c['right_says_right']}/{c['right_says_wrong']}/{c['right_unread']}",
            f"{c['wrong_says_right']}/{c['wrong_says_wrong']}/{c['wrong_unread']}",
            _pct(row["agreement"]),
            _pct(row["false_praise"]),
        )
    return table


def _setting(path_text: str) -> dict[str, list[Episode]]:
    """One setting's runs by policy model: a directory of runs, or run directories joined by
    commas. Two runs of one model in a setting are an error."""
    paths = [Path(p) for p in path_text.split(",") if p.strip()]
    runs = load_runs(expand_run_dirs(paths))
    by_model: dict[str, list[Episode]] = {}
    for run in runs:
        if len(run.models) != 1:
            raise ReportError(f"run {run.path} has {len(run.models)} policy models; want one")
        model = run.models[0]
        if model in by_model:
            raise ReportError(
                f"two runs of {model} in setting {path_text!r}; give one run per model"
            )
        by_model[model] = run.episodes
    return by_model


def rank_agreement_data(
    setting_a: str, setting_b: str, bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> dict[str, Any]:
    """Spearman and Kendall between two settings' model rankings (``metrics.rank``), as JSON."""
    try:
        result = rank_agreement(_setting(setting_a), _setting(setting_b), bootstrap)
    except ValueError as exc:
        raise ReportError(f"rank agreement of {setting_a} and {setting_b}: {exc}") from exc
    return {"schema": RANK_SCHEMA, "a": setting_a, "b": setting_b, **result.model_dump()}


def rank_table(data: dict[str, Any]) -> Table:
    """The models' scores in both settings and the two correlations."""
    table = Table(
        title=f"Rank agreement, SR@{data['k_a']} (A) and SR@{data['k_b']} (B) on "
        f"{data['tasks']} shared tasks "
        f"(intervals: bootstrap over {data['resampled']})"
    )
    table.add_column("model")
    table.add_column(f"A: {data['a']}", justify="right")
    table.add_column(f"B: {data['b']}", justify="right")
    for model, a, b in zip(data["models"], data["scores_a"], data["scores_b"], strict=True):
        table.add_row(model, f"{100 * a:.1f}%", f"{100 * b:.1f}%")
    for name in ("spearman", "kendall"):
        corr = data[name]
        value = "-" if corr["value"] is None else f"{corr['value']:.3f}"
        if corr["ci_low"] is not None:
            value += f" [{corr['ci_low']:.3f}, {corr['ci_high']:.3f}]"
        table.add_row(name, value, "")
    return table


def print_protocol(console: Any, runs: Sequence[dict[str, Any]]) -> None:
    """Print each run's protocol tables and warnings (for ``mulligan report``'s table view)."""
    for numbers in runs:
        for line in numbers.get("warnings", []):
            console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
        for table in (refinement_table(numbers), agreement_table(numbers)):
            if table is not None:
                console.print(table)
