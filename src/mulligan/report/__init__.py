"""HTML report and trajectory viewer of runs, and the report's numbers as JSON or CSV.

- ``write_html_report(run_dirs, out)``: one self-contained HTML file (tables, SR@k charts,
  feedback comparison, friction / recovery, cost, manifests, trajectory viewer).
- ``serve_viewer(run_dirs)``: the same page served on 127.0.0.1 (``mulligan view``).
- ``report_data(run_dirs)`` / ``report_csv(run_dirs)``: the numbers for scripts, in one
  versioned schema (``SCHEMA``, documented in ``mulligan.report.data``) for any number of runs.

``run_dirs`` are run directories (``--out`` of ``mulligan run``) or directories holding runs
below them (``mulligan import mint --out``).
"""

from mulligan.report.data import (
    CSV_COLUMNS,
    SCHEMA,
    LoadedRun,
    ReportError,
    build_report_data,
    expand_run_dirs,
    load_runs,
    report_csv,
    report_csv_from_data,
    report_data,
)
from mulligan.report.html import (
    RenderedReport,
    content_security_policy,
    render_html_report,
    render_report,
    write_html_report,
)
from mulligan.report.serve import serve_viewer

__all__ = [
    "CSV_COLUMNS",
    "SCHEMA",
    "LoadedRun",
    "RenderedReport",
    "ReportError",
    "build_report_data",
    "content_security_policy",
    "expand_run_dirs",
    "load_runs",
    "render_html_report",
    "render_report",
    "report_csv",
    "report_csv_from_data",
    "report_data",
    "serve_viewer",
    "write_html_report",
]
