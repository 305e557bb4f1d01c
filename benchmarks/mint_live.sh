#!/usr/bin/env bash
# All of MINT live (issue 16): its seven text tasks and ALFWorld's 134 games run through the real
# engine, sandbox, checkers and game servers, then reported as one micro-average (`--pool`), the
# way MINT's leaderboard counts its 586 tasks. One run takes one group, hence two runs.
#
#   benchmarks/mint_live.sh [OUT_DIR]                          (default runs/mint-live)
#   MODEL=local/qwen2.5-coder-0.5b LIMIT=2 benchmarks/mint_live.sh /tmp/q05   # a seeded sample
#
# MODEL defaults to scripted/reference (every task must be solved). LIMIT=N takes N samples of
# each task drawn with SEED (ALFWorld's six game types are its tasks). Needs MINT's data
# (`mulligan data pull mint`) and the `alfworld` extra. Runs resume where a killed one stopped.
set -euo pipefail

OUT="${1:-runs/mint-live}"
MULLIGAN="${MULLIGAN:-.venv/bin/mulligan}"
MODEL="${MODEL:-scripted/reference}"
DATA_DIR="${DATA_DIR:-../shared/data/mint}"
CONCURRENCY="${CONCURRENCY:-2}"
SEED="${SEED:-0}"
common=(--data-dir "$DATA_DIR" --model "$MODEL" --concurrency "$CONCURRENCY" --no-progress)
if [[ -n "${LIMIT:-}" ]]; then
    common+=(--limit "$LIMIT" --sample random --seed "$SEED")
fi
# shellcheck disable=SC2206  # EXTRA is a list of flags, split on purpose
common+=(${EXTRA:-})

for group in mint alfworld; do
    if [[ -f "$OUT/$group/mulligan.sqlite" ]]; then
        "$MULLIGAN" run --tasks "$group" "${common[@]}" --out "$OUT/$group" --resume || true
    else
        "$MULLIGAN" run --tasks "$group" "${common[@]}" --out "$OUT/$group" || true
    fi
done
"$MULLIGAN" report "$OUT/mint" "$OUT/alfworld" --pool
"$MULLIGAN" report "$OUT/mint" "$OUT/alfworld" --pool --format json > "$OUT/pooled.json"
