"""The self-contained HTML report: tables, charts and the trajectory viewer in one file.

Everything the page needs is inside it (CSS, the viewer's script, SVG charts, the episode data);
it loads nothing from anywhere, so it opens from disk, from an e-mail attachment or offline.

Untrusted text (model output, observations, feedback, task ids, run names, manifests) reaches
the page two ways, both escaped: tables go through Jinja2 with autoescaping on; the episodes go
into a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as JSON
``\\u003c``-style escapes, and the viewer puts text in the page with ``textContent`` only. A
Content-Security-Policy in the page then allows no network access and no script but the
viewer's own (by its SHA-256), so even a mistake in escaping could not run injected code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from mulligan.events import Episode
from mulligan.metrics import DEFAULT_BOOTSTRAP, BootstrapConfig
from mulligan.report.charts import delta_chart, run_color, sr_at_k_chart, suite_chart
from mulligan.report.data import LoadedRun, build_report_data, load_runs, run_summaries
from mulligan.report.trajectories import script_json, viewer_data


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mulligan.report", "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped unless it is our own Markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, ci=_ci, num=_num, count=_count, usd=_usd, pvalue=_pvalue)
    return env


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100.0 * value:.{digits}f}%"


def _ci(est: dict[str, Any]) -> str:
    """``[low, high]`` in percent, or '' when the interval is undefined."""
    if est.get("ci_low") is None or est.get("ci_high") is None:
        return ""
    return f"[{100.0 * est['ci_low']:.1f}, {100.0 * est['ci_high']:.1f}]"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{round(value):,}"


def _usd(value: float | None) -> str:
    if value is None:
        return "–"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def _pvalue(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _static(name: str) -> str:
    return (resources.files("mulligan.report") / "templates" / name).read_text(encoding="utf-8")


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def content_security_policy(script: str) -> str:
    """The page's policy: nothing from the network, no script but ``script``, inline styles."""
    return (
        "default-src 'none'; "
        f"script-src '{_csp_hash(script)}'; "
        # The SVG charts carry style attributes; styles cannot run code.
        "style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def _sample(episodes: list[Episode], limit: int | None) -> list[Episode]:
    """At most ``limit`` episodes, taken round-robin over suites so each suite stays visible."""
    if limit is None or len(episodes) <= limit:
        return episodes
    by_suite: dict[str, list[Episode]] = {}
    for episode in episodes:
        by_suite.setdefault(episode.key.suite, []).append(episode)
    queues = [iter(items) for _, items in sorted(by_suite.items())]
    chosen: list[Episode] = []
    while len(chosen) < limit and queues:
        for queue in list(queues):
            item = next(queue, None)
            if item is None:
                queues.remove(queue)
            elif len(chosen) < limit:
                chosen.append(item)
    order = {id(e): i for i, e in enumerate(episodes)}
    return sorted(chosen, key=lambda e: order[id(e)])


@dataclass(frozen=True)
class RenderedReport:
    """The page and the policy a server should also send as a header."""

    html: str
    content_security_policy: str


def _render(
    runs: Sequence[LoadedRun],
    bootstrap: BootstrapConfig,
    max_episodes_per_run: int | None,
    title: str | None,
) -> RenderedReport:
    summaries = run_summaries(runs, bootstrap)
    data = build_report_data(runs, bootstrap, summaries)
    index_of = {run["label"]: i for i, run in enumerate(data["runs"])}
    suites: list[str] = data["suites"]

    charts: dict[str, Markup] = {}
    if data["runs"]:
        # matplotlib escapes the text it writes into SVG; see charts.py.
        charts["sr"] = Markup(sr_at_k_chart(data["runs"]))
        if suites:
            charts["suites"] = Markup(suite_chart(data["runs"], suites))
    deltas = [
        (f"R{i + 1} vs R{index_of[run['feedback_baseline']['b']] + 1}", run["feedback_baseline"], i)
        for i, run in enumerate(data["runs"])
        if run["feedback_baseline"] is not None
    ]
    if deltas:
        charts["delta"] = Markup(delta_chart(deltas))

    shown = [_sample(run.episodes, max_episodes_per_run) for run in runs]
    viewer = viewer_data([(run.label, episodes) for run, episodes in zip(runs, shown, strict=True)])
    script = _static("viewer.js")
    style = _static("report.css")
    # Our own files, but checked: these would end their element early or switch the HTML
    # parser into a state where the element does not end where it should.
    if any(tag in script.lower() for tag in ("</script", "<script", "<!--")) or (
        "</style" in style.lower()
    ):
        raise RuntimeError("report template assets must not contain closing or comment tags")
    csp = content_security_policy(script)
    total = sum(len(run.episodes) for run in runs)
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=title or _default_title(runs),
            data=data,
            suites=suites,
            suite_rows=[
                (
                    suite,
                    [
                        (i, run["summary"]["suites"][suite])
                        for i, run in enumerate(data["runs"])
                        if suite in run["summary"]["suites"]
                    ],
                )
                for suite in suites
            ],
            colors=[run_color(i) for i in range(len(runs))],
            index_of=index_of,
            charts=charts,
            manifests=[json.dumps(run.manifest, indent=2, sort_keys=True) for run in runs],
            episodes_total=total,
            episodes_shown=sum(len(e) for e in shown),
            csp=csp,
            style=Markup(style),
            script=Markup(script),
            viewer_json=Markup(script_json(viewer)),
        )
    )
    return RenderedReport(html=html, content_security_policy=csp)


def _default_title(runs: Sequence[LoadedRun]) -> str:
    if len(runs) == 1:
        return f"mulligan report: {runs[0].label}"
    return f"mulligan report: {len(runs)} runs"


def render_html_report(
    run_dirs: Sequence[Path],
    *,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    max_episodes_per_run: int | None = None,
    title: str | None = None,
    pool: bool = False,
) -> str:
    """The report page for ``run_dirs`` (run directories, or directories with runs below).

    ``max_episodes_per_run`` bounds how many trajectories each run embeds (None: all; metrics
    always use every episode); ``pool`` reports the runs as one (``pool_runs``). Raises
    ``ReportError`` when a directory holds no run.
    """
    runs = load_runs(run_dirs, pool=pool)
    return _render(runs, bootstrap, max_episodes_per_run, title).html


def write_html_report(
    run_dirs: Sequence[Path],
    out: Path,
    *,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    max_episodes_per_run: int | None = None,
    title: str | None = None,
    pool: bool = False,
) -> Path:
    """Write the self-contained report for ``run_dirs`` to ``out``; returns ``out``.

    See ``render_html_report`` for the arguments. The parent directory is created if needed.
    """
    html = render_html_report(
        run_dirs,
        bootstrap=bootstrap,
        max_episodes_per_run=max_episodes_per_run,
        title=title,
        pool=pool,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render_report(
    run_dirs: Sequence[Path],
    *,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    max_episodes_per_run: int | None = None,
    title: str | None = None,
) -> RenderedReport:
    """Like ``render_html_report`` but also returns the page's Content-Security-Policy."""
    return _render(load_runs(run_dirs), bootstrap, max_episodes_per_run, title)
