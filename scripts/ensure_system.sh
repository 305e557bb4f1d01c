#!/usr/bin/env bash
# Installs the Debian packages mulligan uses when they are missing and we may install them:
# bubblewrap (the sandbox's namespaces). Without it the sandbox still works, with rlimits,
# a dropped uid and a scrubbed environment only, and says so in each run's manifest.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (sandbox namespaces) with apt-get"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
    || echo "warning: could not install bubblewrap; the sandbox will use rlimits only" >&2
else
  echo "note: bubblewrap (bwrap) not found and not root; the sandbox will use rlimits only." >&2
  echo "      install it with your package manager for namespace isolation." >&2
fi
