"""The report's charts, drawn by matplotlib as SVG and inlined into the HTML.

Why matplotlib SVG rather than a JavaScript plotting library: the charts are then plain markup,
drawn once in Python, so the report opens anywhere with no script at all (also where a viewer
blocks JavaScript), stays small (tens of KB per chart, against ~1 MB for Vega-Lite + Vega and
~3.5 MB for Plotly inlined), and prints. The interactive part of the report is the trajectory
viewer, which needs no plotting.

Labels come from run directories and suite names, so they are untrusted text too: matplotlib
escapes text it writes into SVG, and math text is turned off (``text.parse_math``) so that a
``$`` in a name is shown, not parsed. SVG element ids are prefixed per chart because several
charts share one HTML document. Figures are made with ``Figure`` directly, never pyplot: no
global figure state and no GUI backend, so reports can be made in threads and on servers.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# A colour-blind-safe palette (Okabe-Ito, then Tableau 10 for more runs); run i gets colour i
# everywhere in the report (charts and table swatches).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#000000",
    "#C9B400",  # Okabe-Ito's yellow, darkened: the original is hard to see on white
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#E15759",
    "#B07AA1",
    "#9C755F",
)
_DASHES = ("-", "--", ":", "-.")

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "svg.hashsalt": "mulligan",  # stable ids: the same data gives the same SVG
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}

_SVG_START = re.compile(r"<svg\b")
# matplotlib's RDF metadata names dublincore URLs; it is not needed and only adds bytes.
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_IDS = re.compile(r'\bid="([^"]+)"')
_REFS = re.compile(r'(href="#|url\(#)')


def run_color(index: int) -> str:
    """The colour of run ``index`` (0-based)."""
    return PALETTE[index % len(PALETTE)]


def _style(index: int) -> str:
    return _DASHES[(index // len(PALETTE)) % len(_DASHES)]


def _svg(fig: Figure, chart_id: str, title: str) -> str:
    """The figure as an inline ``<svg>`` element with ids prefixed by ``chart_id``."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    match = _SVG_START.search(text)
    if match is None:  # pragma: no cover - matplotlib always writes an <svg> root
        raise RuntimeError("matplotlib wrote no <svg> element")
    text = _METADATA.sub("", text[match.start() :])
    text = _IDS.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', text)
    text = _REFS.sub(lambda m: f"{m.group(1)}{chart_id}-", text)
    # Accessible name; ``title`` is our own wording plus escaped text (see caller), and
    # the SVG's fixed pt size becomes a max width so the chart shrinks with the page.
    return text.replace(
        "<svg ", f'<svg role="img" aria-label="{_attr(title)}" class="chart-svg" ', 1
    )


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _percent_axis(ax: Any, max_k: int) -> None:
    ax.set_ylim(0, 100)
    ax.set_xlim(0.8, max(max_k, 1) + 0.2)
    ax.set_xticks(range(1, max(max_k, 1) + 1))
    ax.set_xlabel("k (turns)")
    ax.set_ylabel("SR@k (%)")


def _curve(
    table: dict[str, dict[str, Any]],
) -> tuple[list[int], list[float], list[float], list[float]]:
    """(k, value, ci_low, ci_high) in percent from a ``{k: Estimate-as-dict}`` table."""
    ks: list[int] = []
    values: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    for k, est in sorted(table.items(), key=lambda item: int(item[0])):
        if est["value"] is None:
            continue
        value = 100.0 * est["value"]
        ks.append(int(k))
        values.append(value)
        lows.append(100.0 * est["ci_low"] if est["ci_low"] is not None else value)
        highs.append(100.0 * est["ci_high"] if est["ci_high"] is not None else value)
    return ks, values, lows, highs


def sr_at_k_chart(runs: Sequence[dict[str, Any]], chart_id: str = "sr") -> str:
    """SR@k over all episodes (micro), one line per run with its 95% band, runs compared.

    ``runs`` are ``report_data()["runs"]`` entries.
    """
    max_k = max((r["max_k"] for r in runs), default=1)
    with rc_context(_RC):
        fig = Figure(figsize=(7.5, 3.6 + 0.18 * len(runs)))
        ax = fig.add_subplot()
        for index, run in enumerate(runs):
            ks, values, lows, highs = _curve(run["summary"]["sr_at_k"])
            color = run_color(index)
            label = f"R{index + 1}  {run['label']}"
            ax.plot(ks, values, _style(index), marker="o", ms=4, color=color, label=label)
            ax.fill_between(ks, lows, highs, color=color, alpha=0.12, linewidth=0)
        _percent_axis(ax, max_k)
        ax.set_title("SR@k, all episodes (shaded: 95% Wilson interval)")
        fig.legend(loc="outside lower center", ncols=1, frameon=False, fontsize=8)
        fig.set_layout_engine("constrained")
        return _svg(fig, chart_id, "SR@k by run")


def suite_chart(
    runs: Sequence[dict[str, Any]], suites: Sequence[str], chart_id: str = "suites"
) -> str:
    """SR@k per task: one small panel per task, one line per run in each (runs compared)."""
    max_k = max((r["max_k"] for r in runs), default=1)
    columns = min(4, max(1, len(suites)))
    rows = max(1, math.ceil(len(suites) / columns))
    with rc_context(_RC):
        fig = Figure(figsize=(2.4 * columns + 0.6, 2.1 * rows + 0.4 + 0.18 * len(runs)))
        axes = fig.subplots(rows, columns, squeeze=False, sharey=True)
        for position, suite in enumerate(suites):
            ax = axes[position // columns][position % columns]
            for index, run in enumerate(runs):
                table = run["summary"]["suites"].get(suite)
                if table is None:
                    continue
                ks, values, lows, highs = _curve(table["sr_at_k"])
                color = run_color(index)
                ax.plot(ks, values, _style(index), marker="o", ms=3, color=color, lw=1.2)
                ax.fill_between(ks, lows, highs, color=color, alpha=0.08, linewidth=0)
            _percent_axis(ax, max_k)
            ax.set_title(suite, fontsize=9)
            if position % columns:
                ax.set_ylabel("")
        for position in range(len(suites), rows * columns):
            axes[position // columns][position % columns].set_visible(False)
        handles = [
            Line2D([], [], color=run_color(i), ls=_style(i), marker="o", ms=3)
            for i in range(len(runs))
        ]
        labels = [f"R{i + 1}  {run['label']}" for i, run in enumerate(runs)]
        fig.legend(handles, labels, loc="outside lower center", frameon=False, fontsize=8)
        fig.set_layout_engine("constrained")
        return _svg(fig, chart_id, "SR@k per task by run")


def delta_chart(rows: Sequence[tuple[str, dict[str, Any], int]], chart_id: str = "delta") -> str:
    """Horizontal bars of Delta SR (percentage points) with 95% intervals.

    ``rows`` are ``(label, RunComparison-as-dict, run index)``.
    """
    with rc_context(_RC):
        fig = Figure(figsize=(7.5, 0.9 + 0.42 * len(rows)))
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        for y, (_, comparison, index) in zip(ys, rows, strict=True):
            delta = comparison["delta"]
            value = 100.0 * (delta["value"] or 0.0)
            low = 100.0 * delta["ci_low"] if delta["ci_low"] is not None else value
            high = 100.0 * delta["ci_high"] if delta["ci_high"] is not None else value
            color = run_color(index)
            # Light fill, coloured edge: the interval's whisker stays visible on any colour.
            ax.barh(y, value, color=color, alpha=0.35, edgecolor=color, height=0.6)
            ax.errorbar(
                value, y, xerr=[[value - low], [high - value]], color="#222", capsize=3, lw=1
            )
        ax.axvline(0, color="#333", lw=0.8)
        ax.set_yticks(ys, [label for label, _, _ in rows])
        ax.set_xlabel("Δ SR (percentage points), paired by task; bars: 95% bootstrap interval")
        ax.grid(axis="y", visible=False)
        fig.set_layout_engine("constrained")
        return _svg(fig, chart_id, "Delta SR from feedback")
