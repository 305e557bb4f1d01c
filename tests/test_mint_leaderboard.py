"""MINT's published leaderboard row for gpt-3.5-turbo-0613, recomputed from MINT's own logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import shared_mint_dir
from mulligan.interop import (
    MintLeaderboardEntry,
    import_mint,
    mint_delta_feedback,
    mint_leaderboard,
    mint_leaderboard_entries,
    size_and_type,
)
from mulligan.interop.mint_leaderboard import COLUMNS, FEEDBACK_COLUMN

MODEL = "gpt-3.5-turbo-0613"


def _shared_mint() -> Path:
    return shared_mint_dir()


@pytest.fixture(scope="module")
def import_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mint = _shared_mint()
    if not (mint / "outputs").is_dir() or not (mint / "benchmark.json").is_file():
        pytest.skip(
            f"MINT outputs or benchmark.json not found under {mint} "
            "(third-party data lives in ../shared/data)"
        )
    root = tmp_path_factory.mktemp("mint-leaderboard")
    import_mint(mint / "outputs", root)
    return root


def test_gpt35_row_equals_the_published_row(import_root: Path) -> None:
    published = next(
        row
        for row in json.loads((_shared_mint() / "benchmark.json").read_text())
        if row["model"] == MODEL
    )
    (row,) = (r for r in mint_leaderboard(import_root) if r["model"] == MODEL)
    assert list(row) == list(published) == list(COLUMNS)
    for column, expected in published.items():
        got = row[column]
        assert type(got) is type(expected), column
        if isinstance(expected, float):
            assert round(got, 2) == round(expected, 2), (column, got, expected)  # type: ignore[arg-type]
        else:
            assert got == expected, column
    assert row == published


def test_entries_keep_unrounded_values_and_their_runs(import_root: Path) -> None:
    (entry,) = mint_leaderboard_entries(import_root)
    assert entry.episodes_at_k == {k: 586 for k in range(1, 6)}
    assert entry.sr_at_k[5] == pytest.approx(100 * 212 / 586)
    assert entry.sr_with_feedback == pytest.approx(100 * 301 / 586)
    assert entry.slope == pytest.approx(8.1741, abs=1e-4)
    assert entry.rsquared == pytest.approx(0.9586, abs=1e-4)
    assert entry.runs["5"].endswith("F=None/max5_p2+tool+cd")
    assert "PHF=no_GT-textual" in entry.runs["Success Rate (5 turn) w/ GPT-4 Feedback"]


def test_missing_configs_are_dashes(import_root: Path, tmp_path: Path) -> None:
    # Only the k = 5 run without feedback: every column that needs another run is "-".
    config = Path(MODEL, "F=None", "max5_p2+tool+cd")
    shutil.copytree(_shared_mint() / "outputs" / config, tmp_path / "src" / config)
    only_k5 = tmp_path / "only-k5"
    import_mint(tmp_path / "src", only_k5)
    (row,) = mint_leaderboard(only_k5)
    assert row["5"] == 36.18
    assert [row[c] for c in ("1", "Slope", "rsquared", "Delta Feedback")] == ["-"] * 4


@pytest.mark.parametrize(
    ("model", "size", "kind"),
    [
        ("gpt-3.5-turbo-0613", "-", "-"),
        ("claude-2", "-", "-"),
        ("CodeLlama-13b-Instruct", "13B", "SIFT"),
        ("Llama-2-70b-chat", "70B", "RLHF"),
        ("Llama-2-7b", "7B", "Base"),
        ("vicuna-13b-v1.5", "13B", "SIFT"),
    ],
)
def test_size_and_type_follow_mints_naming(model: str, size: str, kind: str) -> None:
    assert size_and_type(model) == (size, kind)


MINT_TASKS = 586  # every published row with a feedback column is a full run of MINT's 586 tasks


def _count(percent: float, digits: int) -> int:
    """The one number of solved tasks n whose SR, as MINT rounds it, is ``percent``."""
    (n,) = [
        n for n in range(MINT_TASKS + 1) if round(round(100 * n / MINT_TASKS, 2), digits) == percent
    ]
    return n


def test_every_published_delta_feedback_follows_mints_arithmetic() -> None:
    """Each published Delta Feedback is MINT's arithmetic on its row's other columns: the
    solved counts behind SR@5 (2 decimals) and SR with feedback (1 decimal) are unique, and
    rounding each SR to 2 decimals before subtracting gives the published value for all 26
    models; subtracting unrounded SRs misses one (vicuna-13b-v1.5: 2.0, published 2.1)."""
    mint = _shared_mint()
    if not (mint / "benchmark.json").is_file():
        pytest.skip(f"MINT's benchmark.json not found under {mint}")
    rows = [
        row
        for row in json.loads((mint / "benchmark.json").read_text())
        if row["Delta Feedback"] != "-"
    ]
    assert len(rows) == 26
    unrounded_misses = []
    for row in rows:
        solved = 100 * _count(row["5"], 2) / MINT_TASKS
        with_feedback = 100 * _count(row[FEEDBACK_COLUMN], 1) / MINT_TASKS
        entry = MintLeaderboardEntry(
            model=row["model"],
            sr_at_k={5: solved},
            sr_with_feedback=with_feedback,
            delta_feedback=mint_delta_feedback(with_feedback, solved),
        )
        got = entry.row()
        assert (got["5"], got[FEEDBACK_COLUMN], got["Delta Feedback"]) == (
            row["5"],
            row[FEEDBACK_COLUMN],
            row["Delta Feedback"],
        ), row["model"]
        if round(with_feedback - solved, 1) != row["Delta Feedback"]:
            unrounded_misses.append(row["model"])
    assert unrounded_misses == ["vicuna-13b-v1.5"]
