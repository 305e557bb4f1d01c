"""Compare feedback settings on one seeded MINT sample with local models (issue: feedback as an
audited variable). Each setting is its own run directory; the script prints SR@1..k, the leak
rate of each feedback source and the episode time per setting, then writes one HTML comparison.

    .venv/bin/python benchmarks/feedback_settings.py --data-dir ../shared/data/mint \\
        --per-suite 9 --out runs/feedback-cmp [--settings none,unary,binary,llm,llm:no-reference]

Every setting runs the same tasks: ``--per-suite`` tasks drawn per MINT suite with the seed
(code-only settings, ``tests`` and ``tests+llm``, take the humaneval and mbpp ones). Episodes run
round-robin over the suites in sampling order, so a setting stopped early has finished a
balanced prefix: exactly the sample a smaller ``--per-suite`` would draw. Runs resume; the
tables are computed on the tasks that every compared setting has finished, so settings stopped
at different points are still compared on the same tasks. Not run by CI: hours on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from mulligan.config import (
    ExecutionConfig,
    FeedbackConfig,
    PolicyConfig,
    RunConfig,
    TaskSelection,
)
from mulligan.engine import execute_run
from mulligan.episode import EpisodeLimits
from mulligan.events import Episode, FeedbackEvent, ModelCallEvent
from mulligan.feedback import feedback_needs, find_leaks
from mulligan.metrics import compare_runs, leak_counts, sr_at_k_curve
from mulligan.report import write_html_report
from mulligan.store import RunStore
from mulligan.tasks import MINT_SUITES, Task, load_tasks

CODE_SUITES = ("humaneval", "mbpp")
CODE_ONLY = ("tests", "tests+llm", "tests+llm:no-reference")


def round_robin(data_dir: Path, per_suite: int, seed: int) -> list[Task]:
    """The sample, ordered: the first draw of every suite, then the second, and so on."""
    ordered: list[Task] = []
    seen: set[tuple[str, str]] = set()
    for limit in range(1, per_suite + 1):
        for task in load_tasks(
            "mint", list(MINT_SUITES), data_dir, limit=limit, seed=seed, sample="random"
        ):
            if (task.suite, task.id) not in seen:
                seen.add((task.suite, task.id))
                ordered.append(task)
    return ordered


def out_dir(root: Path, spec: str) -> Path:
    return root / spec.replace(":", "_").replace("+", "_plus_")


def finished(path: Path) -> list[Episode]:
    with RunStore.open_existing(path) as store:
        return [e for e in store.episodes() if e.status == "finished"]


def versus(episodes: list[Episode], baseline: list[Episode] | None, turns: int) -> str:
    """SR@k minus the baseline's on the same tasks, its 95% CI and McNemar's exact p."""
    if baseline is None or not episodes:
        return "-"
    c = compare_runs(episodes, baseline, k=turns)
    ci = (
        f" [{100 * c.delta.ci_low:+.1f}, {100 * c.delta.ci_high:+.1f}]"
        if c.delta.ci_low is not None and c.delta.ci_high is not None
        else ""
    )
    p = f", p={c.test.p_value:.2g}" if c.test is not None else ""
    return f"{100 * (c.delta.value or 0.0):+.1f}{ci}{p}"


def rechecked(episodes: list[Episode], tasks: dict[tuple[str, str], Task]) -> str:
    """Leaks of model-written feedback found by *today's* detector in the stored texts (the
    flags on the events are the detector's verdict when the run was made)."""
    checked = leaked = 0
    for episode in episodes:
        task = tasks[(episode.key.suite, episode.key.task_id)]
        written: list[str] = []
        for event in episode.events:
            if isinstance(event, ModelCallEvent) and event.role == "policy":
                written.append(event.output)
            elif isinstance(event, FeedbackEvent) and event.source.startswith("model:"):
                checked += 1
                leaked += find_leaks(event.content, task, known_code=written).leaked
    return f"{leaked}/{checked} ({100 * leaked / checked:.0f}%)" if checked else "-"


def table(
    title: str,
    rows: list[tuple[str, list[Episode]]],
    turns: int,
    tasks: dict[tuple[str, str], Task],
) -> None:
    print(f"\n{title}\n")
    baseline = dict(rows).get("none")
    print(
        "| feedback | episodes | "
        + " | ".join(f"SR@{k}" for k in range(1, turns + 1))
        + f" | SR@{turns} vs none (pts, 95% CI, McNemar) | feedback messages"
        + " | leaked (model sources) | re-checked | solves after a leak"
        + " | policy calls (from cache) | wall s |"
    )
    print("|---" * (turns + 9) + "|")
    for spec, episodes in rows:
        sr = sr_at_k_curve(episodes, turns)
        cells = " | ".join(f"{100 * sr[k]:.1f}%" for k in range(1, turns + 1))
        events = [e for episode in episodes for e in episode.events]
        messages = sum(isinstance(e, FeedbackEvent) and e.kind != "none" for e in events)
        model_counts = [c for src, c in leak_counts(episodes).items() if src.startswith("model:")]
        leaks = ", ".join(f"{c.leaked}/{c.events} ({100 * c.rate:.0f}%)" for c in model_counts)
        solved = sum(e.success for e in episodes)
        after_leak = ", ".join(f"{c.solved_after_leak} of {solved}" for c in model_counts)
        calls = [e for e in events if isinstance(e, ModelCallEvent) and e.role == "policy"]
        cached = sum(bool(e.cached) for e in calls)
        wall = sum(
            (e.finished_at - e.started_at).total_seconds() for e in episodes if e.finished_at
        )
        delta = "-" if spec == "none" else versus(episodes, baseline, turns)
        print(
            f"| {spec} | {len(episodes)} | {cells} | {delta} | {messages} | {leaks or '-'} "
            f"| {rechecked(episodes, tasks)} | {after_leak or '-'} | {len(calls)} ({cached}) "
            f"| {wall:.0f} |"
        )


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
        help="comma-separated feedback specs to run",
    )
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="run the settings in turn, this many more sampled tasks at a time (e.g. 7: one per "
        "suite), so settings stopped early have finished the same tasks; default: each in full",
    )
    parser.add_argument(
        "--compare",
        default=None,
        help="comma-separated specs to tabulate (default: --settings); --settings '' only reports",
    )
    args = parser.parse_args()

    sample = round_robin(args.data_dir, args.per_suite, args.seed)
    run_specs = [s for s in args.settings.split(",") if s]
    step = args.step or len(sample)
    stages = [sample[: min(end, len(sample))] for end in range(step, len(sample) + step, step)]
    for stage, spec in ((stage, spec) for stage in stages for spec in run_specs):
        tasks = [t for t in stage if t.suite in CODE_SUITES] if spec in CODE_ONLY else stage
        if not tasks:
            continue
        needs_model = "feedback_model" in feedback_needs(spec)
        config = RunConfig(
            selection=TaskSelection(
                suite="mint",
                tasks=CODE_SUITES if spec in CODE_ONLY else tuple(MINT_SUITES),
                data_dir=args.data_dir,
                limit=args.per_suite,
                sample="random",
            ),
            seed=args.seed,
            policy=PolicyConfig(model=args.model),
            episode=EpisodeLimits(max_turns=args.turns, max_proposals=2),
            feedback=FeedbackConfig(spec=spec, model=args.feedback_model if needs_model else None),
            # llama.cpp reuses the previous call's prefix: keep episodes whole
            execution=ExecutionConfig(concurrency=1, out=out_dir(args.out, spec)),
        )
        started = time.perf_counter()
        summary = asyncio.run(execute_run(config, resume=True, tasks=tasks))
        wall = time.perf_counter() - started
        print(
            f"{spec}: {summary.finished} finished, {summary.failed} failed, "
            f"{summary.skipped} already done, in {wall:.0f}s",
            flush=True,
        )

    compare = [s for s in (args.compare or args.settings).split(",") if s]
    runs = {s: finished(out_dir(args.out, s)) for s in compare if out_dir(args.out, s).exists()}
    if not runs:
        return
    for title, specs in (
        ("All suites", [s for s in runs if s not in CODE_ONLY]),
        ("Code suites (humaneval, mbpp)", list(runs)),
    ):
        if not specs:
            continue
        code_only = title.startswith("Code")
        common = set.intersection(
            *(
                {e.key.id for e in runs[s] if not code_only or e.key.suite in CODE_SUITES}
                for s in specs
            )
        )
        if not common:
            print(f"\n{title}: no task finished under every setting yet")
            continue
        table(
            f"{title}: {len(common)} tasks finished under every setting",
            [(s, [e for e in runs[s] if e.key.id in common]) for s in specs],
            args.turns,
            {(t.suite, t.id): t for t in sample},
        )
    report = write_html_report([out_dir(args.out, s) for s in runs], args.out / "comparison.html")
    print(f"\nHTML comparison: {report}")


if __name__ == "__main__":
    main()
