"""ALFWorld as MINT runs it: 134 household games, played through MINT's tool functions.

- :data:`ALFWORLD_TOOLS`: MINT's eleven tools (``put``, ``goto``, ``take_from``,
  ``open_receptacle``, ...), in MINT's order and wording, each mapped to the game command MINT
  sends (``goto("drawer 1")`` -> ``go to drawer 1``);
- :class:`AlfWorldGame`: one game server process (``_alfworld_game.py``, textworld +
  ``alfworld``) behind an async interface, so a heavy, synchronous game never blocks the loop;
- :class:`AlfWorldEnvironment`: the :class:`~mulligan.tasks.environment.Environment` an
  episode plays; its success signal is MINT's: any step so far after which the game was over
  (``--checkers mint``: textworld's ``done``, which MINT reads as success and which is also set
  when the game's 50-step limit runs out) or won (``--checkers strict``: ``won`` only);
- :data:`ALFWORLD`: the suite, one group per MINT task type (put, clean, heat, cool, examine,
  puttwo), from ``processed/alfworld``, in ``gamefile_id.txt``'s order (MINT's logs hold
  the same 134 games in another order).

Needs the optional extra ``alfworld`` (``pip install -e '.[alfworld]'``) to play; loading
the tasks needs only the data. The game's first observation is part of the prompt, so the
prompt is completed when the episode resets the game (:func:`task_text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.tasks.base import CheckerMode, SuiteDefinition, Task
from mulligan.tasks.environment import (
    ENVIRONMENT_CHECKER,
    EnvironmentFailure,
    EnvironmentKind,
    ToolCallError,
    ToolSpec,
    register_environment,
)
from mulligan.tasks.errors import TaskDataError
from mulligan.tasks.mint import default_data_dir

PROMPT_PREFIX = "Interact with a household to solve a task. \n"
"""What MINT puts before the game's first observation (``mint/tasks/alfworld.py``)."""

STEP_LIMIT = 50
"""ALFWorld's ``max_nb_steps_per_episode`` in the config MINT uses: after 50 game steps the game
is over, and MINT counts that as success (it reads textworld's ``done``)."""

TASK_TYPES: dict[str, str] = {
    "pick_and_place": "put",
    "pick_clean_then_place": "clean",
    "pick_heat_then_place": "heat",
    "pick_cool_then_place": "cool",
    "look_at_obj": "examine",
    "pick_two_obj": "puttwo",
}
"""Game-name prefix -> MINT's task type (its in-context example), checked in this order."""

GROUPS: tuple[str, ...] = ("put", "clean", "heat", "cool", "examine", "puttwo")

STEP_TIMEOUT_S = 300.0
LOAD_TIMEOUT_S = 1800.0
"""A game step takes about 0.2 s of CPU, loading a game a few seconds of CPU; on a machine
shared by many jobs either can take minutes of wall time (loads of 300 s were seen). These
bounds only catch a server that hangs."""


@dataclass(frozen=True, slots=True)
class _Tool:
    spec: ToolSpec
    command: str
    """The game command, ``{0}``, ``{1}`` standing for the arguments."""


def _tool(name: str, params: str, description: str, example: str, command: str) -> _Tool:
    names = tuple(p for p in params.split(",") if p)
    return _Tool(ToolSpec(name, names, description, example), command)


_TOOLS: tuple[_Tool, ...] = (
    _tool("put", "object,receptacle", "Put an object in/on a receptacle.",
          'put("mug 1", "desk 2")', "put {0} in/on {1}"),
    _tool("goto", "receptacle", "Go to a location of the receptacle.",
          'goto("drawer 1")', "go to {0}"),
    _tool("take_from", "object,receptacle", "Take an object from a receptacle.",
          'take_from("mug 1", "shelf 2")', "take {0} from {1}"),
    _tool("open_receptacle", "receptacle", "Open a receptacle.",
          'open_receptacle("fridge 1")', "open {0}"),
    _tool("toggle", "object_or_receptacle", "Toggle an object or receptacle.",
          'toggle("light 2")', "toggle {0}"),
    _tool("close_receptacle", "receptacle", "Close a receptacle.",
          'close_receptacle("microwave 1")', "close {0}"),
    _tool("clean", "object,receptacle", "Clean an object with a receptacle.",
          'clean("cloth 1", "sinkbasin 1")', "clean {0} with {1}"),
    _tool("heat", "object,receptacle", "Heat an object with a receptacle.",
          'heat("egg 1", "microwave 1")', "heat {0} with {1}"),
    _tool("cool", "object,receptacle", "Cool an object with a receptacle.",
          'cool("bottle 1", "fridge 1")', "cool {0} with {1}"),
    _tool("use", "receptacle", "Use a receptacle.", 'use("lamp 1")', "use {0}"),
    _tool("look", "", "Look around. It will return what you see in the room.",
          "look()", "look"),
)  # fmt: skip
ALFWORLD_TOOLS: tuple[ToolSpec, ...] = tuple(t.spec for t in _TOOLS)
"""MINT's ALFWorld tools in the order its prompts list them."""
_COMMANDS: dict[str, str] = {t.spec.name: t.command for t in _TOOLS}

# gt_traj.txt writes the expert's calls with the game's verbs; MINT's tools are named apart.
_GT_NAMES = {"take": "take_from", "open": "open_receptacle", "close": "close_receptacle"}


def process_observation(text: str) -> str:
    """MINT's ``process_ob`` (after ReAct): drop the "You arrive at loc N. " prefix."""
    if text.startswith("You arrive at loc "):
        text = text[text.find(". ") + 2 :]
    return text


def intro_text(observation: str) -> str:
    """The first observation as MINT shows it: without the "-= Welcome ... =-" banner."""
    return "\n".join(observation.split("\n\n")[1:])


def game_command(tool: str, args: Sequence[Any]) -> str:
    """The game command a tool call sends; :class:`ToolCallError` for a wrong call."""
    if tool not in _COMMANDS:
        raise ToolCallError(f"no ALFWorld tool named {tool!r}")
    spec = next(s for s in ALFWORLD_TOOLS if s.name == tool)
    if len(args) != len(spec.params):
        raise ToolCallError(f"{spec.signature} takes {len(spec.params)} argument(s)")
    return _COMMANDS[tool].format(*(str(a) for a in args))


def expert_calls(gt_traj: str) -> list[str]:
    """The expert's tool calls from ``gt_traj.txt`` (the Assistant's ``<execute>`` lines),
    renamed to MINT's tools (``take`` -> ``take_from``, ``open`` -> ``open_receptacle``...)."""
    calls: list[str] = []
    for block in re.findall(r"<execute>(.*?)</execute>", gt_traj, re.DOTALL):
        for line in block.strip().splitlines():
            match = re.fullmatch(r"\s*([a-z_]+)\((.*)\)\s*", line)
            if match is None:
                continue
            name, rest = match.groups()
            calls.append(f"{_GT_NAMES.get(name, name)}({rest})")
    return calls


class AlfWorldGame:
    """One game server process (``_alfworld_game.py``): ``load`` a game, then ``step``.

    Requests go one at a time. The process ends with :meth:`aclose` (or when mulligan exits:
    it stops at the end of its input)."""

    def __init__(self, data_dir: Path, python: str | None = None) -> None:
        self.data_dir = data_dir
        self.python = python or sys.executable
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.timings: dict[str, list[float]] = {"load": [], "step": []}

    async def _start(self) -> asyncio.subprocess.Process:
        if self._process is None or self._process.returncode is not None:
            script = Path(__file__).with_name("_alfworld_game.py")
            env = {**os.environ, "ALFWORLD_DATA": str(self.data_dir)}
            self._process = await asyncio.create_subprocess_exec(
                self.python, "-P", "-u", str(script),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env, limit=2**22,
            )  # fmt: skip
            await self._read(self._process, LOAD_TIMEOUT_S)
        return self._process

    async def _read(self, process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)
        except TimeoutError:
            await self.aclose()
            message = f"the ALFWorld game server did not answer in {timeout:g} s"
            raise EnvironmentFailure(message) from None
        if not line:
            raise EnvironmentFailure("the ALFWorld game server ended unexpectedly")
        reply = json.loads(line)
        if "error" in reply:
            raise EnvironmentFailure(f"ALFWorld: {reply['error']}")
        return dict(reply)

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        async with self._lock:
            process = await self._start()
            assert process.stdin is not None
            started = time.perf_counter()
            process.stdin.write((json.dumps(message) + "\n").encode())
            await process.stdin.drain()
            reply = await self._read(process, timeout)
            self.timings["load" if message["op"] == "load" else "step"].append(
                time.perf_counter() - started
            )
            return reply

    async def load(self, game_file: str, step_limit: int = STEP_LIMIT) -> str:
        """Loads and resets a game; returns its first observation (unprocessed)."""
        message = {"op": "load", "game": game_file, "step_limit": step_limit}
        return str((await self.request(message, LOAD_TIMEOUT_S))["observation"])

    async def step(self, command: str) -> tuple[str, bool, bool]:
        """One game command: (observation, won, done)."""
        reply = await self.request({"op": "step", "action": command}, STEP_TIMEOUT_S)
        return str(reply["observation"]), bool(reply["won"]), bool(reply["done"])

    async def aclose(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@dataclass
class AlfWorldEnvironment:
    """One episode's game. ``won`` is MINT's success signal: any step after which the game was
    over (``success="done"``, MINT's reading) or won (``success="won"``)."""

    game_file: str
    data_dir: Path
    success: str = "done"
    step_limit: int = STEP_LIMIT
    game: AlfWorldGame | None = None
    steps: list[tuple[str, str, bool, bool]] = field(default_factory=list)
    """(command, observation, won, done) of every step, in order."""

    @property
    def tools(self) -> Sequence[ToolSpec]:
        return ALFWORLD_TOOLS

    @property
    def won(self) -> bool:
        index = 3 if self.success == "done" else 2
        return any(step[index] for step in self.steps)

    async def reset(self) -> str:
        if self.game is None:
            self.game = AlfWorldGame(self.data_dir)
        self.steps.clear()
        return intro_text(await self.game.load(self.game_file, self.step_limit))

    async def step(self, tool: str, args: Sequence[Any]) -> str:
        command = game_command(tool, args)
        if self.game is None:
            raise EnvironmentFailure("step before reset")
        observation, won, done = await self.game.step(command)
        observation = process_observation(observation)
        self.steps.append((command, observation, won, done))
        return observation

    async def aclose(self) -> None:
        if self.game is not None:
            await self.game.aclose()


def alfworld_available() -> bool:
    """True when the optional ``alfworld`` package (and textworld) can be imported."""
    return all(importlib.util.find_spec(n) is not None for n in ("alfworld", "textworld"))


def _open(task: Task) -> AlfWorldEnvironment:
    if not alfworld_available():
        raise TaskDataError(
            "ALFWorld games need the optional package alfworld: pip install -e '.[alfworld]' "
            "(in this checkout)"
        )
    return AlfWorldEnvironment(
        game_file=str(task.metadata["game_file"]),
        data_dir=Path(str(task.metadata["alfworld_data"])),
        success=str(task.metadata.get("success", "done")),
    )


ALFWORLD_ENVIRONMENT = EnvironmentKind(
    name="alfworld",
    description="ALFWorld household games (textworld), MINT's tools",
    open=_open,
    tools=ALFWORLD_TOOLS,
)
register_environment(ALFWORLD_ENVIRONMENT)


def find_alfworld_dir(data_dir: Path | None = None) -> Path:
    """The ``processed/alfworld`` folder under a data directory (the same layouts as MINT's
    other suites), or :class:`TaskDataError` naming where it looked and the fix."""
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    candidates = [
        root / "processed" / "alfworld",
        root / "alfworld",
        root / "mint" / "processed" / "alfworld",
        root / "data" / "processed" / "alfworld",
    ]
    for path in candidates:
        if (path / "gamefile_id.txt").is_file():
            return path.resolve()
    raise TaskDataError(
        f"ALFWorld data not found: expected {candidates[0]}/gamefile_id.txt (also looked in "
        f"{', '.join(str(p) for p in candidates[1:])}). Fix: run `mulligan data pull mint`, or "
        "pass --data-dir pointing at a directory that holds processed/alfworld."
    )


def task_type(game_id: str) -> str:
    for prefix, kind in TASK_TYPES.items():
        if game_id.startswith(prefix):
            return kind
    raise TaskDataError(f"ALFWorld game {game_id!r}: no MINT task type for its name")


def load_alfworld(group: str | None, data_dir: Path | None, checkers: CheckerMode) -> list[Task]:
    """The 134 games MINT runs (or one task type's), in ``gamefile_id.txt``'s order."""
    root = find_alfworld_dir(data_dir)
    tasks: list[Task] = []
    index = root / "gamefile_id.txt"
    for number, line in enumerate(index.read_text().splitlines(), 1):
        game_id = line.strip()
        if not game_id:
            continue
        folder = root / "json_2.1.1" / "valid_unseen" / game_id
        game_file, gt_file = folder / "game.tw-pddl", folder / "gt_traj.txt"
        if not (game_file.is_file() and gt_file.is_file()):
            raise TaskDataError(
                f"{index}, line {number}: {folder} lacks game.tw-pddl or gt_traj.txt; re-run "
                "`mulligan data pull mint`"
            )
        kind = task_type(game_id)
        if group is not None and kind != group:
            continue
        reference = gt_file.read_text()
        tasks.append(
            Task(
                id=game_id,
                suite="alfworld",
                category="decision_making",
                prompt=PROMPT_PREFIX,
                reference=reference,
                checker=ENVIRONMENT_CHECKER,
                gold_solution="\n".join(f"print({call})" for call in expert_calls(reference)),
                metadata={
                    "benchmark": "mint",
                    "mint_task_type": f"alfworld/{kind}",
                    "environment": "alfworld",
                    "game_file": str(game_file),
                    "alfworld_data": str(root),
                    "success": "done" if checkers == "mint" else "won",
                },
                tools=tuple(spec.name for spec in ALFWORLD_TOOLS),
            )
        )
    return tasks


ALFWORLD = SuiteDefinition(
    name="alfworld",
    description="MINT's ALFWorld: 134 household games played through tool calls",
    load=load_alfworld,
    groups=GROUPS,
    data_pull="mint",
)
