"""Re-judging MINT's own logged runs with mulligan's checkers, to measure agreement.

MINT logs one ``results.jsonl`` per suite: every line an episode, its ``state.history`` the chat
(the first user message is the prompt, whose in-context example has a ``<solution>`` of its
own, so it is skipped). Each assistant message containing ``<solution>`` was a proposal; MINT
joined the stripped contents of all closed ``<solution>...</solution>`` tags with newlines and
judged that text. MINT's verdict on a proposal is read from the log:

- the next user message says "Your answer is wrong." -> judged wrong;
- the proposal is the episode's last message -> judged right iff ``state.success``;
- a proposal with no closed tag (or only blanks inside) was never judged, and is skipped.

:func:`judge_mint_logs` re-judges every judged proposal with the task's registered checker
(MINT mode) and reports agreement per suite, per proposal and per episode.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mulligan.tasks.base import Checker, CodeRunner, Task
from mulligan.tasks.checkers import get_checker
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint import MINT_SUITES, load_mint_suite

WRONG_ANSWER_MARK = "Your answer is wrong."
_SOLUTION = re.compile(r"<solution>(.*?)</solution>", re.DOTALL)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore")
    history: list[_Message]
    success: bool
    terminate_reason: str | None = None


class _LoggedTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    task_id: int | str
    prompt: str
    reference: Any = None


class _Episode(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: _State
    task: _LoggedTask


class LoggedProposal(BaseModel):
    """One proposal MINT judged, with MINT's verdict."""

    model_config = ConfigDict(frozen=True)

    suite: str
    task_id: str
    message_index: int
    answer: str
    mint_correct: bool


class ProposalVerdict(LoggedProposal):
    """A logged proposal re-judged by mulligan."""

    our_correct: bool
    detail: str

    @property
    def agrees(self) -> bool:
        """Whether mulligan's verdict equals MINT's."""
        return self.our_correct == self.mint_correct

    @property
    def key(self) -> tuple[str, str, int]:
        """(suite, task id, index of the assistant message in ``state.history``)."""
        return (self.suite, self.task_id, self.message_index)


class SuiteAgreement(BaseModel):
    """Agreement for one suite."""

    suite: str
    proposals: int
    proposals_agreeing: int
    episodes: int
    episodes_agreeing: int
    prompts_matching: int

    @property
    def proposal_rate(self) -> float:
        """Share of proposals on which mulligan and MINT agree."""
        return self.proposals_agreeing / self.proposals if self.proposals else 1.0


class ConformanceReport(BaseModel):
    """Per-suite agreement and every re-judged proposal."""

    log_dir: str
    suites: list[SuiteAgreement]
    verdicts: list[ProposalVerdict]

    @property
    def disagreements(self) -> list[ProposalVerdict]:
        """Proposals judged differently by mulligan and MINT."""
        return [v for v in self.verdicts if not v.agrees]

    @property
    def agreement(self) -> float:
        """Share of all proposals on which mulligan and MINT agree."""
        total = sum(s.proposals for s in self.suites)
        agreeing = sum(s.proposals_agreeing for s in self.suites)
        return agreeing / total if total else 1.0

    def table(self) -> str:
        """The per-suite agreement as a plain-text table."""
        return format_table(self)


def mint_solution_text(message: str) -> str | None:
    """The answer MINT extracted from a reply, or None when MINT found none (invalid action)."""
    parts = _SOLUTION.findall("\n" + message + "\n")
    answer = "\n".join(part.strip() for part in parts)
    return answer or None


def logged_proposals(suite: str, episode: dict[str, Any]) -> list[LoggedProposal]:
    """The judged proposals of one logged episode (a line of MINT's ``results.jsonl``)."""
    parsed = _Episode.model_validate(episode)
    history = parsed.state.history
    proposals: list[LoggedProposal] = []
    for index in range(1, len(history)):
        message = history[index]
        if message.role != "assistant" or "<solution>" not in message.content:
            continue
        answer = mint_solution_text(message.content)
        if answer is None:
            continue
        if index + 1 < len(history):
            following = history[index + 1].content
            # A right answer ends the episode, so a logged reply after a proposal means MINT
            # judged it wrong (or crashed judging it, which it also counted as wrong).
            mint_correct = False
            if WRONG_ANSWER_MARK not in following and "Traceback" not in following:
                continue  # not a verdict MINT logged; cannot compare
        elif parsed.state.success:
            mint_correct = True
        elif parsed.state.terminate_reason in ("max_propose_steps", "max_steps"):
            mint_correct = False
        else:
            continue  # the episode ended on an error, not on a verdict
        proposals.append(
            LoggedProposal(
                suite=suite,
                task_id=str(parsed.task.task_id),
                message_index=index,
                answer=answer,
                mint_correct=mint_correct,
            )
        )
    return proposals


def find_results_file(log_dir: Path, suite: str) -> Path | None:
    """``<log_dir>/<type>/<suite>/results.jsonl``, or None."""
    matches = sorted(log_dir.glob(f"*/{suite}/results.jsonl"))
    return matches[0] if matches else None


def _read_episodes(path: Path) -> list[dict[str, Any]]:
    episodes: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            episode = json.loads(line)
            _Episode.model_validate(episode)
        except (json.JSONDecodeError, ValidationError) as exc:
            raise TaskDataError(f"{path}, line {number}: not a MINT episode ({exc})") from exc
        episodes.append(episode)
    return episodes


async def judge_mint_logs(
    log_dir: Path,
    data_dir: Path,
    runner: CodeRunner,
    *,
    suites: Iterable[str] = MINT_SUITES,
    concurrency: int = 4,
    code_timeout_s: float | None = None,
) -> ConformanceReport:
    """Re-judge every proposal logged under ``log_dir`` (e.g. ``.../max5_p2+tool+cd``).

    Args:
        log_dir: a MINT output directory holding ``<type>/<suite>/results.jsonl``.
        data_dir: MINT's task data (see :func:`~mulligan.tasks.mint.find_suite_file`).
        runner: runs code proposals (sandbox) for humaneval and mbpp.
        suites: the suites to re-judge; those without a results file are skipped.
        concurrency: at most this many checks run at once (code checks start processes).
        code_timeout_s: run code checks with this time limit instead of MINT's 10 s (a loaded
            test machine can make a slow but correct program miss 10 s).

    Returns the report; the tasks are mulligan's own, loaded with MINT-mode checkers.
    """
    limit = asyncio.Semaphore(concurrency)

    def checker_for(task: Task) -> Checker:
        checker = get_checker(task.checker)
        if code_timeout_s is not None and isinstance(checker, PythonTestsChecker):
            return PythonTestsChecker(checker.name, timeout_s=code_timeout_s)
        return checker

    async def judge(task: Task, proposal: LoggedProposal) -> ProposalVerdict:
        async with limit:
            result = await checker_for(task).check(proposal.answer, task, runner)
        return ProposalVerdict(
            **proposal.model_dump(), our_correct=result.correct, detail=result.detail
        )

    rows: list[SuiteAgreement] = []
    verdicts: list[ProposalVerdict] = []
    for suite in suites:
        path = find_results_file(log_dir, suite)
        if path is None:
            continue
        tasks = {t.id: t for t in load_mint_suite(suite, data_dir, checkers="mint")}
        episodes = _read_episodes(path)
        jobs: list[tuple[Task, LoggedProposal]] = []
        prompts_matching = 0
        per_episode: list[tuple[bool, list[LoggedProposal]]] = []
        for episode in episodes:
            logged = _Episode.model_validate(episode)
            task_id = str(logged.task.task_id)
            if task_id not in tasks:
                raise TaskDataError(f"{path}: task {task_id} is not in mulligan's {suite} data")
            task = tasks[task_id]
            prompts_matching += int(logged.task.prompt == task.prompt)
            proposals = logged_proposals(suite, episode)
            per_episode.append((logged.state.success, proposals))
            jobs.extend((task, p) for p in proposals)
        judged = await asyncio.gather(*(judge(task, p) for task, p in jobs))
        by_key = {v.key: v for v in judged}
        episodes_agreeing = sum(
            int(
                success
                == any(by_key[(p.suite, p.task_id, p.message_index)].our_correct for p in proposals)
            )
            for success, proposals in per_episode
        )
        rows.append(
            SuiteAgreement(
                suite=suite,
                proposals=len(judged),
                proposals_agreeing=sum(int(v.agrees) for v in judged),
                episodes=len(per_episode),
                episodes_agreeing=episodes_agreeing,
                prompts_matching=prompts_matching,
            )
        )
        verdicts.extend(judged)
    return ConformanceReport(log_dir=str(log_dir), suites=rows, verdicts=verdicts)


def format_table(report: ConformanceReport) -> str:
    """Per-suite agreement: proposals, episodes and prompts, then an overall line."""
    header = f"{'suite':<10} {'proposals':>9} {'agree':>6} {'rate':>7}   {'episodes':>8} {'agree':>6} {'rate':>7}   {'prompts =':>9}"
    lines = [header, "-" * len(header)]

    def row(name: str, p: int, pa: int, e: int, ea: int, pm: int) -> str:
        prate = 100 * pa / p if p else 100.0
        erate = 100 * ea / e if e else 100.0
        return (
            f"{name:<10} {p:>9} {pa:>6} {prate:>6.1f}%   {e:>8} {ea:>6} {erate:>6.1f}%   "
            f"{pm:>4}/{e:<4}"
        )

    for s in report.suites:
        lines.append(
            row(
                s.suite,
                s.proposals,
                s.proposals_agreeing,
                s.episodes,
                s.episodes_agreeing,
                s.prompts_matching,
            )
        )
    lines.append("-" * len(header))
    lines.append(
        row(
            "overall",
            sum(s.proposals for s in report.suites),
            sum(s.proposals_agreeing for s in report.suites),
            sum(s.episodes for s in report.suites),
            sum(s.episodes_agreeing for s in report.suites),
            sum(s.prompts_matching for s in report.suites),
        )
    )
    return "\n".join(lines)


async def _main(log_dir: Path, data_dir: Path) -> ConformanceReport:
    from mulligan.sandbox import SandboxPool

    async with SandboxPool(size=4) as pool:
        return await judge_mint_logs(log_dir, data_dir, pool)


def main(argv: list[str] | None = None) -> None:
    """``python -m mulligan.tasks.conformance LOG_DIR DATA_DIR``: print the agreement table and
    every disagreement (LOG_DIR e.g. ``.../F=None/max5_p2+tool+cd``)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "log_dir", type=Path, help="MINT output dir with <type>/<suite>/results.jsonl"
    )
    parser.add_argument("data_dir", type=Path, help="MINT task data (holds processed/<suite>)")
    args = parser.parse_args(argv)
    report = asyncio.run(_main(args.log_dir, args.data_dir))
    print(report.table())
    for v in report.disagreements:
        print(
            f"{v.suite}/{v.task_id} message {v.message_index}: MINT "
            f"{'right' if v.mint_correct else 'wrong'}, mulligan "
            f"{'right' if v.our_correct else 'wrong'}: {v.answer[:80]!r} ({v.detail[:120]})"
        )


if __name__ == "__main__":
    main()
