"""The run options' command-line flags (:mod:`mulligan.flags`): every option has its spelling
and help there, ``mulligan run`` is built from it, and ``--help`` of other commands does not
pay for building it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import OPTIONS, ConfigError, build_config
from mulligan.flags import FLAGS, Flag, flag_type, options_from_flags, run_flags, spelling

REPO = Path(__file__).resolve().parents[1]


def _run_params() -> dict[str, Any]:
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


def test_every_option_has_a_flag_or_says_it_has_none_and_help() -> None:
    """A new option in config.py fails here until FLAGS says how the command line spells it."""
    assert set(FLAGS) == set(OPTIONS), {
        "options without a row": sorted(set(OPTIONS) - set(FLAGS)),
        "rows naming no option": sorted(set(FLAGS) - set(OPTIONS)),
    }
    for name, flag in FLAGS.items():
        assert flag.help.strip(), f"{name}: no help text"
        if flag.only_in_files:
            assert flag == Flag(flag.help, only_in_files=True), (
                f"{name}: a file-only row spells a flag"
            )


def test_the_run_command_has_each_flag_with_its_spelling_and_help() -> None:
    params = _run_params()
    flagged = [spec.name for spec in run_flags()]
    assert len(flagged) > 40
    for name in flagged:
        flag = FLAGS[name]
        param = params[name]
        spellings = flag.spellings or (f"--{name.replace('_', '-')}",)
        expected = {s for decl in spellings for s in decl.split("/")}
        assert {*param.opts, *param.secondary_opts} == expected, name
        assert param.help.startswith(flag.help) and "[default:" in param.help, name
        assert param.default is None, (
            f"{name}: a flag's default must be None (the file's lies under it)"
        )
        if flag.metavar is not None:
            assert param.metavar == flag.metavar
    for name, flag in FLAGS.items():
        if flag.only_in_files:
            assert name not in params
    assert params["no_fail_on_error"].opts == ["--no-fail-on-error"]


def test_no_two_parameters_share_a_spelling() -> None:
    seen: dict[str, str] = {}
    for name, param in _run_params().items():
        for given in [*param.opts, *param.secondary_opts]:
            assert given not in seen, f"{given} of {name} is also {seen[given]}'s"
            seen[given] = name


def test_a_field_type_the_command_line_cannot_spell_needs_a_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert flag_type("model_args") == list[str] and flag_type("tasks") is str
    assert flag_type("limit") is int and flag_type("data_dir") is Path  # None dropped
    monkeypatch.setitem(FLAGS, "model_args", Flag("backend arguments"))
    with pytest.raises(TypeError, match=r"'model_args'.*give its Flag a type"):
        flag_type("model_args")


def test_an_off_flag_sets_its_option_false_and_contradicts_the_option() -> None:
    assert options_from_flags({"fail_on_error": None, "no_fail_on_error": False}) == {
        "fail_on_error": None
    }
    assert options_from_flags({"fail_on_error": None, "no_fail_on_error": True}) == {
        "fail_on_error": False
    }
    with pytest.raises(ConfigError) as caught:
        options_from_flags({"fail_on_error": 2.0, "no_fail_on_error": True})
    assert str(caught.value) == (
        "--fail-on-error and --no-fail-on-error contradict each other; pass one"
    )
    assert options_from_flags({"turns": 3, "config": None}) == {"turns": 3}  # flags only


def test_flags_override_a_config_file_one_option_at_a_time(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("turns: 3\nfail_on_error: 4\nmodel_args: {a: 1, b: 2}\nlimit: 2\n")
    given = {"turns": 7, "model_args": ["b=9"], "no_fail_on_error": True, "limit": None}
    config = build_config(file, options_from_flags({**given, "fail_on_error": None}))
    assert config.episode.max_turns == 7 and config.selection.limit == 2
    assert config.policy.model_args == {"a": 1, "b": 9}
    assert config.execution.fail_on_error is False


def test_other_commands_do_not_build_the_run_flags() -> None:
    """Building them imports the config (about a second): ``mulligan --help``, other commands
    and tab completion must not wait for it; ``mulligan run --help`` does."""
    probe = (
        "import sys; from mulligan.cli import app\n"
        "for args in (['--help'], ['feedback', '--help'], ['run', '--help']):\n"
        "    try:\n"
        "        app(args, prog_name='mulligan')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print(args[0], 'mulligan.config' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.split("\n")
    assert "--help False" in lines and "feedback False" in lines and "run True" in lines, (
        done.stderr
    )


def test_run_help_lists_the_flags_in_their_table_order() -> None:
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    result = CliRunner().invoke(app, ["run", "--help"], env=wide)
    assert result.exit_code == 0, result.output
    # The first word of each row of the options panel: its flag.
    rows = [line.strip("│ ").split(" ")[0] for line in result.output.splitlines()]
    positions = [rows.index(spelling(spec.name)) for spec in run_flags()]
    assert positions == sorted(positions)
    assert rows.index("--config") < positions[0] and positions[-1] < rows.index("--resume")


def test_the_readme_lists_the_options_only_a_file_sets() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text[text.index("options have no flag; only a config file sets them") :]
    table = after[after.index("\n|") : after.index("\n\n", after.index("\n|"))]
    listed = {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}
    assert listed == {name for name, flag in FLAGS.items() if flag.only_in_files}
