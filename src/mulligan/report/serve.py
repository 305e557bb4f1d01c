"""``mulligan view``: the report page served on the loopback interface by the standard library.

The server serves one page (the report, held in memory) and nothing else: no directory listing,
no file from disk, so pointing it at a run directory exposes nothing but the report. It binds to
127.0.0.1 by default; the page is the same self-contained file ``write_html_report`` writes, sent
with its Content-Security-Policy as a header as well.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mulligan.metrics import DEFAULT_BOOTSTRAP, BootstrapConfig
from mulligan.report.html import RenderedReport, render_report

_PAGE_PATHS = frozenset({"/", "/index.html", "/report.html"})


class _Page:
    """The page to serve; re-rendered per request when ``live`` (one render at a time)."""

    def __init__(self, render: Callable[[], RenderedReport], live: bool) -> None:
        self._render = render
        self._live = live
        self._lock = threading.Lock()
        self._page = render()

    def get(self) -> RenderedReport:
        if self._live:
            # matplotlib's rc settings are process-global: charts are drawn one page at a time.
            with self._lock:
                self._page = self._render()
        return self._page


def _handler(page: _Page) -> type[BaseHTTPRequestHandler]:
    class ReportHandler(BaseHTTPRequestHandler):
        server_version = "mulligan-view"

        def do_GET(self) -> None:
            self._send(body=True)

        def do_HEAD(self) -> None:
            self._send(body=False)

        def _send(self, body: bool) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if path not in _PAGE_PATHS:
                self.send_error(HTTPStatus.NOT_FOUND, "only the report page is served here")
                return
            try:
                rendered = page.get()
            except Exception as exc:  # a live re-render failed: say so rather than hang up
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"report failed: {exc}")
                return
            data = rendered.html.encode("utf-8")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Security-Policy", rendered.content_security_policy)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the CLI prints the URL; per-request lines would bury it

    return ReportHandler


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve_viewer(
    run_dirs: Sequence[Path],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    live: bool = False,
    bootstrap: BootstrapConfig = DEFAULT_BOOTSTRAP,
    max_episodes_per_run: int | None = None,
) -> tuple[ThreadingHTTPServer, str]:
    """Serve the report of ``run_dirs`` over HTTP from a daemon thread.

    Returns ``(server, url)``; ``port=0`` picks a free port. The report is rendered before this
    returns (so a bad run directory raises ``ReportError`` here), once, or on every page load
    when ``live`` (to watch a run in progress). Stop with ``server.shutdown()`` then
    ``server.server_close()``.
    """

    def render() -> RenderedReport:
        return render_report(
            run_dirs, bootstrap=bootstrap, max_episodes_per_run=max_episodes_per_run
        )

    page = _Page(render, live)
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), _handler(page))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="mulligan-view", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    name = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    shown = f"[{name}]" if ":" in name else name
    return server, f"http://{shown}:{bound_port}/"
