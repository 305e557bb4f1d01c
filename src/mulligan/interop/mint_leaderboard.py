"""MINT's leaderboard, recomputed from imported MINT runs (``mulligan.interop.mint.import_mint``).

Columns, per policy model, exactly as in MINT's published ``benchmark.json``:

- ``"1"`` .. ``"5"``: SR@k in percent, micro-averaged over all tasks of MINT's eight suites
  (ALFWorld included), each k from its *own* run (MINT's protocol: the prompt states the budget,
  so ``max<k>_p<p>`` with F=None is one run per k, p = 1 for k = 1 and 2 otherwise).
- ``"Slope"``, ``"rsquared"``: the OLS line through (k, SR@k) for k = 1..5, SR in percent:
  slope = sum (k - 3)(y_k - y_bar) / sum (k - 3)^2 and r^2 = 1 - SS_res / SS_tot. MINT fits it
  with statsmodels ``ols('y ~ x')`` per model (``scripts/results_to_html.ipynb``, cell "Run
  regression and generate a table"). We fit the unrounded SRs: MINT's notebook fits SRs already
  rounded to 2 decimals, which for gpt-3.5-turbo-0613 puts the slope exactly on a rounding tie
  (8.175) that float noise breaks either way; the unrounded fit (8.174) rounds to the published
  8.17 without that luck.
- ``"Success Rate (5 turn) w/ GPT-4 Feedback"``: SR@5 of the run with feedback from gpt-4-0613
  in setting ``PHF=no_GT-textual`` (textual feedback from a model that does not see the ground
  truth), which is the setting MINT's notebook uses for this table (``feedback_setting ==
  'PHF=no_GT-textual' and feedback_model_name == 'gpt-4-0613'``).
- ``"Delta Feedback"``: that SR@5 minus the F=None SR@5, in percentage points, with MINT's order
  of rounding (:func:`mint_delta_feedback`): MINT's ``generate_table`` rounds each SR table to
  2 decimals (``(results_sr * 100).round(2)``) and the notebook subtracts the rounded tables
  (``gpt4_feedback - main_table_sr``); the leaderboard shows that difference to 1 decimal. The
  order matters: for vicuna-13b-v1.5 (SR@5 = 49/586, with feedback 61/586) the unrounded
  difference is 2.048 (2.0), the difference of the rounded SRs 10.41 - 8.36 = 2.05 (2.1, as
  published).

Rounding follows the published table: SR@k, slope and r^2 to 2 decimals; the two feedback
columns to 1 decimal (every one of the 26 such values in ``benchmark.json`` has one decimal,
while MINT's notebook prints them with two: e.g. 51.37 there, 51.4 on the leaderboard), each
from MINT's 2-decimal value. A column whose runs are missing is ``"-"``, as in
``benchmark.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mulligan.interop.mint import MintConfig
from mulligan.metrics.success import linear_trend
from mulligan.store.runs import find_runs
from mulligan.store.sqlite import RunStore

FEEDBACK_MODEL = "gpt-4-0613"
FEEDBACK_SETTING = "no_GT-textual"
TURNS = (1, 2, 3, 4, 5)
FEEDBACK_COLUMN = "Success Rate (5 turn) w/ GPT-4 Feedback"
COLUMNS = (
    "model",
    "size",
    "type",
    *(str(k) for k in TURNS),
    "Slope",
    "rsquared",
    "Delta Feedback",
    FEEDBACK_COLUMN,
)
MISSING = "-"

_SIZE = re.compile(r"(\d+(?:\.\d+)?)b", re.IGNORECASE)
_CLOSED = ("gpt", "claude", "bison")


class MintLeaderboardEntry(BaseModel):
    """One model's leaderboard numbers, unrounded (percent), with the runs they come from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    size: str = MISSING
    type: str = MISSING
    sr_at_k: dict[int, float] = Field(default_factory=dict, description="k -> SR@k (percent)")
    episodes_at_k: dict[int, int] = Field(default_factory=dict)
    slope: float | None = None
    rsquared: float | None = None
    sr_with_feedback: float | None = None
    delta_feedback: float | None = Field(
        default=None, description="MINT's arithmetic: rounded SRs subtracted (mint_delta_feedback)"
    )
    runs: dict[str, str] = Field(default_factory=dict, description="column -> run directory")

    def row(self) -> dict[str, str | float]:
        """The entry shaped like a row of MINT's ``benchmark.json`` (rounded as published)."""

        def rounded(value: float | None, digits: int) -> str | float:
            return MISSING if value is None else round(value, digits)

        return {
            "model": self.model,
            "size": self.size,
            "type": self.type,
            **{str(k): rounded(self.sr_at_k.get(k), 2) for k in TURNS},
            "Slope": rounded(self.slope, 2),
            "rsquared": rounded(self.rsquared, 2),
            "Delta Feedback": rounded(self.delta_feedback, 1),
            # MINT's 2-decimal value, shown with 1 decimal.
            FEEDBACK_COLUMN: rounded(_mint_round(self.sr_with_feedback), 1),
        }


def _mint_round(value: float | None) -> float | None:
    """A success rate as MINT's ``generate_table`` holds it: percent, rounded to 2 decimals."""
    return None if value is None else round(value, 2)


def mint_delta_feedback(sr_with_feedback: float, sr_without: float) -> float:
    """MINT's "Delta Feedback" before the leaderboard's 1-decimal display: the two SRs (percent)
    each rounded to 2 decimals, then subtracted, as MINT's notebook does (see the module
    docstring). Python's ``round`` and pandas' ``round(2)`` agree on every SR of n/586 tasks
    (no such value lies on a tie), so the floats are MINT's own."""
    return round(sr_with_feedback, 2) - round(sr_without, 2)


def size_and_type(model: str) -> tuple[str, str]:
    """MINT's naming heuristic for the ``size`` / ``type`` columns (``parse_modelname``).

    Closed models (gpt, claude, bison) are ``("-", "-")``. Otherwise the size is the first
    ``<n>b`` in the name and the type SIFT for Instruct / vicuna / Lemur chat models, RLHF for
    Llama chat models, Base otherwise. The published table curates these by hand for newer
    models, so pass ``model_info`` to ``mint_leaderboard`` to override them.
    """
    lowered = model.lower()
    if any(marker in lowered for marker in _CLOSED):
        return MISSING, MISSING
    match = _SIZE.search(model)
    size = f"{match.group(1)}B" if match else MISSING
    if "instruct" in lowered or "vicuna" in lowered or ("lemur" in lowered and "chat" in lowered):
        kind = "SIFT"
    elif "chat" in lowered and "llama" in lowered:
        kind = "RLHF"
    else:
        kind = "Base"
    return size, kind


def _sr_percent(run_dir: Path) -> tuple[float, int]:
    """SR (percent) of an imported MINT run: its stored outcome per task, micro-averaged."""
    with RunStore.open_existing(run_dir) as store:
        outcomes = [e.success for e in store.episodes(with_events=False)]
    if not outcomes:
        raise ValueError(f"{run_dir}: the run holds no episode")
    return 100.0 * sum(outcomes) / len(outcomes), len(outcomes)


def _mint_runs(import_root: Path) -> list[tuple[MintConfig, Path]]:
    runs = []
    for run_dir in find_runs(import_root):
        with RunStore.open_existing(run_dir) as store:
            found = store.run()
        config = MintConfig.from_manifest(found.manifest) if found else None
        if config is not None:
            runs.append((config, run_dir))
    return runs


def _pick(
    runs: list[tuple[MintConfig, Path]], what: str, model: str, **want: object
) -> Path | None:
    matches = [
        run_dir
        for config, run_dir in runs
        if config.model == model and all(getattr(config, f) == v for f, v in want.items())
    ]
    if len(matches) > 1:
        listed = ", ".join(str(m) for m in matches)
        raise ValueError(f"{model}: {len(matches)} runs fit the {what} column: {listed}")
    return matches[0] if matches else None


def mint_leaderboard_entries(
    import_root: Path,
    *,
    feedback_model: str = FEEDBACK_MODEL,
    feedback_setting: str = FEEDBACK_SETTING,
    model_info: Mapping[str, Mapping[str, str]] | None = None,
) -> list[MintLeaderboardEntry]:
    """Leaderboard entries for every model with at least one MINT run under ``import_root``.

    Args:
        import_root: the ``out_dir`` of ``import_mint`` (run directories are found below it).
        feedback_model, feedback_setting: the feedback run behind the feedback columns
            (MINT's leaderboard: gpt-4-0613, no_GT-textual).
        model_info: optional ``{model: {"size": ..., "type": ...}}`` overriding the naming
            heuristic of ``size_and_type``.
    """
    runs = _mint_runs(Path(import_root))
    entries = []
    for model in sorted({config.model for config, _ in runs}):
        sr: dict[int, float] = {}
        counts: dict[int, int] = {}
        sources: dict[str, str] = {}
        for k in TURNS:
            run_dir = _pick(runs, str(k), model, feedback_model=None, k=k, p=1 if k == 1 else 2)
            if run_dir is not None:
                sr[k], counts[k] = _sr_percent(run_dir)
                sources[str(k)] = str(run_dir)
        with_feedback = _pick(
            runs,
            FEEDBACK_COLUMN,
            model,
            feedback_model=feedback_model,
            feedback_setting=feedback_setting,
            k=5,
            p=2,
        )
        sr_feedback = None
        if with_feedback is not None:
            sr_feedback, _ = _sr_percent(with_feedback)
            sources[FEEDBACK_COLUMN] = str(with_feedback)
        # MINT reports the trend only for models with all five budgets.
        trend = linear_trend(sr) if len(sr) == len(TURNS) else None
        size, kind = size_and_type(model)
        info = (model_info or {}).get(model, {})
        entries.append(
            MintLeaderboardEntry(
                model=model,
                size=info.get("size", size),
                type=info.get("type", kind),
                sr_at_k=sr,
                episodes_at_k=counts,
                slope=trend.slope if trend else None,
                rsquared=trend.rsquared if trend else None,
                sr_with_feedback=sr_feedback,
                delta_feedback=(
                    mint_delta_feedback(sr_feedback, sr[5])
                    if sr_feedback is not None and 5 in sr
                    else None
                ),
                runs=sources,
            )
        )
    return entries


def mint_leaderboard(
    import_root: Path,
    *,
    feedback_model: str = FEEDBACK_MODEL,
    feedback_setting: str = FEEDBACK_SETTING,
    model_info: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, str | float]]:
    """MINT's leaderboard rows (``benchmark.json`` shape) for every model found under a root.

    This is what ``mulligan report DIR --mint-leaderboard`` prints; see the module docstring for
    how each column is computed.
    """
    return [
        entry.row()
        for entry in mint_leaderboard_entries(
            import_root,
            feedback_model=feedback_model,
            feedback_setting=feedback_setting,
            model_info=model_info,
        )
    ]
