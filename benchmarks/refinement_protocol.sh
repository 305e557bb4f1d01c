#!/usr/bin/env bash
# The refinement protocol's evidence (issue 15): regression and flip rates under `--stop never`
# with `self` and with `challenge` feedback, and the simulated user's confusion matrix against the
# checker. Full size by default; SIZE=small runs the bounded version quoted in benchmarks/README.md.
#
#   benchmarks/refinement_protocol.sh [OUT_DIR]          (default runs/refinement)
#   SIZE=small LIMIT=50 TIMEOUT=900 benchmarks/refinement_protocol.sh /tmp/ref
#
# Needs MINT's data (`mulligan data pull mint`) and the local models (`make demo`, and
# `scripts/install_models.sh .venv/bin/python all` for the 1.5B feedback model). Each run stores
# episodes as they finish, so a TIMEOUT-cut run still reports what it did (and `--resume` goes on).
set -euo pipefail

OUT="${1:-runs/refinement}"
MULLIGAN="${MULLIGAN:-.venv/bin/mulligan}"
POLICY="${POLICY:-local/qwen2.5-coder-0.5b}"
FEEDBACK_MODEL="${FEEDBACK_MODEL:-local/qwen2.5-coder-1.5b}"
JUDGE_MODEL="${JUDGE_MODEL:-local/qwen2.5-coder-1.5b}"
SUITE_TASKS="${SUITE_TASKS:-mmlu,gsm8k}"
LIMIT="${LIMIT:-100}"
TURNS="${TURNS:-5}"
TIMEOUT="${TIMEOUT:-0}"  # seconds per run, 0 = none

common=(--suite mint --tasks "$SUITE_TASKS" --limit "$LIMIT" --turns "$TURNS" --proposals "$TURNS"
        --stop never --model "$POLICY" --concurrency 1 --no-progress)
if [[ "${SIZE:-full}" == small ]]; then
    common=(--suite mint --tasks mmlu --limit "$LIMIT" --turns 3 --proposals 3 --max-tokens 128
            --stop never --model "$POLICY" --concurrency 1 --no-progress)
fi

run() {
    local name="$1"; shift
    if [[ "$TIMEOUT" != 0 ]]; then
        timeout "$TIMEOUT" "$MULLIGAN" run "${common[@]}" "$@" --out "$OUT/$name" || true
    else
        "$MULLIGAN" run "${common[@]}" "$@" --out "$OUT/$name" || true
    fi
}

run self --feedback self
run challenge --feedback challenge
run challenge-right --feedback challenge:right
# the simulated user (textual, sees the reference, as MINT's) read by the judge
run llm --feedback llm --feedback-model "$FEEDBACK_MODEL" \
    --judge-model "$JUDGE_MODEL" --judge-reads-feedback

for name in self challenge challenge-right llm; do
    "$MULLIGAN" report "$OUT/$name"
done
