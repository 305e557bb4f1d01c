"""pass@k and pass^k: closed forms on hand-computed counts, edge cases, unequal samples per
task, and the report's views of them (JSON, CSV, terminal table, HTML)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.events import Episode, EpisodeKey
from mulligan.metrics import BootstrapConfig, pass_at_k, pass_hat_k, pass_k_table, summarize_run
from mulligan.report import render_html_report, report_csv, report_data
from mulligan.store import RunStore

FAST = BootstrapConfig(n_resamples=200)


def sample(task: str, epoch: int, success_turn: int | None, max_turns: int = 3) -> Episode:
    return Episode(
        key=EpisodeKey(suite="gsm8k", task_id=task, epoch=epoch),
        run_id="r",
        config_hash="h",
        model="m",
        max_turns=max_turns,
        max_proposals=3,
        success=success_turn is not None,
        success_turn=success_turn,
    )


def test_closed_forms_by_hand() -> None:
    # n=5, c=2, k=2: pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10; pass^2 = C(2,2)/C(5,2) = 1/10.
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    # n=4, c=3, k=3: pass@3 = 1 - C(1,3)/C(4,3) = 1; pass^3 = C(3,3)/C(4,3) = 1/4.
    assert pass_at_k(4, 3, 3) == 1.0
    assert pass_hat_k(4, 3, 3) == pytest.approx(0.25)
    # k=1 is the plain success fraction for both.
    assert pass_at_k(7, 3, 1) == pass_hat_k(7, 3, 1) == pytest.approx(3 / 7)
    # n=10, c=4, k=3: 1 - C(6,3)/C(10,3) = 1 - 20/120; C(4,3)/C(10,3) = 4/120.
    assert pass_at_k(10, 4, 3) == pytest.approx(100 / 120)
    assert pass_hat_k(10, 4, 3) == pytest.approx(4 / 120)


def test_edges_none_all_and_k_above_n() -> None:
    assert pass_at_k(5, 0, 3) == 0.0 and pass_hat_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0 and pass_hat_k(5, 5, 3) == 1.0
    assert pass_at_k(5, 5, 5) == 1.0 and pass_hat_k(5, 4, 5) == 0.0
    with pytest.raises(ValueError, match="k=6 exceeds the n=5 samples"):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError, match="k=6 exceeds"):
        pass_hat_k(5, 1, 6)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="at least 1"):
        pass_hat_k(3, 1, 0)


def _unequal() -> list[Episode]:
    """Task a: 5 samples, solved at turns 1, 3 (c=1 within 1 turn, c=2 within 3).
    Task b: 2 samples, solved at turn 2 once. Task c: 3 samples, all solved at turn 1."""
    return [
        *(sample("a", e, t) for e, t in enumerate([1, None, 3, None, None])),
        *(sample("b", e, t) for e, t in enumerate([2, None])),
        *(sample("c", e, 1) for e in range(3)),
    ]


def test_table_averages_tasks_and_leaves_out_short_ones() -> None:
    table = pass_k_table(_unequal(), bootstrap=FAST)
    assert (table.tasks, table.samples_min, table.samples_max) == (3, 2, 5)
    assert table.ks == [1, 2, 3, 4, 5] and table.max_turns == 3
    assert table.short == {"1": 0, "2": 0, "3": 1, "4": 2, "5": 2}
    at, hat = table.pass_at_k, table.pass_hat_k
    # t=1: (n, c) = a (5, 1), b (2, 0), c (3, 3).
    assert at["1"]["1"].value == pytest.approx((1 / 5 + 0 + 1) / 3)
    assert at["2"]["1"].value == pytest.approx(((1 - 6 / 10) + 0 + 1) / 3)
    assert hat["2"]["1"].value == pytest.approx((0 + 0 + 1) / 3)
    # k=3 leaves b (n=2) out: a (5,1) and c (3,3).
    assert at["3"]["1"].value == pytest.approx(((1 - math.comb(4, 3) / 10) + 1) / 2)
    assert at["3"]["1"].episodes == 2
    # t=3: a (5, 2), b (2, 1), c (3, 3).
    assert at["2"]["3"].value == pytest.approx(((1 - 3 / 10) + 1 + 1) / 3)
    assert hat["2"]["3"].value == pytest.approx((1 / 10 + 0 + 1) / 3)
    # k=5: only a; pass^5 needs all 5 solved.
    assert (at["5"]["3"].value, hat["5"]["3"].value, at["5"]["3"].episodes) == (1.0, 0.0, 1)
    est = at["2"]["2"]
    assert est.method == "task-bootstrap"
    assert est.ci_low is not None and est.ci_high is not None
    assert est.ci_low <= est.value <= est.ci_high  # type: ignore[operator]
    assert hat["1"]["2"] == at["1"]["2"]


def test_every_task_short_gives_no_value_and_pass_k_grows_with_k_and_turns() -> None:
    table = pass_k_table([sample("a", 0, None), sample("b", 0, 1)], ks=[1, 2], bootstrap=FAST)
    assert table.pass_at_k["2"]["1"].value is None and table.short["2"] == 2
    grid = pass_k_table(_unequal(), bootstrap=FAST)
    for t in ("1", "2", "3"):
        values = [grid.pass_at_k[str(k)][t].value for k in (1, 2)]
        hats = [grid.pass_hat_k[str(k)][t].value for k in (1, 2)]
        assert values[0] <= values[1] and hats[0] >= hats[1]  # type: ignore[operator]
    with pytest.raises(ValueError, match="at least 1"):
        pass_k_table(_unequal(), ks=[0])


def test_failed_episodes_count_as_unsolved_samples() -> None:
    failed = sample("a", 1, None).model_copy(update={"status": "failed"})
    table = pass_k_table([sample("a", 0, 1), failed], bootstrap=FAST)
    assert table.pass_at_k["1"]["1"].value == 0.5
    assert table.pass_at_k["2"]["1"].value == 1.0 and table.pass_hat_k["2"]["1"].value == 0.0


@pytest.fixture
def sampled_run(tmp_path: Path) -> Path:
    out = tmp_path / "epochs"
    with RunStore(out) as store:
        store.create_run("r", "h", {"config": {}})
        for episode in _unequal():
            store.save_episode(episode)
    return out


def test_report_views_show_pass_k(sampled_run: Path) -> None:
    data = report_data([sampled_run], FAST)
    assert data["schema"] == "mulligan.report/4"
    table = data["runs"][0]["summary"]["repeated_sampling"]
    assert table["pass_at_k"]["2"]["1"]["value"] == pytest.approx(((1 - 6 / 10) + 0 + 1) / 3)
    json.dumps(data)
    rows = list(csv.DictReader(io.StringIO(report_csv([sampled_run], FAST))))
    row = next(
        r for r in rows if r["scope"] == "pass^k" and r["samples_k"] == "2" and r["k"] == "3"
    )
    assert float(row["sr"]) == pytest.approx((1 / 10 + 0 + 1) / 3)
    assert row["episodes"] == "3" and row["method"] == "task-bootstrap"
    # 2 metrics x 5 k x 3 turn budgets, after the SR rows.
    assert sum(r["scope"] in ("pass@k", "pass^k") for r in rows) == 2 * 5 * 3
    shown = CliRunner().invoke(app, ["report", str(sampled_run)])
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if "pass^2" in x)
    assert "36.7%" in line  # pass^2 within 3 turns: (0.1 + 0 + 1) / 3
    assert "pass@5" in shown.output and "(2 short)" in shown.output
    html = render_html_report([sampled_run], bootstrap=FAST)
    section = html[html.index('<section id="pass-k">') :]
    assert "pass^2" in section[: section.index("</section>")]


def test_single_epoch_runs_keep_their_tables(tmp_path: Path) -> None:
    # One sample per task: pass@1 equals SR@t; the extra views stay away.
    episodes = [sample("a", 0, 1), sample("b", 0, None)]
    summary = summarize_run(episodes, FAST)
    assert summary.repeated_sampling is not None
    assert summary.repeated_sampling.pass_at_k["1"]["1"].value == summary.sr_at_k["1"].value
    out = tmp_path / "single"
    with RunStore(out) as store:
        store.create_run("r", "h", {"config": {}})
        for episode in episodes:
            store.save_episode(episode)
    rows = list(csv.DictReader(io.StringIO(report_csv([out], FAST))))
    assert all(r["scope"] in ("micro", "macro", "suite") for r in rows)
    assert 'id="pass-k"' not in render_html_report([out], bootstrap=FAST)
