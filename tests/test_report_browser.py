"""The report in a real browser: charts drawn, filters and the trajectory viewer work, and hostile
model text is shown as text without running anything.

Headless Debian Chromium driven by Playwright's Python package (never ``playwright install``:
it downloads a browser). ``scripts/ensure_browser.sh .venv/bin/python`` installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mulligan.metrics import BootstrapConfig
from mulligan.report import serve_viewer, write_html_report
from test_report_support import (
    HOSTILE,
    OUTCOMES_A,
    OUTCOMES_B,
    PWN_IMG,
    PWN_SCRIPT,
    build_run,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
FAST = BootstrapConfig(n_resamples=200)

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: run scripts/ensure_browser.sh .venv/bin/python (Debian chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright not installed: run scripts/ensure_browser.sh .venv/bin/python",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.requests = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))

    # The report is self-contained: record (and refuse) anything that is not the page itself.
    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file://", "data:")) or url.startswith(page.allowed_origin):  # type: ignore[attr-defined]
            route.continue_()
        else:
            page.requests.append(url)
            route.abort()

    page.allowed_origin = "file://"  # type: ignore[attr-defined]
    page.route("**/*", guard)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-report")
    hostile_task = ("gsm8k", "pwn-1")
    a = build_run(
        root / "with-feedback",
        "run-a",
        {**OUTCOMES_A, hostile_task: None},
        hostile=frozenset({hostile_task}),
        manifest={"note": HOSTILE},
    )
    b = build_run(root / "no-feedback", "run-b", OUTCOMES_B, feedback=None)
    return write_html_report([a, b], root / "report.html", bootstrap=FAST)


def _rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#episode-list li",
        "rows => rows.map(r => ({outcome: r.dataset.outcome, text: r.textContent}))",
    )


def test_report_renders_filters_and_opens_a_trajectory(
    page: Any, report: Path, tmp_path: Path
) -> None:
    page.goto(report.as_uri())
    # The SR@k chart is drawn: an inline SVG with lines in it, laid out with a real size.
    chart = page.locator("#chart-sr svg")
    assert chart.count() == 1
    assert page.locator("#chart-sr svg path").count() > 4
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 150

    total = len(_rows(page))
    assert total == len(OUTCOMES_A) + 1 + len(OUTCOMES_B)
    page.select_option("#f-outcome", "solved")
    solved = _rows(page)
    assert 0 < len(solved) < total
    assert {row["outcome"] for row in solved} == {"solved"}
    assert page.locator("#f-count").text_content() == f"{len(solved)} of {total} episodes"
    page.select_option("#f-turn", "3")
    assert all("@3" in row["text"] for row in _rows(page))
    page.select_option("#f-turn", "")

    page.locator("#episode-list li").first.click()
    view = page.locator("#episode-view")
    assert view.locator(".turn").count() >= 2
    assert view.locator(".verdict.correct").count() == 1
    assert view.locator("pre.code").count() == 1
    # A later proposal shows its diff against the previous one.
    page.select_option("#f-outcome", "")
    page.fill("#f-text", "2")
    page.locator("#episode-list li", has_text="gsm8k").first.click()
    assert view.locator("pre.diff .d-add").count() >= 1
    assert view.locator(".item.feedback .badge", has_text="saw reference").count() >= 1

    page.evaluate("document.getElementById('trajectories').scrollIntoView()")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("MULLIGAN_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "report.png")
    assert page.errors == []  # type: ignore[attr-defined]
    assert page.requests == []  # type: ignore[attr-defined]


def test_hostile_model_text_is_shown_not_run(page: Any, report: Path, tmp_path: Path) -> None:
    page.goto(report.as_uri())
    page.fill("#f-text", "pwn")
    rows = _rows(page)
    assert len(rows) == 1
    page.locator("#episode-list li").first.click()
    view = page.locator("#episode-view")
    page.locator("#episode-view details").first.evaluate("d => { d.open = true; }")  # the prompt
    for details in view.locator("details").all():
        details.evaluate("d => { d.open = true; }")  # raw replies too
    text = view.inner_text()
    # The payloads are visible as the text the model wrote ...
    assert PWN_SCRIPT in text
    assert PWN_IMG in text
    for where in (
        ".thought",
        "pre.code",
        "pre.out",
        ".item.feedback .text",
        "pre.answer",
        ".prompt",
    ):
        assert PWN_SCRIPT in view.locator(where).first.inner_text(), where
    # ... and nothing ran or was created from them.
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#episode-view img, #episode-view script").count() == 0
    assert page.locator("img").count() == 0
    manifests = page.locator("#manifests pre").first.text_content()
    assert PWN_SCRIPT in manifests
    view.screenshot(path=str(tmp_path / "hostile.png"))
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.errors == []  # type: ignore[attr-defined]


def test_served_viewer_renders(page: Any, report: Path) -> None:
    server, url = serve_viewer([report.parent / "with-feedback"], bootstrap=FAST)
    try:
        page.allowed_origin = url  # type: ignore[attr-defined]
        page.goto(url)
        assert page.locator("#chart-sr svg path").count() > 4
        page.locator("#episode-list li").first.click()
        assert page.locator("#episode-view .turn").count() >= 1
        # The deep link reopens the same episode.
        page.reload()
        assert page.locator("#episode-view .turn").count() >= 1
        assert page.errors == []  # type: ignore[attr-defined]
        assert page.requests == []  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
