#!/usr/bin/env bash
# Installs what the report's browser test (tests/test_report_browser.py) needs, when missing:
# Debian's `chromium` (apt-get, only as root) and Playwright's Python package in the given venv.
# Playwright drives /usr/bin/chromium; this never runs `playwright install` (that downloads a
# browser of its own, and fails without network access). Idempotent; instant when both are there.
# Usage: scripts/ensure_browser.sh .venv/bin/python
set -euo pipefail
PY="${1:?usage: $0 VENV_PYTHON (e.g. .venv/bin/python)}"

if [ -x /usr/bin/chromium ]; then
  :
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the report test) with apt-get"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
else
  echo "note: /usr/bin/chromium not found and not root; the report's browser test will be skipped." >&2
  echo "      install it with: sudo apt-get install chromium" >&2
fi

if ! "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "installing playwright (Python package only; it drives /usr/bin/chromium)"
  "$PY" -m pip install -q --disable-pip-version-check playwright \
    || echo "warning: could not install playwright; the browser test will be skipped" >&2
fi
