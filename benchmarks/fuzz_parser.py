"""Fixed-budget fuzz run of the action parser (and ``answer_key``): issue 12, "Fuzzing".

Draws adversarial replies from the test suite's hypothesis strategies (``tests/fuzz_strategies``)
for ``--seconds`` seconds and checks on each: no exception, the call under ``--bound-ms``, and
the parser's invariants (the kind matches the content, the reply is the restored text). Prints
a JSON summary (examples, slowest call, findings) and exits 1 if anything broke.

    python benchmarks/fuzz_parser.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis.errors import NonInteractiveExampleWarning

from fuzz_strategies import ADVERSARIAL_TEXT
from mulligan.actions import answer_key, parse_action, restore_stop


def _problems(text: str, bound_s: float) -> tuple[list[str], float]:
    """What is wrong with parsing ``text`` (empty when nothing), and the time it took."""
    start = time.perf_counter()
    try:
        action = parse_action(text)
        key = answer_key(action.content or text)
    except Exception as exc:  # a finding, reported below
        return [f"raised {exc.__class__.__name__}: {exc}"], time.perf_counter() - start
    elapsed = time.perf_counter() - start
    problems = []
    if elapsed > bound_s:
        problems.append(f"took {elapsed * 1e3:.1f} ms")
    if (action.kind == "invalid") != (action.content == ""):
        problems.append(f"kind {action.kind} with content {action.content[:40]!r}")
    if action.reply != restore_stop(text):
        problems.append("reply is not the restored text")
    if not isinstance(key, str):
        problems.append("answer_key returned a non-string")
    return problems, elapsed


def fuzz(seconds: float, bound_ms: float) -> dict[str, Any]:
    """Run for ``seconds``; returns the summary."""
    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    deadline = time.monotonic() + seconds
    examples, slowest, longest = 0, 0.0, 0
    findings: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        text = ADVERSARIAL_TEXT.example()
        problems, elapsed = _problems(text, bound_ms / 1e3)
        examples += 1
        slowest = max(slowest, elapsed)
        longest = max(longest, len(text))
        if problems and len(findings) < 20:
            findings.append({"text": text[:200], "chars": len(text), "problems": problems})
    return {
        "seconds": seconds,
        "examples": examples,
        "longest_input_chars": longest,
        "slowest_call_ms": round(slowest * 1e3, 3),
        "bound_ms": bound_ms,
        "findings": findings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzzing budget")
    parser.add_argument("--bound-ms", type=float, default=100.0, help="slowest call allowed")
    args = parser.parse_args()
    summary = fuzz(args.seconds, args.bound_ms)
    print(json.dumps(summary, indent=2))
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
