"""Bad inputs a new user would try, each as a real ``python -m mulligan ...`` process: does every
one end in a clear message?

    .venv/bin/python benchmarks/bad_inputs.py --out runs/bad-inputs [--jobs 2] [--only NAME]

Every case runs in a fresh temporary directory, ``T`` in the table (its ``$MULLIGAN_CACHE_DIR`` and
``$MULLIGAN_DATA_DIR`` point into it, so no installed data or cached model is used; no API keys
or base URLs from the environment reach it), with the scripted model wherever a run needs a
model that is not the point of the case. A case is **clear** when it exits with the code it
should (2 for a user's mistake; 0 where the input is survivable, e.g. one malformed row in a
store), prints no traceback, and a user error prints exactly one ``error:`` line.

Writes ``bad_inputs.md`` (the table ``benchmarks/README.md`` quotes) and ``bad_inputs.json``
into ``--out``; exits 1 when some case is not clear. ``tests/test_cli_errors.py`` runs a few of
these cases (``test_bad_inputs_benchmark_rows``). Not run by CI.

Two cases need what a machine may not offer: the default model "not installed" is simulated by
hiding the weight packages from the lookup (a ``-c`` prelude instead of ``-m``, said in the
table) wherever they are installed; a read-only filesystem is a read-only bind mount in a private
namespace (``unshare -rm``) where the machine allows it, else ``/proc`` (never writable).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTED = ("--model", "scripted/reference")
HE = ("run", "--suite", "humaneval", "--limit", "1", "--no-progress")
# Runs the CLI with the embedded models' weight packages hidden (as after `make test`).
HIDE_WEIGHTS = (
    "import sys; import mulligan.models.weights as w; w._package_dir = lambda package: None; "
    "from mulligan.cli import app; app(prog_name='mulligan')"
)
DB_NAME = "mulligan.sqlite"


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments after ``mulligan`` (``{T}`` is the case's directory, ``{RUN}``
    a copy of a finished run in it), what to do to that directory first, and the exit code a
    clear answer has."""

    name: str
    args: tuple[str, ...]
    expect: int = 2
    prepare: Callable[[Path, Path], None] | None = None
    hide_weights: bool = False
    read_only: str | None = None  # a path under {T} to mount read-only before running
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    """What a case did."""

    name: str
    command: str
    exit_code: int
    expected: int
    message: str
    error_lines: int
    traceback: bool
    seconds: float
    clear: bool


# ------------------------------------------------------------------------------ preparations


def _copy_run(t: Path, good: Path) -> None:
    shutil.copytree(good, t / "run")


def _random_bytes(t: Path, good: Path) -> None:
    _copy_run(t, good)
    (t / "run" / DB_NAME).write_bytes(random.Random(0).randbytes(8192))


def _truncated(t: Path, good: Path) -> None:
    _copy_run(t, good)
    db = t / "run" / DB_NAME
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _malformed_row(t: Path, good: Path) -> None:
    _copy_run(t, good)
    db = sqlite3.connect(t / "run" / DB_NAME)
    (episode_id,) = db.execute("SELECT episode_id FROM episodes ORDER BY task_id").fetchone()
    db.execute("UPDATE episodes SET record='{not json' WHERE episode_id=?", (episode_id,))
    db.commit()
    db.close()


def _task_changed(t: Path, good: Path) -> None:
    """One finished episode ran on another version of its task (as after a task file was
    edited, or data pulled again with other contents): its recorded task digest differs."""
    _copy_run(t, good)
    db = sqlite3.connect(t / "run" / DB_NAME)
    (episode_id,) = db.execute("SELECT episode_id FROM episodes ORDER BY task_id").fetchone()
    db.execute(
        "UPDATE episodes SET record=json_set(record, '$.task_digest', ?) WHERE episode_id=?",
        ("0" * 32, episode_id),
    )
    db.execute("UPDATE runs SET manifest=json_set(manifest, '$.tasks_digest', 'older')")
    db.commit()
    db.close()


def _read_only_copy(t: Path, good: Path) -> None:
    shutil.copytree(good, t / "ro" / "run")


def _a_file(t: Path, good: Path) -> None:
    (t / "afile").write_text("not a directory\n")


def _writes(name: str, text: str) -> Callable[[Path, Path], None]:
    def prepare(t: Path, good: Path) -> None:
        (t / name).write_text(text)

    return prepare


def _not_mint(t: Path, good: Path) -> None:
    (t / "notmint" / "some").mkdir(parents=True)
    (t / "notmint" / "some" / "file.txt").write_text("hello\n")


def _empty_dir(t: Path, good: Path) -> None:
    (t / "empty").mkdir()


# ------------------------------------------------------------------------------ the cases


def cases() -> list[Case]:
    """Every bad input, grouped as issue 13 lists them, then more a new user would try."""
    return [*_model_cases(), *_task_cases(), *_store_cases(), *_out_cases(), *_option_cases()]


def _model_cases() -> list[Case]:
    fb = ("--feedback", "llm", *SCRIPTED)
    return [
        Case("unknown local model", (*HE, "--model", "local/nosuch")),
        Case("missing gguf file", (*HE, "--model", "local//missing.gguf")),
        Case("default model not installed", HE, hide_weights=True),
        Case("unknown local feedback model", (*HE, *fb, "--feedback-model", "local/nosuch")),
        Case("missing gguf feedback model", (*HE, *fb, "--feedback-model", "local//missing.gguf")),
        Case(
            "feedback model not installed",
            (*HE, *fb, "--feedback-model", "local/qwen2.5-coder-0.5b"),
            hide_weights=True,
        ),
        Case("unknown judge model", (*HE, *SCRIPTED, "--judge-model", "local/nosuch")),
        Case("model without provider", (*HE, "--model", "qwen")),
        Case("unknown provider", (*HE, "--model", "nosuch/model")),
        Case("unknown scripted policy", (*HE, "--model", "scripted/nosuch")),
        Case("openai-compatible without URL", (*HE, "--model", "openai-compatible/m")),
        Case("bad --base-url", (*HE, "--model", "openai-compatible/m", "--base-url", "nourl")),
        Case(
            "dead server",
            (*HE, "--model", "openai-compatible/m", "--base-url", "http://127.0.0.1:9/v1"),
        ),
        Case("openai/ without API key", (*HE, "--model", "openai/gpt-4o-mini")),
        Case("-M without =", (*HE, *SCRIPTED, "-M", "stream")),
        Case("-M unknown key", (*HE, "--model", "local/smollm2-135m", "-M", "nosuch=1")),
        Case("-M wrong type", (*HE, "--model", "local/smollm2-135m", "-M", "n_ctx=big")),
        Case("--model-config missing", (*HE, *SCRIPTED, "--model-config", "{T}/none.yaml")),
        Case(
            "--model-config bad YAML",
            (*HE, *SCRIPTED, "--model-config", "{T}/m.yaml"),
            prepare=_writes("m.yaml", "stream: [true\n"),
        ),
        Case(
            "--model-config a list",
            (*HE, *SCRIPTED, "--model-config", "{T}/m.yaml"),
            prepare=_writes("m.yaml", "- stream\n"),
        ),
    ]


def _task_cases() -> list[Case]:
    return [
        Case(
            "unknown --tasks name", ("run", "--suite", "mint", "--tasks", "gsm8k,nosuch", *SCRIPTED)
        ),
        Case("task of another group", (*HE, *SCRIPTED, "--tasks", "gsm8k")),
        Case("unknown --tasks alone", ("run", "--tasks", "nosuch", *SCRIPTED)),
        Case("tasks of two groups", ("run", "--tasks", "humaneval,gsm8k", *SCRIPTED)),
        Case("unknown --suite", ("run", "--suite", "nosuch", *SCRIPTED)),
        Case("MINT data not pulled", ("run", "--tasks", "gsm8k", "--limit", "1", *SCRIPTED)),
        Case(
            "--data-dir missing",
            ("run", "--suite", "mint", "--data-dir", "{T}/nodata", *SCRIPTED, "--limit", "1"),
        ),
        Case("unknown sample id", (*HE, *SCRIPTED, "--tasks", "HumanEval/9999")),
        Case("--limit 0", ("run", "--limit", "0", *SCRIPTED)),
        Case("--limit -3", ("run", "--limit", "-3", *SCRIPTED)),
        Case("--limit abc", ("run", "--limit", "abc", *SCRIPTED)),
        Case("--sample nosuch", ("run", "--sample", "nosuch", *SCRIPTED)),
        Case("--checkers nosuch", ("run", "--checkers", "nosuch", *SCRIPTED)),
    ]


def _store_cases() -> list[Case]:
    # The run the store cases damage has --limit 3; a resume must not lower it.
    resume: tuple[str, ...] = ("run", "--suite", "humaneval", "--limit", "3", "--no-progress")
    resume += (*SCRIPTED, "--out", "{RUN}", "--resume")
    return [
        Case("report: random bytes", ("report", "{RUN}"), prepare=_random_bytes),
        Case("report: truncated", ("report", "{RUN}"), prepare=_truncated),
        Case("report: one malformed row", ("report", "{RUN}"), expect=0, prepare=_malformed_row),
        Case("view: random bytes", ("view", "{RUN}"), prepare=_random_bytes),
        Case("view: truncated", ("view", "{RUN}"), prepare=_truncated),
        Case("--resume: random bytes", resume, prepare=_random_bytes),
        Case("--resume: truncated", resume, prepare=_truncated),
        Case("--resume: one malformed row", resume, expect=0, prepare=_malformed_row),
        Case("--resume: a finished task changed", resume, prepare=_task_changed),
        Case(
            "report: read-only copy",
            ("report", "{T}/ro/run"),
            expect=0,
            prepare=_read_only_copy,
            read_only="ro",
        ),
        Case("report: no such directory", ("report", "{T}/nosuch")),
        Case("report: not a run", ("report", "{T}/empty"), prepare=_empty_dir),
        Case("report --format nosuch", ("report", "{RUN}", "--format", "x"), prepare=_copy_run),
        Case(
            "report --mint-leaderboard on a run",
            ("report", "{RUN}", "--mint-leaderboard"),
            prepare=_copy_run,
        ),
    ]


def _out_cases() -> list[Case]:
    run = (*HE, *SCRIPTED, "--out")
    return [
        Case("--out under a file", (*run, "{T}/afile/run"), prepare=_a_file),
        Case("--out equal to a file", (*run, "{T}/afile"), prepare=_a_file),
        Case("--out on a read-only fs", (*run, "{T}/ro/new"), read_only="ro"),
        Case("--out on /proc", (*run, "/proc/mulligan-run")),
        Case("--out is an existing run", (*run, "{RUN}"), prepare=_copy_run),
        # Starts the run (`make demo` relies on it: its first and later calls are the same).
        Case("--resume of a new directory", (*run, "{T}/new", "--resume"), expect=0),
    ]


def _option_cases() -> list[Case]:
    cfg = ("run", *SCRIPTED, "--config", "{T}/c.yaml")
    return [
        Case("--feedback nosuch", (*HE, *SCRIPTED, "--feedback", "nosuch")),
        Case("--feedback bad option", (*HE, *SCRIPTED, "--feedback", "llm:nosuch")),
        Case("--feedback dangling +", (*HE, *SCRIPTED, "--feedback", "tests+")),
        Case("--feedback replay of nothing", (*HE, *SCRIPTED, "--feedback", "replay:{T}/x")),
        Case("--config missing", ("run", *SCRIPTED, "--config", "{T}/none.yaml")),
        Case("--config YAML syntax", cfg, prepare=_writes("c.yaml", "turns: [3\n")),
        Case("--config unknown key", cfg, prepare=_writes("c.yaml", "turnz: 3\n")),
        Case("--config wrong type", cfg, prepare=_writes("c.yaml", "turns: many\n")),
        Case("--config a list", cfg, prepare=_writes("c.yaml", "- turns\n")),
        Case(
            "--config TOML syntax",
            ("run", *SCRIPTED, "--config", "{T}/c.toml"),
            prepare=_writes("c.toml", "turns = \n"),
        ),
        Case("--turns -1", (*HE, *SCRIPTED, "--turns", "-1")),
        Case("--turns 0", (*HE, *SCRIPTED, "--turns", "0")),
        Case("--proposals 0", (*HE, *SCRIPTED, "--proposals", "0")),
        Case("--epochs 0", (*HE, *SCRIPTED, "--epochs", "0")),
        Case("--concurrency 0", (*HE, *SCRIPTED, "--concurrency", "0")),
        Case("--temperature 5", (*HE, *SCRIPTED, "--temperature", "5")),
        Case("--fail-on-error 0", (*HE, *SCRIPTED, "--fail-on-error", "0")),
        Case("--fail-on-error 1.5", (*HE, *SCRIPTED, "--fail-on-error", "1.5")),
        Case("--fail-on-error many", (*HE, *SCRIPTED, "--fail-on-error", "many")),
        Case(
            "--fail-on-error with --no-fail-on-error",
            (*HE, *SCRIPTED, "--fail-on-error", "2", "--no-fail-on-error"),
        ),
        Case("--isolation nosuch", (*HE, *SCRIPTED, "--isolation", "nosuch")),
        Case("unknown subcommand", ("nosuch",)),
        Case("unknown option", ("run", "--nosuch")),
        Case("--log-level nosuch", ("--log-level", "nosuch", "models")),
        Case("data pull nosuch", ("data", "pull", "nosuch")),
        Case(
            "data pull --from empty",
            ("data", "pull", "mint", "--from", "{T}/empty"),
            prepare=_empty_dir,
        ),
        Case(
            "import mint: not MINT",
            ("import", "mint", "{T}/notmint", "--out", "{T}/i"),
            prepare=_not_mint,
        ),
        Case("import mint: no such dir", ("import", "mint", "{T}/nosuch", "--out", "{T}/i")),
        Case("import mint without --out", ("import", "mint", "{T}/notmint"), prepare=_not_mint),
    ]


# ------------------------------------------------------------------------------ running


def _env(t: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "MULLIGAN_")) and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    src = str(REPO / "src")
    env["PYTHONPATH"] = f"{src}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else src
    env |= {"MULLIGAN_CACHE_DIR": str(t / "cache"), "MULLIGAN_DATA_DIR": str(t / "data")}
    env |= {"TERM": "dumb", "COLUMNS": "200", "NO_COLOR": "1"}
    return env | extra


def _unshare_works() -> bool:
    """Whether a directory can be bind-mounted read-only in a private namespace here."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    with tempfile.TemporaryDirectory() as directory:
        probe = subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount --bind -o ro {directory} {directory}"],
            capture_output=True,
        )
    return probe.returncode == 0


def _argv(case: Case, t: Path, ro_mount: bool) -> tuple[list[str], str]:
    """The process to start, and the command as the table shows it."""
    args = [a.replace("{RUN}", str(t / "run")).replace("{T}", str(t)) for a in case.args]
    shown = "mulligan " + shlex.join(
        a.replace("{RUN}", "T/run").replace("{T}", "T") for a in case.args
    )
    if case.hide_weights:
        shown += "  (weights hidden)"
    python = (
        [sys.executable, "-c", HIDE_WEIGHTS]
        if case.hide_weights
        else [sys.executable, "-m", "mulligan"]
    )
    if case.read_only is None:
        return [*python, *args], shown
    target = t / case.read_only
    target.mkdir(parents=True, exist_ok=True)
    if not ro_mount:  # no namespaces here: /proc is a filesystem nobody may write to
        args = [a.replace(str(target), "/proc/mulligan-ro") for a in args]
        return [*python, *args], shown + "  (/proc)"
    inner = f"mount --bind -o ro {shlex.quote(str(target))} {shlex.quote(str(target))} && exec "
    return [
        "unshare",
        "-rm",
        "sh",
        "-c",
        inner + shlex.join([*python, *args]),
    ], shown + "  (ro mount)"


def run_case(case: Case, good: Path, ro_mount: bool, timeout: float = 120) -> Row:
    """Run one case in a fresh temporary directory and judge its answer."""
    with tempfile.TemporaryDirectory(prefix="mulligan-bad-") as directory:
        t = Path(directory)
        if case.prepare is not None:
            case.prepare(t, good)
        argv, shown = _argv(case, t, ro_mount)
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=_env(t, case.env),
                cwd=t,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
            code, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            code = -1
            stderr = (
                (exc.stderr or b"").decode()
                if isinstance(exc.stderr, bytes)
                else (exc.stderr or "")
            )
            stderr = f"(timed out after {timeout:.0f}s) {stderr}"
        seconds = time.monotonic() - started
        stdout = "" if code == -1 else done.stdout
    return judge(case, shown.replace(str(t), "T"), code, stdout, stderr, seconds, str(t))


def judge(
    case: Case, command: str, code: int, stdout: str, stderr: str, seconds: float, t: str = ""
) -> Row:
    """Whether an answer is clear: the expected exit code, no traceback, and for a user's error
    exactly one ``error:`` line."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    lines = [line for line in stderr.splitlines() if line.strip()]
    message = errors[0] if errors else (lines[0] if lines else "")
    traceback = "Traceback" in stderr or "Traceback" in stdout
    clear = code == case.expect and not traceback
    if case.expect == 2:
        clear = clear and len(errors) == 1
    return Row(
        name=case.name,
        command=command,
        exit_code=code,
        expected=case.expect,
        message=message.replace(t, "T") if t else message,
        error_lines=len(errors),
        traceback=traceback,
        seconds=round(seconds, 2),
        clear=clear,
    )


def make_good_run(root: Path) -> Path:
    """A finished 3-episode run (scripted policy on HumanEval) that the store cases damage."""
    good = root / "good"
    argv = [sys.executable, "-m", "mulligan", *HE[:3], "--limit", "3", "--no-progress"]
    argv += [*SCRIPTED, "--out", str(good)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(root, {}), cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"could not make the run the store cases need:\n{done.stderr}")
    return good


def markdown(rows: Sequence[Row]) -> str:
    """The table: one row per case."""
    clear = sum(r.clear for r in rows)
    out = [
        f"{clear} of {len(rows)} bad inputs clear (exit code as expected, no traceback, one "
        "`error:` line for a user error).",
        "",
        "| # | case | command | exit | message | clear |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        message = r.message if len(r.message) <= 200 else r.message[:197] + "..."
        cells = [
            str(i),
            r.name,
            f"`{r.command}`",
            str(r.exit_code),
            message,
            "yes" if r.clear else "**NO**",
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the table and JSON")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--only", action="append", help="run only cases whose name has this")
    args = parser.parse_args()
    selected = [c for c in cases() if not args.only or any(o in c.name for o in args.only)]
    ro_mount = _unshare_works()
    with tempfile.TemporaryDirectory(prefix="mulligan-bad-good-") as root:
        good = make_good_run(Path(root))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda c: run_case(c, good, ro_mount), selected))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bad_inputs.md").write_text(markdown(rows))
    (args.out / "bad_inputs.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print(markdown(rows))
    return 0 if all(r.clear for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
