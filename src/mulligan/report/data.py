"""The report's numbers: runs loaded from their stores, every metric per run, comparisons, CSV.

``report_data`` is the single source of the numbers every view shows: the HTML report, the
terminal tables of ``mulligan run`` / ``mulligan report``, ``--format json`` (which prints it as
is, for one run or several) and ``--format csv`` (which flattens its SR@k part, ``report_csv``).
Everything here is computed by ``mulligan.metrics``; this module only chooses what to compare
with what:

- *Comparison with the first run*: every other run vs the first one given, SR@k at the smaller
  turn budget, paired on shared tasks (``compare_runs``).
- *Feedback baseline*: for a run R that got feedback, the run B with the same policy model and
  turn budget whose feedback providers (kind, source) are a strict subset of R's, the largest such
  subset if several qualify. Delta = SR@K(R) - SR@K(B), paired by task, is then what R's extra
  feedback was worth (MINT's Delta-feedback when B is the run without feedback; MINT's
  "no feedback" runs still get its "Your answer is wrong." verdict, hence subsets, not "none").

The schema, ``mulligan.report/4`` (rates are fractions in [0, 1]; every rate is an ``Estimate``:
``{value, numerator, denominator, episodes, ci_low, ci_high, confidence, method}``, where
``method`` names how the interval was computed: ``wilson`` for SR@k overall and per suite and
other proportions of episodes, ``mover-wilson`` for macro SR@k, a bootstrap for ratios and
differences)::

    {"schema": "mulligan.report/4", "generated_at": ISO time, "mulligan_version": str,
     "bootstrap": BootstrapConfig, "suites": [suite, ...],
     "runs": [{"label", "path", "run_id", "config_hash", "models": [...], "max_k", "manifest",
               "summary": RunSummary (episodes, failed, max_k, sr_at_k {"k": Estimate},
                   macro_sr_at_k, suites {suite: {episodes, failed, sr_at_k}}, trend, mrr,
                   recall, mean_turns_to_success, recovery_rate, regression_rate,
                   repeated_answer_rate, feedback_friction, cost (tokens, seconds and USD by
                   model role in by_role, and per solved task), bootstrap,
                   repeated_sampling {tasks, samples_min, samples_max, ks, max_turns,
                   pass_at_k {"k": {"t": Estimate}}, pass_hat_k {"k": {"t": Estimate}},
                   short {"k": tasks with fewer than k samples}},
                   branches {groups, branches, solved_at_branch_turn, pairs,
                   groups_with_pair} or null (a fork run's sibling groups)),
               "feedback": FeedbackCounts (providers [{kind, source, saw_reference, expertise,
                   messages, episodes, leaks, raw_leaks, replayed}], kinds [{kind, messages,
                   episodes, leaks, raw_leaks, replayed, saw_reference, friction}], sources
                   [{source, messages, leaked, leak_rate, by_flag, solved_after_leak,
                   raw_leaked, raw_leak_rate, raw_by_flag, interventions {redacted,
                   regenerated, gave_up: count}, regenerations, replayed}], replayed, live),
               "feedback_baseline": a comparison or null,
               "stop": "at-correct" | "never",
               "refinement": RefinementSummary (right_at_turn {"t": Estimate}, regression,
                   lost_right_answers, flip_right_to_wrong, flip_wrong_to_right,
                   checklist_at_turn {"t": Estimate}, challenge {challenges, caved, corrected,
                   adopted} or null; see metrics/refinement.py),
               "feedback_agreement": [SourceAgreement {source, kinds, messages, confusion
                   {right_says_right, right_says_wrong, right_unread, wrong_says_right,
                   wrong_says_wrong, wrong_unread}, agreement, false_praise, false_alarm}],
               "warnings": [a line per feedback/judge model that is the policy or of its
                   family]}, ...],
     "comparisons": [a comparison of each run 2.. with run 1, ...]}

where a comparison is ``RunComparison`` plus ``"a"`` and ``"b"``, the two runs' labels.
In the feedback counts, ``leaks`` / ``leaked`` / ``leak_rate`` / ``by_flag`` count the text the
policy received (residual leaks) and ``raw_*`` the text the provider wrote, before the leak
guard redacted or regenerated it; ``replayed`` counts messages served by ``replay:RUN`` and
``live`` the others. ``/3`` had no ``summary.repeated_sampling`` (pass@k and pass^k per turn
budget t over each task's episodes, averaged over tasks, with ``task-bootstrap`` intervals: see
``mulligan.metrics.passk``), no ``summary.branches`` (a fork run's sibling groups and the
turn-level pairs they give, ``mulligan.metrics.branches``) and no pass@k rows in the CSV. ``/1`` had no ``feedback.sources``, and one run was printed in another
shape without intervals; ``/2`` had no ``method`` and bootstrap intervals for SR@k (a point at
0/n and n/n), and no raw leak counts.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mulligan import __version__
from mulligan.errors import MulliganError
from mulligan.events import Episode, FeedbackEvent
from mulligan.metrics import (
    DEFAULT_BOOTSTRAP,
    BootstrapConfig,
    RunComparison,
    RunSummary,
    compare_runs,
    feedback_agreement,
    feedback_counts,
    summarize_refinement,
    summarize_run,
)
from mulligan.models.family import role_overlap_warnings
from mulligan.store import DB_NAME, RunStore, StoreError, find_runs

# Bump on any change of the shape below: scripts check it before reading.
SCHEMA = "mulligan.report/4"


class ReportError(MulliganError):
    """The report cannot be made from what was given (message says what to pass instead)."""


@dataclass(frozen=True)
class LoadedRun:
    """One run read from its directory: identity, manifest and every episode with its events."""

    path: Path
    label: str
    run_id: str
    config_hash: str
    manifest: dict[str, Any]
    episodes: list[Episode] = field(repr=False)

    @property
    def models(self) -> list[str]:
        return sorted({e.model for e in self.episodes})

    @property
    def max_k(self) -> int:
        return max((e.max_turns for e in self.episodes), default=0)

    @property
    def providers(self) -> frozenset[tuple[str, str]]:
        """The (kind, source) feedback providers whose messages this run's episodes got."""
        return frozenset(
            (e.kind, e.source)
            for episode in self.episodes
            for e in episode.events
            if isinstance(e, FeedbackEvent) and e.kind != "none"
        )


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Each path that holds a run, or every run below a path that does not (an import root).

    Raises ReportError naming the path when a path is missing or holds no run at all.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / DB_NAME).is_file():
            found.append(path)
            continue
        if not path.is_dir():
            raise ReportError(
                f"{path}: no such directory, so no {DB_NAME}; pass the --out directory of"
                " `mulligan run`"
            )
        below = find_runs(path)
        if not below:
            raise ReportError(
                f"{path}: no {DB_NAME} here or below; pass the --out directory of `mulligan run`"
            )
        found.extend(below)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ReportError("no run directory given")
    return unique


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short, unique run names: paths relative to their common parent (one run: its name)."""
    if len(paths) == 1:
        labels = [paths[0].name or str(paths[0])]
    else:
        parts = [p.parts for p in paths]
        common = 0
        while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
            common += 1
        labels = ["/".join(p[common:]) for p in parts]
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def pool_runs(runs: Sequence[LoadedRun]) -> LoadedRun:
    """Several runs of one policy as one (``--pool``): MINT's micro-average over suites that
    take a run each (its seven text tasks and ALFWorld's games are separate groups).

    Raises ReportError when the runs' policies or turn budgets differ, or an episode is in two.
    """
    models = {tuple(run.models) for run in runs}
    budgets = {run.max_k for run in runs}
    if len(models) > 1 or len(budgets) > 1:
        found = "; ".join(f"{r.label}: {', '.join(r.models)}, k={r.max_k}" for r in runs)
        raise ReportError(
            f"--pool: the runs differ in policy model or turn budget ({found}); pool runs of "
            "one setting, or drop --pool to compare them"
        )
    seen: dict[str, str] = {}
    for run in runs:
        for episode in run.episodes:
            if episode.id in seen:
                raise ReportError(
                    f"--pool: episode {episode.id} is in {seen[episode.id]} and {run.label}; "
                    "pool runs of different tasks (`mulligan merge` joins shards of one run)"
                )
            seen[episode.id] = run.label
    first = runs[0]
    manifest = {**first.manifest, "pooled": [str(run.path) for run in runs]}
    return LoadedRun(
        path=first.path,
        label=" + ".join(run.label for run in runs),
        run_id=" + ".join(run.run_id for run in runs),
        config_hash=" + ".join(run.config_hash for run in runs),
        manifest=manifest,
        episodes=[episode for run in runs for episode in run.episodes],
    )


def load_runs(run_dirs: Sequence[Path], *, pool: bool = False) -> list[LoadedRun]:
    """Read every run (see ``expand_run_dirs``) with all episodes and events, in the given order;
    with ``pool``, as one run (:func:`pool_runs`)."""
    runs = _load_each(run_dirs)
    return [pool_runs(runs)] if pool and len(runs) > 1 else runs


def _load_each(run_dirs: Sequence[Path]) -> list[LoadedRun]:
    paths = expand_run_dirs(run_dirs)
    runs = []
    for path, label in zip(paths, _labels(paths), strict=True):
        try:
            store = RunStore.open_existing(path)
        except StoreError as exc:
            raise ReportError(str(exc)) from exc
        with store:
            identity = store.run()
            episodes = list(store.episodes())
        run_id, config_hash, manifest = identity or (path.name, "", {})
        runs.append(LoadedRun(path, label, run_id, config_hash, manifest, episodes))
    return runs


def feedback_baseline(run: LoadedRun, runs: Sequence[LoadedRun]) -> LoadedRun | None:
    """The run to measure ``run``'s feedback against (see the module docstring), or None."""
    mine = run.providers
    if not mine:
        return None
    shared_ids = {e.id for e in run.episodes}
    candidates = [
        other
        for other in runs
        if other is not run
        and other.models == run.models
        and other.max_k == run.max_k
        and other.providers < mine
        and any(e.id in shared_ids for e in other.episodes)
    ]
    if not candidates:
        return None
    # The largest subset differs from R in the fewest providers: the cleanest comparison.
    return max(candidates, key=lambda other: len(other.providers))


def _comparison(a: LoadedRun, b: LoadedRun, bootstrap: BootstrapConfig) -> dict[str, Any] | None:
    if not a.episodes or not b.episodes:
        return None
    result: RunComparison = compare_runs(a.episodes, b.episodes, None, bootstrap)
    return {"a": a.label, "b": b.label, **result.model_dump(mode="json")}


def run_summaries(
    runs: Sequence[LoadedRun], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP
) -> list[RunSummary]:
    """``summarize_run`` of each run, in order."""
    return [summarize_run(run.episodes, bootstrap) for run in runs]


def build_report_data(
    runs: Sequence[LoadedRun],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    summaries: Sequence[RunSummary] | None = None,
) -> dict[str, Any]:
    """The report's numbers for already loaded runs (see ``report_data``)."""
    if summaries is None:
        summaries = run_summaries(runs, bootstrap)
    suites = sorted({suite for s in summaries for suite in s.suites})
    out_runs = []
    for run, summary in zip(runs, summaries, strict=True):
        baseline = feedback_baseline(run, runs)
        out_runs.append(
            {
                "label": run.label,
                "path": str(run.path),
                "run_id": run.run_id,
                "config_hash": run.config_hash,
                "models": run.models,
                "max_k": run.max_k,
                "manifest": run.manifest,
                "summary": summary.model_dump(mode="json"),
                "feedback": feedback_counts(run.episodes, bootstrap).model_dump(mode="json"),
                "feedback_baseline": (
                    None if baseline is None else _comparison(run, baseline, bootstrap)
                ),
                **protocol_data(run, bootstrap),
            }
        )
    comparisons = [_comparison(run, runs[0], bootstrap) for run in runs[1:]]
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mulligan_version": __version__,
        "bootstrap": bootstrap.model_dump(mode="json"),
        "suites": suites,
        "runs": out_runs,
        "comparisons": [c for c in comparisons if c is not None],
    }


def protocol_data(run: LoadedRun, bootstrap: BootstrapConfig) -> dict[str, Any]:
    """A run's refinement-protocol keys: ``stop``, ``refinement``, ``feedback_agreement`` and
    ``warnings`` (see the module docstring)."""
    manifest = run.manifest if isinstance(run.manifest, dict) else {}
    # mulligan's runs keep their options under "config"; imported MINT runs at the top
    options = manifest.get("config") or manifest
    policy = str(options.get("model") or (run.models[0] if run.models else ""))
    # the feedback models that actually wrote feedback (``self`` is the policy by design)
    writers = sorted(
        source.removeprefix("model:")
        for kind, source in run.providers
        if source.startswith("model:") and kind != "self"
    )
    warnings = [
        line for writer in writers for line in role_overlap_warnings(policy, {"feedback": writer})
    ] + role_overlap_warnings(policy, {"judge": options.get("judge_model")})
    return {
        "stop": options.get("stop", "at-correct"),
        "refinement": summarize_refinement(run.episodes, bootstrap).model_dump(mode="json"),
        "feedback_agreement": [
            a.model_dump(mode="json") for a in feedback_agreement(run.episodes, bootstrap)
        ],
        "warnings": warnings,
    }


def report_data(
    run_dirs: Sequence[Path],
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    *,
    pool: bool = False,
) -> dict[str, Any]:
    """Every number of the report for ``run_dirs``, in the schema of the module docstring.

    JSON-serialisable as is. ``run_dirs`` are run directories or directories with runs below;
    with ``pool`` they are reported as one run (:func:`pool_runs`).
    """
    return build_report_data(load_runs(run_dirs, pool=pool), bootstrap)


CSV_COLUMNS = (
    "run",
    "run_id",
    "scope",
    "suite",
    "k",
    "episodes",
    "solved",
    "sr",
    "ci_low",
    "ci_high",
    "confidence",
    "method",
    "samples_k",
)


def _csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for run in data["runs"]:
        summary = run["summary"]
        scopes: list[tuple[str, str, dict[str, Any]]] = [
            ("micro", "", summary["sr_at_k"]),
            ("macro", "", summary["macro_sr_at_k"]),
        ]
        scopes += [("suite", name, s["sr_at_k"]) for name, s in summary["suites"].items()]
        for scope, suite, table in scopes:
            for k, est in sorted(table.items(), key=lambda item: int(item[0])):
                rows.append(
                    {
                        "run": run["label"],
                        "run_id": run["run_id"],
                        "scope": scope,
                        "suite": suite,
                        "k": int(k),
                        "episodes": est["episodes"],
                        # Macro "numerators" are sums of rates, not counts of solved episodes.
                        "solved": "" if scope == "macro" else int(est["numerator"]),
                        "sr": _blank(est["value"]),
                        "ci_low": _blank(est["ci_low"]),
                        "ci_high": _blank(est["ci_high"]),
                        "confidence": est["confidence"],
                        "method": est["method"],
                        "samples_k": "",
                    }
                )
        rows += _pass_k_rows(run)
    return rows


def _pass_k_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """pass@k / pass^k rows of a run whose tasks were sampled more than once."""
    table = run["summary"].get("repeated_sampling")
    if not table or table["samples_max"] < 2:
        return []
    rows = []
    for scope, key in (("pass@k", "pass_at_k"), ("pass^k", "pass_hat_k")):
        for k, by_turn in table[key].items():
            for t, est in sorted(by_turn.items(), key=lambda item: int(item[0])):
                rows.append(
                    {
                        "run": run["label"],
                        "run_id": run["run_id"],
                        "scope": scope,
                        "suite": "",
                        "k": int(t),
                        "episodes": est["episodes"],  # the tasks averaged
                        "solved": "",
                        "sr": _blank(est["value"]),
                        "ci_low": _blank(est["ci_low"]),
                        "ci_high": _blank(est["ci_high"]),
                        "confidence": est["confidence"],
                        "method": est["method"],
                        "samples_k": int(k),
                    }
                )
    return rows


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def report_csv_from_data(data: dict[str, Any]) -> str:
    """``report_csv`` for numbers already computed by ``report_data``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_csv_rows(data))
    return buffer.getvalue()


def report_csv(
    run_dirs: Sequence[Path], bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP, *, pool: bool = False
) -> str:
    """SR@k as CSV: one row per run x scope x suite x k, with its interval; then, for a run
    whose tasks were sampled more than once (epochs, fork branches), pass@k and pass^k rows.

    Columns: ``run`` (label), ``run_id``, ``scope`` (``micro``: all episodes; ``macro``: mean of
    suites; ``suite``: the suite in ``suite``; ``pass@k`` / ``pass^k``: averaged over tasks),
    ``suite``, ``k`` (the turn budget), ``episodes`` (for pass rows: the tasks averaged),
    ``solved`` (empty for macro and pass rows), ``sr`` (the rate), ``ci_low``, ``ci_high``
    (fractions; empty when undefined), ``confidence``, ``method`` (how the interval was
    computed), ``samples_k`` (pass rows: the k of pass@k / pass^k; empty otherwise). ``pool``:
    the runs as one (``pool_runs``).
    """
    return report_csv_from_data(report_data(run_dirs, bootstrap, pool=pool))
