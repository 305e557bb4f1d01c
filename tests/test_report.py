"""The HTML report and its data: self-contained, complete, escaped everywhere, JSON / CSV shapes."""

from __future__ import annotations

import base64
import csv
import hashlib
import html as htmllib
import io
import json
import re
import shutil
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.events import Episode, EpisodeKey, Event, FeedbackEvent, FeedbackOrigin, LeakFlags
from mulligan.metrics import BootstrapConfig, summarize_run
from mulligan.report import (
    CSV_COLUMNS,
    ReportError,
    load_runs,
    render_html_report,
    report_csv,
    report_data,
    serve_viewer,
    write_html_report,
)
from mulligan.report.trajectories import line_diff, script_json, viewer_data
from mulligan.store import RunStore
from test_report_support import (
    BREAKOUT,
    HOSTILE,
    OUTCOMES_A,
    OUTCOMES_B,
    PWN_IMG,
    PWN_SCRIPT,
    build_run,
)

# Fewer bootstrap draws: the numbers' exactness is tested in test_metrics*, not here.
FAST = BootstrapConfig(n_resamples=200)

runner = CliRunner()

EVIL_DIR = 'run-<b onmouseover="x">$\\alpha$'


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    a = build_run(tmp_path / "with-feedback", "run-a", OUTCOMES_A, feedback="textual")
    b = build_run(tmp_path / "no-feedback", "run-b", OUTCOMES_B, feedback=None)
    return [a, b]


@pytest.fixture
def hostile_run(tmp_path: Path) -> Path:
    outcomes = dict(OUTCOMES_A)
    outcomes[("gsm8k", f"pwn {HOSTILE}")] = 3
    outcomes[(f"suite {PWN_SCRIPT}", "7")] = None
    return build_run(
        tmp_path / EVIL_DIR,
        f"run {HOSTILE}",
        outcomes,
        hostile=frozenset({("gsm8k", f"pwn {HOSTILE}"), (f"suite {PWN_SCRIPT}", "7")}),
        failed=frozenset({("gsm8k", f"pwn {HOSTILE}")}),
        manifest={"note": HOSTILE, "config": {"model": HOSTILE}},
        model=f"model {PWN_IMG}",
    )


def _data_block(html: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="mulligan-data">(.*?)</script>', html, re.DOTALL
    )
    assert match is not None
    return json.loads(match.group(1))


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_html_is_self_contained(two_runs: list[Path], tmp_path: Path) -> None:
    out = write_html_report(two_runs, tmp_path / "out" / "report.html", bootstrap=FAST)
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # Nothing is loaded from anywhere: no URL in any attribute that fetches, no @import, no
    # external stylesheet or script; the policy forbids network access as well.
    assert not re.search(
        r"""(src|href|action|srcset|poster|data)\s*=\s*["']?\s*(https?:)?//""", html, re.I
    )
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:)?//", html, re.I)
    assert "<link" not in html.lower()
    assert "default-src &#39;none&#39;" in html  # the policy, in an attribute
    assert len(re.findall(r"<script\b", html)) == 2  # the data block and the viewer


def test_report_lists_every_run_and_suite(two_runs: list[Path]) -> None:
    html = render_html_report(two_runs, bootstrap=FAST)
    for label in ("with-feedback", "no-feedback"):
        assert label in html
    for suite in ("gsm8k", "mbpp"):
        assert f"<b>{suite}</b>" in html  # the per-suite table
        assert f">{suite}</text>" in html  # the per-suite chart's panel title
    for section in (
        "summary",
        "curves",
        "suites",
        "feedback",
        "compare",
        "dynamics",
        "cost",
        "manifests",
        "trajectories",
    ):
        assert f'<section id="{section}">' in html
    data = _data_block(html)
    assert data["runs"] == ["with-feedback", "no-feedback"]
    assert len(data["episodes"]) == len(OUTCOMES_A) + len(OUTCOMES_B)


def test_comparison_of_two_runs_is_one_chart_with_both(two_runs: list[Path]) -> None:
    html = render_html_report(two_runs, bootstrap=FAST)
    figure = re.search(r'<figure class="chart" id="chart-sr">(.*?)</figure>', html, re.DOTALL)
    assert figure is not None
    chart = figure.group(1)
    assert chart.count("<svg") == 1
    assert "R1  with-feedback" in chart and "R2  no-feedback" in chart
    assert chart.count("<path") > 4  # lines, bands, markers and axes were drawn
    # SVG ids are unique per chart once several charts share the page.
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_hostile_text_is_escaped_everywhere(hostile_run: Path) -> None:
    html = render_html_report([hostile_run], bootstrap=FAST)
    # No payload survives as markup anywhere in the page (tables, manifest, charts, JSON block).
    for payload in (PWN_SCRIPT, PWN_IMG, "<b onmouseover", "</script><script>", "<!-- </pre>"):
        assert payload not in html
    assert len(re.findall(r"<script\b", html, re.I)) == 2
    assert "<img" not in html.lower()
    assert "{{ 7*7 }}" in html  # data is never evaluated as a template
    # Escaped forms are there: the manifest and run id in tables, the run name in SVG.
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "run-&lt;b onmouseover=" in html
    assert "$\\alpha$" in html  # shown as typed; matplotlib does not parse math here
    # The JSON block holds the exact text (JSON.parse restores it) and no raw < > &.
    block = re.search(r'id="mulligan-data">(.*?)</script>', html, re.DOTALL)
    assert block is not None and not re.search(r"[<>&]", block.group(1))
    data = json.loads(block.group(1))
    texts = "\n".join(_strings(data))
    for payload in (PWN_SCRIPT, PWN_IMG, BREAKOUT):
        assert payload in texts
    fields = set()
    for episode in data["episodes"]:
        if not any(HOSTILE in text for text in _strings(episode)):
            continue
        for turn in episode["turns"]:
            for item in turn["items"]:
                fields |= {
                    f"{item['t']}.{k}"
                    for k, v in item.items()
                    if isinstance(v, str) and PWN_SCRIPT in v
                }
    # model output (raw reply, thought), code, observation, verdict and feedback all carry it
    assert {
        "action.thought",
        "action.content",
        "action.raw",
        "observation.content",
        "verdict.detail",
        "feedback.content",
        "feedback.source",
    } <= fields


def test_csp_allows_exactly_the_viewer_script(two_runs: list[Path]) -> None:
    html = render_html_report(two_runs, bootstrap=FAST)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None
    assert f"script-src 'sha256-{digest}'" in htmllib.unescape(policy.group(1))
    # The viewer never turns text into markup or code.
    sinks = r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    assert not re.search(sinks, scripts[0])


def test_report_data_shape_and_numbers(two_runs: list[Path]) -> None:
    data = report_data(two_runs, FAST)
    json.dumps(data)  # JSON-serialisable as is
    assert data["schema"] == "mulligan.report/4"
    assert data["suites"] == ["gsm8k", "mbpp"]
    assert [r["label"] for r in data["runs"]] == ["with-feedback", "no-feedback"]
    run_a, run_b = data["runs"]
    expected = summarize_run(load_runs([two_runs[0]])[0].episodes, FAST)
    assert run_a["summary"] == expected.model_dump(mode="json")
    assert run_a["summary"]["sr_at_k"]["3"]["value"] == pytest.approx(5 / 7)
    assert run_a["summary"]["sr_at_k"]["3"]["ci_low"] is not None
    assert run_a["feedback"]["kinds"][0]["kind"] == "textual"
    assert run_a["feedback"]["kinds"][0]["friction"]["value"] is not None
    (source,) = run_a["feedback"]["sources"]
    assert source["source"] == run_a["feedback"]["providers"][0]["source"]
    assert source["messages"] == run_a["feedback"]["kinds"][0]["messages"]
    # B's providers (none) are a strict subset of A's: B is A's feedback baseline.
    assert run_a["feedback_baseline"]["b"] == "no-feedback"
    assert run_a["feedback_baseline"]["delta"]["value"] == pytest.approx((5 - 3) / 7)
    assert run_b["feedback_baseline"] is None
    (comparison,) = data["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["paired"]) == (
        "no-feedback",
        "with-feedback",
        True,
    )


def test_macro_row_is_the_mean_of_unequal_suites(two_runs: list[Path]) -> None:
    # Run A has 4 gsm8k and 3 mbpp episodes: macro and micro differ, so each view must show
    # the mean of the suites' rates, not the pooled rate.
    data = report_data([two_runs[0]], FAST)
    summary = data["runs"][0]["summary"]
    gsm8k, mbpp = (2 / 4, 3 / 4), (1 / 3, 2 / 3)  # SR@2, SR@3 per suite
    for k, i in (("2", 0), ("3", 1)):
        assert summary["macro_sr_at_k"][k]["value"] == pytest.approx((gsm8k[i] + mbpp[i]) / 2)
    assert summary["sr_at_k"]["3"]["value"] == pytest.approx(5 / 7)
    rows = list(csv.DictReader(io.StringIO(report_csv([two_runs[0]], FAST))))
    macro = {r["k"]: float(r["sr"]) for r in rows if r["scope"] == "macro"}
    assert macro["3"] == pytest.approx(17 / 24) and macro["2"] == pytest.approx(5 / 12)
    html = render_html_report([two_runs[0]], bootstrap=FAST)
    body = html[html.index('<section id="summary">') :]
    body = body[body.index("<tbody>") :]
    row = body[: body.index("</tr>")]
    # The summary row's rates in column order: SR@1, SR@K (micro), SR@K (macro), ...
    assert re.findall(r'<span class="v">([^<]*)</span>', row)[1:3] == ["71.4%", "70.8%"]
    table = runner.invoke(app, ["report", str(two_runs[0])])
    macro_line = next(line for line in table.output.splitlines() if "macro" in line)
    assert "70.8" in macro_line and "71.4" not in macro_line


def _audited_run(path: Path) -> Path:
    """A run whose critic leaked twice (once redacted, once regenerated clean) and whose binary
    verdicts were replayed from another run."""
    origin = FeedbackOrigin(
        run_id="old", run_dir="runs/old", suite="gsm8k", task_id="1", epoch=0, turn=1,
        at=datetime(2024, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    numeric = LeakFlags(numeric=True)
    events: list[Event] = [
        FeedbackEvent(turn=1, kind="binary", source="rule:checker-verdict", content="Wrong.",
                      replayed_from=origin),
        FeedbackEvent(turn=1, kind="textual", source="model:critic", content="It is [redacted].",
                      raw_leak=numeric, intervention="redacted"),
        FeedbackEvent(turn=2, kind="textual", source="model:critic", content="Check the units.",
                      raw_leak=numeric, intervention="regenerated", regenerations=2),
    ]  # fmt: skip
    with RunStore(path) as store:
        store.create_run("audited", "c", {"config": {"feedback": "binary+critic:leak=redact"}})
        store.save_episode(
            Episode(
                key=EpisodeKey(suite="gsm8k", task_id="1"),
                run_id="audited",
                config_hash="c",
                model="m",
                max_turns=3,
                max_proposals=2,
                events=events,
            )
        )
    return path


def test_report_shows_what_the_provider_leaked_and_what_was_replayed(tmp_path: Path) -> None:
    run = _audited_run(tmp_path / "audited")
    feedback = report_data([run], FAST)["runs"][0]["feedback"]
    critic = next(s for s in feedback["sources"] if s["source"] == "model:critic")
    # Before the fix the report said 0 leaks here: it only saw the cleaned-up text.
    assert (critic["leaked"], critic["raw_leaked"], critic["raw_leak_rate"]) == (0, 2, 1.0)
    assert critic["raw_by_flag"] == {"numeric": 2}
    assert critic["interventions"] == {"redacted": 1, "regenerated": 1}
    assert critic["regenerations"] == 2
    verdicts = next(s for s in feedback["sources"] if s["source"] == "rule:checker-verdict")
    assert (verdicts["replayed"], critic["replayed"]) == (1, 0)
    assert (feedback["replayed"], feedback["live"]) == (1, 2)

    html = render_html_report([run], bootstrap=FAST)
    audit = html[html.index('id="leak-audit"') :]
    audit = audit[: audit.index("</table>")]
    critic_row = next(r for r in audit.split("<tr>") if "model:critic" in r)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", critic_row)
    plain = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    # Run, source, messages, replayed, provider leaked, redacted, regenerated, gave up,
    # reached the policy, solves after a leak.
    assert plain[2:] == ["2", "0", "2 100.0%", "1", "1 (2 drafts)", "0", "0", "0"]
    assert "1 feedback messages replayed from a recorded run, 2 live" in html
    items = [
        item
        for episode in _data_block(html)["episodes"]
        for turn in episode["turns"]
        for item in turn["items"]
        if item["t"] == "feedback"
    ]
    assert [i["intervention"] for i in items] == ["none", "redacted", "regenerated"]
    assert items[1]["raw_leak"] == ["numeric"] and items[1]["leak"] == []
    assert items[0]["replayed_from"] == "old (runs/old) gsm8k/1 epoch 0 turn 1"
    assert items[1].get("replayed_from") is None

    # The terminal table shows both counts too: provider leaked 2, leaked (reached) 0.
    table = runner.invoke(app, ["report", str(run)], env={"COLUMNS": "200"}).output
    assert "provider leaked" in table and "replayed" in table
    row = next(line for line in table.splitlines() if "model:critic" in line)
    assert [c.strip() for c in row.split("│")[2:5]] == ["2", "2", "0"]


def test_one_schema_for_one_run_or_several(two_runs: list[Path]) -> None:
    """``mulligan report --format json`` prints the same versioned schema for 1 run or 2."""
    one = json.loads(runner.invoke(app, ["report", str(two_runs[0]), "--format", "json"]).output)
    both = json.loads(
        runner.invoke(app, ["report", *map(str, two_runs), "--format", "json"]).output
    )
    assert one["schema"] == both["schema"] == "mulligan.report/4"
    assert set(one) == set(both)
    assert [set(run) for run in one["runs"]] == [set(both["runs"][0])]
    assert one["runs"][0]["summary"]["sr_at_k"]["3"]["ci_low"] is not None
    # The terminal table of several runs shows each run's SR@k with its interval.
    table = runner.invoke(app, ["report", *map(str, two_runs)])
    assert table.exit_code == 0, table.output
    assert "with-feedback" in table.output and "no-feedback" in table.output
    assert re.search(r"\[\d+\.\d, \d+\.\d\]", table.output)


def test_report_csv_rows(two_runs: list[Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(two_runs, FAST))))
    assert tuple(rows[0]) == CSV_COLUMNS
    # 2 runs x (micro + macro + 2 suites) x k = 1..3
    assert len(rows) == 2 * 4 * 3
    row = next(
        r
        for r in rows
        if r["run"] == "with-feedback"
        and r["scope"] == "suite"
        and r["suite"] == "gsm8k"
        and r["k"] == "2"
    )
    assert (row["episodes"], row["solved"], float(row["sr"])) == ("4", "2", 0.5)
    assert 0.0 <= float(row["ci_low"]) <= 0.5 <= float(row["ci_high"]) <= 1.0
    macro = next(r for r in rows if r["scope"] == "macro")
    assert macro["solved"] == "" and macro["suite"] == ""


def test_import_root_expands_to_its_runs(two_runs: list[Path], tmp_path: Path) -> None:
    runs = load_runs([tmp_path])
    assert sorted(r.label for r in runs) == ["no-feedback", "with-feedback"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"no mulligan\.sqlite"):
        load_runs([tmp_path / "empty"])
    with pytest.raises(ReportError, match="no such directory"):
        load_runs([tmp_path / "missing"])


def test_episode_cap_samples_every_suite(two_runs: list[Path]) -> None:
    html = render_html_report(two_runs[:1], bootstrap=FAST, max_episodes_per_run=2)
    data = _data_block(html)
    assert {e["suite"] for e in data["episodes"]} == {"gsm8k", "mbpp"}
    assert "Showing 2 of 7 episodes" in html


def test_viewer_data_turns_diffs_and_shared_prompt(two_runs: list[Path]) -> None:
    (run,) = load_runs([two_runs[0]])
    data = viewer_data([(run.label, run.episodes)])
    episode = next(e for e in data["episodes"] if e["task"] == "2")  # solved at turn 3
    assert (episode["outcome"], episode["success_turn"]) == ("solved", 3)
    kinds = [[item["t"] for item in turn["items"]] for turn in episode["turns"]]
    assert kinds[0] == ["call", "action", "observation"]
    assert kinds[1] == ["call", "action", "verdict", "call", "feedback"]
    second = episode["turns"][2]["items"][1]
    assert second["diff"] == {"turn": 2, "lines": [["@", "@@ -1 +1 @@"], ["-", "14"], ["+", "42"]]}
    # The shared instructions are stored once; joining the parts gives the prompt back.
    original = run.episodes[[e.key.task_id for e in run.episodes].index("2")].events[0]
    ((role, parts),) = episode["prompt"]
    assert any(isinstance(p, int) for p in parts)
    text = "\n\n".join(data["shared"][p] if isinstance(p, int) else p for p in parts)
    assert (role, text) == ("user", original.messages[0].content)


def test_line_diff_and_script_json() -> None:
    assert line_diff("a\nb\n", "a\nb\n") == []
    assert ["+", "c"] in line_diff("a\nb", "a\nb\nc")
    tricky = {"x": "</script><!-- \u2028 & > \ud800"}
    encoded = script_json(tricky)
    assert not re.search(r"[<>&\u2028]", encoded)
    assert json.loads(encoded) == tricky
    assert json.loads(script_json({"v": [float("nan"), 1.5]})) == {"v": [None, 1.5]}


def test_serve_viewer_serves_only_the_report(two_runs: list[Path]) -> None:
    server, url = serve_viewer(two_runs, bootstrap=FAST)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode("utf-8")
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "with-feedback" in body and 'id="mulligan-data"' in body
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "mulligan.sqlite", timeout=10)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_pooled_runs_are_one_micro_average(tmp_path: Path) -> None:
    # MINT's text tasks and ALFWorld's games are separate runs; --pool reports them as one.
    text = {key: turn for key, turn in OUTCOMES_A.items() if key[0] == "gsm8k"}
    games = {("alfworld", "g1"): 1, ("alfworld", "g2"): None, ("alfworld", "g3"): None}
    a = build_run(tmp_path / "text", "run-t", text, feedback=None)
    b = build_run(tmp_path / "games", "run-g", games, feedback=None)
    data = report_data([a, b], FAST, pool=True)
    assert [run["label"] for run in data["runs"]] == ["text + games"]
    sr = data["runs"][0]["summary"]["sr_at_k"]
    solved = {
        k: sum(t is not None and t <= int(k) for t in [*text.values(), *games.values()]) for k in sr
    }
    assert {k: (v["numerator"], v["denominator"]) for k, v in sr.items()} == {
        k: (solved[k], 7) for k in sr
    }
    assert set(data["runs"][0]["summary"]["suites"]) == {"gsm8k", "alfworld"}
    result = runner.invoke(app, ["report", str(a), str(b), "--pool", "--format", "csv"])
    assert result.exit_code == 0 and "text + games" in result.output
    # The same episode twice, or two policies, is refused in one line.
    copy = shutil.copytree(a, tmp_path / "copy")
    again = runner.invoke(app, ["report", str(a), str(copy), "--pool"])
    assert again.exit_code == 2 and "is in" in again.output
    other = build_run(tmp_path / "other", "run-o", games, feedback=None, model="test/other")
    mixed = runner.invoke(app, ["report", str(a), str(other), "--pool"])
    assert mixed.exit_code == 2 and "differ in policy model" in mixed.output
