"""Compare feedback settings on one seeded MINT sample with local models (issue: feedback as an
audited variable). Each setting is its own run directory; the script prints SR@1..k, the leak
rate of each feedback source and the wall time per setting, then writes one HTML comparison.

    .venv/bin/python benchmarks/feedback_settings.py --data-dir ../shared/data/mint \\
        --per-suite 9 --out runs/feedback-cmp [--settings none,unary,binary,llm,llm:no-reference]

Code-only settings (``tests``, ``tests+llm``) run on humaneval and mbpp only. Runs resume, so an
interrupted comparison continues where it stopped. Not run by CI: it takes hours on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.feedback import feedback_needs, leak_rate
from mulligan.metrics import success_tables
from mulligan.report import write_html_report
from mulligan.store import RunStore
from mulligan.tasks import MINT_SUITES

CODE_SUITES = ("humaneval", "mbpp")
CODE_ONLY = ("tests", "tests+llm", "tests+llm:no-reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/feedback-cmp"))
    parser.add_argument("--per-suite", type=int, default=9, help="tasks per MINT suite (7 suites)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--model", default="local/qwen2.5-coder-0.5b")
    parser.add_argument("--feedback-model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument(
        "--settings",
        default="none,unary,binary,llm,llm:no-reference,tests,tests+llm",
        help="comma-separated feedback specs",
    )
    args = parser.parse_args()

    rows: list[tuple[str, dict[str, object], dict[str, float], float]] = []
    dirs: list[Path] = []
    for spec in args.settings.split(","):
        suites = CODE_SUITES if spec in CODE_ONLY else MINT_SUITES
        needs_model = "feedback_model" in feedback_needs(spec)
        config = RunConfig(
            suite="mint",
            tasks=tuple(suites),
            data_dir=args.data_dir,
            limit=args.per_suite,
            sample="random",
            seed=args.seed,
            model=args.model,
            turns=args.turns,
            proposals=2,
            feedback=spec,
            feedback_model=args.feedback_model if needs_model else None,
            concurrency=1,  # llama.cpp reuses the previous call's prefix: keep episodes whole
            out=args.out / spec.replace(":", "_").replace("+", "_plus_"),
        )
        started = time.perf_counter()
        summary = asyncio.run(execute_run(config, resume=True))
        wall = time.perf_counter() - started
        with RunStore.open_existing(config.out) as store:
            tables = success_tables(store.episodes(with_events=False))
            leaks = leak_rate(store.episodes())
        rows.append((spec, tables["overall"], leaks, wall))  # type: ignore[arg-type]
        dirs.append(config.out)
        print(f"{spec}: {summary.finished} finished, {summary.failed} failed in {wall:.0f}s")

    print(
        "\n| feedback | episodes | "
        + " | ".join(f"SR@{k}" for k in range(1, args.turns + 1))
        + " | leak rate by source | wall s |"
    )
    print("|---" * (args.turns + 4) + "|")
    for spec, overall, leaks, wall in rows:
        sr = overall["sr_at_k"]  # type: ignore[index]
        cells = " | ".join(f"{100 * sr[str(k)]:.1f}%" for k in range(1, args.turns + 1))
        leak_text = ", ".join(f"{s}: {100 * r:.0f}%" for s, r in leaks.items()) or "-"
        print(f"| {spec} | {overall['episodes']} | {cells} | {leak_text} | {wall:.0f} |")
    report = write_html_report(dirs, args.out / "comparison.html")
    print(f"\nHTML comparison: {report}")


if __name__ == "__main__":
    main()
