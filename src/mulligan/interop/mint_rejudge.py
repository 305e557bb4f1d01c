"""Re-judging MINT's own logged runs with mulligan's checkers, to measure agreement.

MINT logs one ``results.jsonl`` per suite (read with ``mulligan.tasks.mint_log``): every line an
episode, its ``state.history`` the chat (the first user message is the prompt, whose in-context
example has a ``<solution>`` of its own, so it is skipped). Each assistant message containing
``<solution>`` was a proposal; MINT judged the text :func:`~mulligan.tasks.mint_log.
mint_solution_text` extracts. MINT's verdict on a proposal is read from the log:

- the next user message says "Your answer is wrong." -> judged wrong;
- the proposal is the episode's last message -> judged right iff ``state.success``;
- a proposal with no closed tag (or only blanks inside) was never judged, and is skipped.

:func:`judge_mint_logs` re-judges every judged proposal with the task's registered checker
(MINT mode) and reports agreement per suite, per proposal and per episode;
:func:`rejudge_mint_logs` does it for every configuration under a directory, code in the
sandbox. ``mulligan import mint DIR --rejudge`` prints :func:`agreement_table`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.table import Table

from mulligan.sandbox import SandboxPool
from mulligan.tasks.base import Checker, CodeRunner, Task
from mulligan.tasks.checkers import get_checker
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint import MINT_SUITES, load_mint_suite
from mulligan.tasks.mint_log import (
    RESULTS_FILE,
    WRONG_ANSWER,
    MintLogError,
    MintResultLine,
    mint_solution_text,
    read_results,
)


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

    def summary(self) -> dict[str, Any]:
        """Agreement overall and per suite, and every disagreement (for ``--format json``)."""
        return {
            "log_dir": self.log_dir,
            "agreement": self.agreement,
            "suites": [s.model_dump() | {"proposal_rate": s.proposal_rate} for s in self.suites],
            "disagreements": [v.model_dump() for v in self.disagreements],
        }


def logged_proposals(suite: str, line: MintResultLine) -> list[LoggedProposal]:
    """The judged proposals of one logged episode (a line of MINT's ``results.jsonl``)."""
    history = line.state.history
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
            if WRONG_ANSWER not in following and "Traceback" not in following:
                continue  # not a verdict MINT logged; cannot compare
        elif line.state.success:
            mint_correct = True
        elif line.state.terminate_reason in ("max_propose_steps", "max_steps"):
            mint_correct = False
        else:
            continue  # the episode ended on an error, not on a verdict
        proposals.append(
            LoggedProposal(
                suite=suite,
                task_id=str(line.task.task_id),
                message_index=index,
                answer=answer,
                mint_correct=mint_correct,
            )
        )
    return proposals


def find_results_file(log_dir: Path, suite: str) -> Path | None:
    """``<log_dir>/<type>/<suite>/results.jsonl``, or None."""
    matches = sorted(log_dir.glob(f"*/{suite}/{RESULTS_FILE}"))
    return matches[0] if matches else None


def find_log_dirs(root: Path) -> list[Path]:
    """The configuration directories (holding ``<type>/<suite>/results.jsonl``) under ``root``.

    ``root`` may be one configuration (``.../F=None/max5_p2+tool+cd``), a model's folder or
    MINT's whole ``outputs`` folder.
    """
    return sorted({path.parents[2] for path in root.rglob(RESULTS_FILE)})


def _read_episodes(path: Path) -> list[MintResultLine]:
    try:
        return [line for _, line in read_results(path)]
    except MintLogError as exc:
        raise TaskDataError(
            f"{exc.path}, line {exc.line}: not a MINT episode ({exc.reason})"
        ) from exc


class _Judge:
    """Judges logged proposals with mulligan's checkers, at most ``concurrency`` at once."""

    def __init__(self, runner: CodeRunner, concurrency: int, code_timeout_s: float | None) -> None:
        self.runner = runner
        self.limit = asyncio.Semaphore(concurrency)
        self.code_timeout_s = code_timeout_s

    def checker_for(self, task: Task) -> Checker:
        checker = get_checker(task.checker)
        if self.code_timeout_s is not None and isinstance(checker, PythonTestsChecker):
            return PythonTestsChecker(checker.name, timeout_s=self.code_timeout_s)
        return checker

    async def __call__(self, task: Task, proposal: LoggedProposal) -> ProposalVerdict:
        async with self.limit:
            result = await self.checker_for(task).check(proposal.answer, task, self.runner)
        return ProposalVerdict(
            **proposal.model_dump(), our_correct=result.correct, detail=result.detail
        )


async def _judge_suite(
    suite: str, path: Path, data_dir: Path | None, judge: _Judge
) -> tuple[SuiteAgreement, list[ProposalVerdict]]:
    """One suite's agreement: every judged proposal of ``path`` against mulligan's tasks."""
    tasks = {t.id: t for t in load_mint_suite(suite, data_dir, checkers="mint")}
    jobs: list[tuple[Task, LoggedProposal]] = []
    prompts_matching = 0
    per_episode: list[tuple[bool, list[LoggedProposal]]] = []
    for logged in _read_episodes(path):
        task_id = str(logged.task.task_id)
        if task_id not in tasks:
            raise TaskDataError(f"{path}: task {task_id} is not in mulligan's {suite} data")
        task = tasks[task_id]
        prompts_matching += int(logged.task.prompt == task.prompt)
        proposals = logged_proposals(suite, logged)
        per_episode.append((logged.state.success, proposals))
        jobs.extend((task, p) for p in proposals)
    judged = await asyncio.gather(*(judge(task, p) for task, p in jobs))
    by_key = {v.key: v for v in judged}
    episodes_agreeing = sum(
        int(success == any(by_key[(p.suite, p.task_id, p.message_index)].our_correct for p in ps))
        for success, ps in per_episode
    )
    row = SuiteAgreement(
        suite=suite,
        proposals=len(judged),
        proposals_agreeing=sum(int(v.agrees) for v in judged),
        episodes=len(per_episode),
        episodes_agreeing=episodes_agreeing,
        prompts_matching=prompts_matching,
    )
    return row, list(judged)


async def judge_mint_logs(
    log_dir: Path,
    data_dir: Path | None,
    runner: CodeRunner,
    *,
    suites: Iterable[str] = MINT_SUITES,
    concurrency: int = 4,
    code_timeout_s: float | None = None,
) -> ConformanceReport:
    """Re-judge every proposal logged under ``log_dir`` (e.g. ``.../max5_p2+tool+cd``).

    Args:
        log_dir: a MINT output directory holding ``<type>/<suite>/results.jsonl``.
        data_dir: MINT's task data (see :func:`~mulligan.tasks.mint.find_suite_file`; None:
            the default data directory).
        runner: runs code proposals (sandbox) for humaneval and mbpp.
        suites: the suites to re-judge; those without a results file are skipped.
        concurrency: at most this many checks run at once (code checks start processes).
        code_timeout_s: run code checks with this time limit instead of MINT's 10 s (a loaded
            test machine can make a slow but correct program miss 10 s).

    Returns the report; the tasks are mulligan's own, loaded with MINT-mode checkers.

    Raises:
        TaskDataError: a line is not a MINT episode, or names a task mulligan's data lacks.
    """
    judge = _Judge(runner, concurrency, code_timeout_s)
    rows: list[SuiteAgreement] = []
    verdicts: list[ProposalVerdict] = []
    for suite in suites:
        path = find_results_file(log_dir, suite)
        if path is None:
            continue
        row, judged = await _judge_suite(suite, path, data_dir, judge)
        rows.append(row)
        verdicts.extend(judged)
    return ConformanceReport(log_dir=str(log_dir), suites=rows, verdicts=verdicts)


async def rejudge_mint_logs(
    root: Path,
    data_dir: Path | None = None,
    *,
    concurrency: int = 4,
    code_timeout_s: float | None = None,
) -> list[ConformanceReport]:
    """:func:`judge_mint_logs` for every configuration under ``root``, code in the sandbox.

    The sandbox workers start only when a code proposal needs one.
    """
    pool = SandboxPool(size=concurrency)
    try:
        return [
            await judge_mint_logs(
                log_dir, data_dir, pool, concurrency=concurrency, code_timeout_s=code_timeout_s
            )
            for log_dir in find_log_dirs(root)
        ]
    finally:
        await pool.close()


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole if whole else 100.0:.1f}%"


def agreement_table(report: ConformanceReport) -> Table:
    """Per-suite agreement (proposals, episodes, prompts equal to mulligan's), then overall."""
    table = Table(title=f"mulligan's checkers vs MINT's logged verdicts - {report.log_dir}")
    table.add_column("suite")
    for name in ("proposals", "agree", "rate", "episodes", "agree", "rate", "prompts ="):
        table.add_column(name, justify="right")

    def add(name: str, p: int, pa: int, e: int, ea: int, pm: int) -> None:
        cells = (str(p), str(pa), _percent(pa, p), str(e), str(ea), _percent(ea, e), f"{pm}/{e}")
        table.add_row(name, *cells)

    for s in report.suites:
        add(
            s.suite,
            s.proposals,
            s.proposals_agreeing,
            s.episodes,
            s.episodes_agreeing,
            s.prompts_matching,
        )
    table.add_section()
    add(
        "overall",
        sum(s.proposals for s in report.suites),
        sum(s.proposals_agreeing for s in report.suites),
        sum(s.episodes for s in report.suites),
        sum(s.episodes_agreeing for s in report.suites),
        sum(s.prompts_matching for s in report.suites),
    )
    return table


def describe_disagreement(verdict: ProposalVerdict) -> str:
    """One line: where, both verdicts, the answer and mulligan's checker detail."""
    return (
        f"{verdict.suite}/{verdict.task_id} message {verdict.message_index}: MINT "
        f"{'right' if verdict.mint_correct else 'wrong'}, mulligan "
        f"{'right' if verdict.our_correct else 'wrong'}: {verdict.answer[:80]!r} "
        f"({verdict.detail[:120]})"
    )
