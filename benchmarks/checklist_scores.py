"""Checklist scores per turn on RefineBench's sample, and how far the judge's item verdicts can be
trusted (issue 15). Runs a policy under ``--stop never`` on RefineBench problems (each with its
checklist) with a judge that scores every proposal item by item, then asks

- a **second judge** to score the same proposals: the share of items on which the two agree;
- the first judge to score each problem's **reference answer**: the share of items it finds
  satisfied there (a judge that reads the checklist soundly should mark most of them);
- the first judge to score **another problem's worked answer** against each checklist (a
  control: fluent but beside the point, so a sound judge should mark few items; a lenient one
  marks them all).

``--phases`` picks which of run, second, reference and control to do (the run resumes, so the
later phases can follow on a finished run).

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
    episodes: list[Episode], tasks: dict[str, Task], second: LLMJudge
) -> tuple[int, int]:
    """(items both judges marked, items they agree on) over every scored proposal."""
    both = agree = 0
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
    return both, agree


async def marks_on(judge: LLMJudge, pairs: list[tuple[Task, str]]) -> tuple[int, int]:
    """(items marked, items marked satisfied) when ``judge`` scores each answer against its
    task's checklist."""
    marked = satisfied = 0
    for task, answer in pairs:
        marks = await judge.score_checklist(task, answer, 1, 0, _drop)
        marked += sum(mark is not None for mark in marks)
        satisfied += sum(bool(mark) for mark in marks)
    return marked, satisfied


def worked_answer(task: Task) -> str:
    """RefineBench's full reference answer (the worked solution, not only its final value)."""
    return "\n\n".join(
        str(part) for part in task.metadata.get("reference_answer", [task.reference])
    )


def control_pairs(tasks: list[Task]) -> list[tuple[Task, str]]:
    """Each task with the worked answer of the next one (cyclically): a fluent answer to another
    problem, whose items a sound judge should mostly find unsatisfied (leniency control)."""
    return [(task, worked_answer(tasks[(i + 1) % len(tasks)])) for i, task in enumerate(tasks)]


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
    parser.add_argument(
        "--phases",
        default="run,second,reference,control",
        help="comma-separated: run (the episodes; resumable), second (the second judge on "
        "every scored proposal), reference (the judge on each reference answer), control (the "
        "judge on another problem's worked answer: its leniency)",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))

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
    if "run" in phases:
        outcome = asyncio.run(execute_run(config, resume=True, tasks=tasks))
        print(f"{outcome.finished} finished, {outcome.failed} failed, in {outcome.wall_s:.0f}s")
    with RunStore(args.out, read_only=True) as store:
        episodes = [e for e in store.episodes() if e.status == "finished"]
    report_turns(episodes, args.turns)
    first = LLMJudge(get_model(args.judge_model, args=threads))
    if "second" in phases:
        second = LLMJudge(get_model(args.second_judge, args=threads))
        both, agree = asyncio.run(second_opinions(episodes, {t.id: t for t in tasks}, second))
        print(f"judges agree on {agree} of {both} items both marked ({_pct(agree, both)})")
    if "reference" in phases:
        marked, yes = asyncio.run(marks_on(first, [(t, t.reference) for t in tasks]))
        print(f"reference answers: the judge marked {yes} of {marked} items satisfied "
              f"({_pct(yes, marked)})")  # fmt: skip
    if "control" in phases:
        marked, yes = asyncio.run(marks_on(first, control_pairs(tasks)))
        print(f"another problem's worked answer (control): the judge marked {yes} of {marked} "
              f"items satisfied ({_pct(yes, marked)})")  # fmt: skip


def report_turns(episodes: list[Episode], turns: int) -> None:
    """The mean checklist score at each turn, with its interval."""
    for turn in range(1, turns + 1):
        estimate = checklist_at_turn(episodes, turn)
        if estimate.value is not None:
            print(
                f"checklist score at turn {turn}: {100 * estimate.value:.1f}% "
                f"[{100 * (estimate.ci_low or 0):.1f}-{100 * (estimate.ci_high or 0):.1f}] "
                f"over {estimate.episodes} episodes"
            )


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / max(whole, 1):.1f}%"


if __name__ == "__main__":
    main()
