#!/usr/bin/env bash
# Installs the Debian packages mulligan uses when they are missing and we may install them:
# bubblewrap (the sandbox's namespaces and allow-list view of the host). Without it `mulligan
# run` refuses to start unless weaker isolation is allowed explicitly (--allow-weak-isolation).
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (sandbox namespaces) with apt-get"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
    || echo "warning: could not install bubblewrap; runs will need --allow-weak-isolation" >&2
else
  echo "note: bubblewrap (bwrap) not found and not root; install it with your package manager" >&2
  echo "      (runs refuse weaker isolation unless given --allow-weak-isolation)." >&2
fi
