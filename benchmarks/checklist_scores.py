"""Checklist scores per turn on RefineBench's sample, and how far the judge's item verdicts can be
trusted (issue 15). Runs a policy under ``--stop never`` on RefineBench problems (each with its
checklist) with a judge that scores every proposal item by item, then asks

- a **second judge** to score the same proposals: the share of items on which the two agree;
- the first judge to score each problem's **reference answer**: the share of items it finds
  satisfied there (a judge that reads the checklist soundly should mark most of them).

    .venv/bin/python benchmarks/checklist_scores.py --data-dir ../shared/data \\
        --limit 10 --turns 3 --model local/qwen2.5-coder-0.5b \\
        --judge-model local/qwen2.5-coder-1.5b --second-judge local/smollm2-135m --out runs/rb

Answers are whole replies (``--answer-format reply``, RefineBench's protocol) unless
``--answer-format tagged`` asks for MINT's ``<solution>`` tags.

The tasks are the registered ``refinebench`` suite's (``Task.checklist`` holds each checklist), a
seeded sample of ``--limit`` per exam type. The checker is exact match against the reference
(RefineBench's answers are long: the checklist score is the measure). Every local model runs on
``--threads`` threads. Not run by CI: minutes per task on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mulligan.config import RunConfig
from mulligan.engine import execute_run
from mulligan.events import Episode, VerdictEvent
from mulligan.judge import LLMJudge
from mulligan.metrics.refinement import checklist_at_turn
from mulligan.models import get_model
from mulligan.store import RunStore
from mulligan.tasks import Task, load_tasks


async def second_opinions(
    episodes: list[Episode], tasks: dict[str, Task], first: LLMJudge, second: LLMJudge
) -> tuple[int, int, int, int]:
    """(items both judges marked, items they agree on, reference items marked, reference items
    the first judge found satisfied)."""
    both = agree = ref_marked = ref_yes = 0
    for episode in episodes:
        task = tasks[episode.key.task_id]
        for verdict in (e for e in episode.events if isinstance(e, VerdictEvent)):
            if not verdict.checklist:
                continue
            marks = await second.score_checklist(task, verdict.answer, verdict.turn, 0, _drop)
            for a, b in zip(verdict.checklist, marks, strict=True):
                if a is not None and b is not None:
                    both += 1
                    agree += a == b
        reference = await first.score_checklist(task, task.reference, 1, 0, _drop)
        ref_marked += sum(mark is not None for mark in reference)
        ref_yes += sum(bool(mark) for mark in reference)
    return both, agree, ref_marked, ref_yes


def _drop(_event: object) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=10, help="problems per exam type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--model", default="local/qwen2.5-coder-0.5b")
    parser.add_argument("--judge-model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--second-judge", default="local/smollm2-135m")
    parser.add_argument("--feedback", default="none")
    parser.add_argument(
        "--answer-format",
        default="reply",
        choices=("reply", "tagged"),
        help="reply (default): the whole reply is the answer, as RefineBench asks; tagged: "
        "MINT's <solution> tags (small models rarely use them on these problems)",
    )
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("runs/refinebench-checklist"))
    args = parser.parse_args()

    tasks = load_tasks(
        "refinebench", data_dir=args.data_dir, limit=args.limit, seed=args.seed, sample="random"
    )
    threads = {"n_threads": args.threads}
    config = RunConfig.model_validate(
        dict(
            suite="refinebench",
            data_dir=args.data_dir,
            limit=args.limit,
            seed=args.seed,
            sample="random",
            model=args.model,
            model_args=threads if args.model.startswith("local/") else {},
            turns=args.turns,
            proposals=args.turns,
            stop="never",
            answer_format=args.answer_format,
            max_tokens=args.max_tokens,
            feedback=args.feedback,
            feedback_model=args.judge_model if args.feedback != "none" else None,
            feedback_model_args=threads if args.feedback != "none" else {},
            judge_model=args.judge_model,
            judge_model_args=threads,
            out=args.out,
            concurrency=1,
        )
    )
    outcome = asyncio.run(execute_run(config, resume=True, tasks=tasks))
    print(f"{outcome.finished} finished, {outcome.failed} failed, in {outcome.wall_s:.0f}s")
    with RunStore(args.out, read_only=True) as store:
        episodes = [e for e in store.episodes() if e.status == "finished"]
    for turn in range(1, args.turns + 1):
        estimate = checklist_at_turn(episodes, turn)
        if estimate.value is not None:
            print(
                f"checklist score at turn {turn}: {100 * estimate.value:.1f}% "
                f"[{100 * (estimate.ci_low or 0):.1f}-{100 * (estimate.ci_high or 0):.1f}] "
                f"over {estimate.episodes} episodes"
            )
    first = LLMJudge(get_model(args.judge_model, args=threads))
    second = LLMJudge(get_model(args.second_judge, args=threads))
    both, agree, ref_marked, ref_yes = asyncio.run(
        second_opinions(episodes, {t.id: t for t in tasks}, first, second)
    )
    print(
        f"judges agree on {agree} of {both} items both marked ({100 * agree / max(both, 1):.1f}%)"
    )
    print(
        f"reference answers: the judge marked {ref_yes} of {ref_marked} items satisfied "
        f"({100 * ref_yes / max(ref_marked, 1):.1f}%)"
    )


if __name__ == "__main__":
    main()
