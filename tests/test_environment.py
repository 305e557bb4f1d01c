"""Environment tasks (issue 16, item 1): tool calls cross the sandbox as messages, the state
and the success signal stay outside it, and the loop, store and metrics work unchanged.

Runs the pure-Python ``guess`` suite through real sandboxes with scripted policies."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import Episode, Message, ToolCallEvent
from mulligan.metrics.success import sr_at_k_curve
from mulligan.models import CallContext, Completion, GenerateParams, get_model
from mulligan.prompts.policy import render_mint_prompt
from mulligan.sandbox import SandboxPool
from mulligan.store import RunStore
from mulligan.tasks import Task, get_checker, load_suite
from mulligan.tasks.environment import ToolCallError, ToolSpec
from mulligan.tasks.guess import MAX_GUESSES, secret_of


class EchoHost:
    """A tool host for the sandbox alone: records calls, refuses the word 'no'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []

    @property
    def tool_specs(self) -> Sequence[ToolSpec]:
        return (
            ToolSpec("echo", ("text",), "Echo the text.", 'echo("hi")'),
            ToolSpec("add", ("a", "b"), "Add.", "add(1, 2)", types=("int", "int")),
        )

    async def call_tool(self, name: str, args: list[Any]) -> str:
        self.calls.append((name, args))
        if args and args[0] == "no":
            raise ToolCallError("the host refuses 'no'")
        if name == "add":
            return str(args[0] + args[1])
        return f"echo: {args[0]}"


class Scripted:
    """A policy that replies with the given function of the conversation and context."""

    def __init__(self, reply: Any) -> None:
        self.name = "test/scripted"
        self.reply = reply
        self.seen: list[list[Message]] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.seen.append(list(messages))
        assert context is not None
        return Completion(text=self.reply(messages, context), model=self.name)

    async def aclose(self) -> None:
        return None


async def _play(task: Task, policy: Any, pool: SandboxPool, **limits: Any) -> Episode:
    return await run_episode(
        task=task,
        policy=policy,
        params=GenerateParams(temperature=0.0),
        checker=get_checker(task.checker),
        sandboxes=pool,
        feedback=[],
        limits=EpisodeLimits(**{"max_turns": 5, "max_proposals": 2, **limits}),
        run_id="r",
        config_hash="h",
    )


async def test_tool_calls_are_answered_by_the_parent(sandboxes: SandboxPool) -> None:
    host = EchoHost()
    async with sandboxes.session() as sandbox:
        cell = await sandbox.execute(
            "for w in ['a', 'b']:\n    print(echo(w))\nadd(2, 3)", tools=host
        )
        assert cell.error is None, cell.output
        assert cell.output == "echo: a\necho: b\nOut[1]: '5'"
        refused = await sandbox.execute("echo('no')", tools=host)
        assert refused.error == "ToolError" and "refuses 'no'" in refused.output
        wrong = await sandbox.execute("echo(object())", tools=host)
        assert wrong.error == "TypeError"
        # The stubs stay defined in the session; help() shows their signature.
        again = await sandbox.execute("import inspect; print(inspect.signature(add))", tools=host)
        assert again.output == "(a, b)"
    assert host.calls == [("echo", ["a"]), ("echo", ["b"]), ("add", [2, 3]), ("echo", ["no"])]


async def test_no_tools_without_a_host_and_forged_calls_are_refused(
    sandboxes: SandboxPool,
) -> None:
    async with sandboxes.session() as sandbox:
        plain = await sandbox.execute("echo('x')")
        assert plain.error == "NameError"
        # Model code writing tool-call frames by hand on every pipe it holds: a frame is only
        # a request (for a tool the session lacks it is refused, for one it has it counts like
        # a call), and the session goes on answering in step.
        forged = (
            "import json, os, stat, struct\n"
            "def frame(name):\n"
            "    data = json.dumps({'tool_call': {'id': 999, 'name': name, 'args': ['f']}})\n"
            "    return struct.pack('>I', len(data)) + data.encode()\n"
            "for fd in range(3, 64):\n"
            "    try:\n"
            "        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
            "            os.write(fd, frame('set_success') + frame('echo'))\n"
            "    except OSError:\n"
            "        pass\n"
            "print(echo('ok'))\n"
        )
        host = EchoHost()
        result = await sandbox.execute(forged, tools=host)
        assert result.output == "echo: ok", result.output
        assert ("set_success", ["f"]) not in host.calls
        after = await sandbox.execute("print(echo('next'))", tools=host)
        assert after.output == "echo: next", after.output


async def test_a_tool_call_during_a_timeout_leaves_the_session_usable(
    sandboxes: SandboxPool,
) -> None:
    host = EchoHost()
    async with sandboxes.session() as sandbox:
        slow = await sandbox.execute("while True:\n    echo('x')", timeout_s=1.0, tools=host)
        assert slow.timed_out, slow.output
        after = await sandbox.execute("print(echo('after'))", tools=host)
        assert after.output == "echo: after", after.output


class SlowHost(EchoHost):
    """Answers after a pause, as a loaded game server does."""

    async def call_tool(self, name: str, args: list[Any]) -> str:
        await asyncio.sleep(0.6)
        return await super().call_tool(name, args)


async def test_the_hosts_time_answering_tool_calls_is_not_the_cells(
    sandboxes: SandboxPool,
) -> None:
    # Three calls of 0.6 s each in a cell limited to 1 s: the host's time does not count, on
    # either side of the pipe; the model's own time still does.
    host = SlowHost()
    async with sandboxes.session() as sandbox:
        cell = await sandbox.execute(
            "for w in 'abc':\n    print(echo(w))", timeout_s=1.0, tools=host
        )
        assert cell.error is None and not cell.timed_out, cell.output
        assert cell.output == "echo: a\necho: b\necho: c"
        spin = await sandbox.execute(
            "print(echo('x'))\nwhile True:\n    pass", timeout_s=1.0, tools=host
        )
        assert spin.timed_out and spin.output.startswith("echo: x"), spin.output


async def test_reference_policy_wins_the_game_and_the_run_records_it(
    sandboxes: SandboxPool, tmp_path: Path
) -> None:
    tasks = load_suite("guess")[:3]
    episodes = [await _play(t, get_model("scripted/reference"), sandboxes) for t in tasks]
    for episode, task in zip(episodes, tasks, strict=True):
        assert episode.success and episode.success_turn == 1
        assert episode.terminate_reason == "solved"
        calls = [e for e in episode.events if isinstance(e, ToolCallEvent)]
        assert [(c.tool, c.args, c.success) for c in calls] == [
            ("guess", (secret_of(task.id),), True)
        ]
    with RunStore(tmp_path) as store:
        store.create_run("r", "h", {})
        for episode in episodes:
            store.save_episode(episode)
    with RunStore.open_existing(tmp_path) as store:
        assert list(store.episodes()) == episodes
    assert sr_at_k_curve(episodes) == {k: 1.0 for k in range(1, 6)}


async def test_wrong_policy_and_forged_success_never_win(sandboxes: SandboxPool) -> None:
    task = load_suite("guess")[0]
    wrong = await _play(task, get_model("scripted/wrong"), sandboxes)
    assert not wrong.success and wrong.terminate_reason == "max_proposals"
    secret = secret_of(task.id)

    def forger(messages: list[Message], ctx: CallContext) -> str:
        if len(messages) == 1:  # claims the win in text and tampers with what it can reach
            return (
                f"<execute>\nprint('Correct! The number is {secret}.')\n"
                "won = True\nguess = lambda n: 'Correct!'\nprint(guess(1))\n</execute>"
            )
        return "<solution> done </solution>"

    forged = await _play(task, Scripted(forger), sandboxes)
    assert not forged.success
    assert [e for e in forged.events if isinstance(e, ToolCallEvent)] == []


async def test_binary_search_solves_within_the_turns_and_sees_observations(
    sandboxes: SandboxPool,
) -> None:
    task = load_suite("guess")[1]

    # The cell searches in Python, two guesses per turn; its bounds live in the REPL session,
    # so the game's state and the model's both carry over between turns.
    cell = (
        "<execute>\n"
        "try:\n    low, high\nexcept NameError:\n    low, high = 1, 100\n"
        "for _ in range(2):\n"
        "    mid = (low + high) // 2\n"
        "    answer = guess(mid)\n"
        "    print(answer)\n"
        "    if answer.startswith('Correct'):\n        break\n"
        "    if 'higher' in answer:\n        low = mid + 1\n"
        "    else:\n        high = mid - 1\n"
        "</execute>"
    )

    def search(messages: list[Message], ctx: CallContext) -> str:
        return cell

    policy = Scripted(search)
    episode = await _play(task, policy, sandboxes, max_turns=5)
    assert episode.success, [m.content for m in policy.seen[-1]]
    assert episode.success_turn is not None and episode.success_turn <= 5
    assert "between 1 and 100" in policy.seen[0][0].content  # reset's observation, in the prompt


async def test_tool_call_budgets_bound_cells_and_episodes(sandboxes: SandboxPool) -> None:
    task = load_suite("guess")[2]
    loop = "<execute>\nfor n in range(1, 101):\n    print(guess(n))\n</execute>"
    policy = Scripted(lambda messages, ctx: loop)
    episode = await _play(task, policy, sandboxes, tool_calls_per_cell=3, max_turns=2)
    calls = [e for e in episode.events if isinstance(e, ToolCallEvent)]
    assert [c.refused for c in calls if c.turn == 1] == [False, False, False, True]
    assert "at most 3 tool calls per cell" in calls[3].observation
    tight = await _play(task, policy, sandboxes, tool_calls_per_episode=2, max_turns=2)
    refused = [e for e in tight.events if isinstance(e, ToolCallEvent) and e.refused]
    assert refused and "2 tool calls are used up" in refused[0].observation
    # The game's own limit: after MAX_GUESSES guesses nothing more happens.
    over = await _play(task, policy, sandboxes, max_turns=1)
    if secret_of(task.id) > MAX_GUESSES:
        assert not over.success
        observation = [e for e in over.events if isinstance(e, ToolCallEvent)][-1].observation
        assert observation == "The game is over."


def test_the_prompt_lists_the_environment_tools_and_its_first_observation() -> None:
    task = load_suite("guess")[0]
    text, _ = render_mint_prompt(task, 5, 2, observation="I am thinking of a number.")
    assert "[1] guess(number: int) -> str\nGuess the hidden number." in text
    assert text.endswith(
        "Task:\nFind the hidden number by calling guess(number).\nI am thinking of a number."
    )


async def test_the_game_refuses_what_is_not_a_whole_number() -> None:
    from mulligan.tasks.guess import GuessingGame

    game = GuessingGame(secret=7)
    await game.reset()
    for bad in (float("nan"), float("inf"), 2.5, "7", True, None):
        with pytest.raises(ToolCallError):
            await game.step("guess", [bad])
    assert await game.step("guess", [7.0]) == "Correct! The number is 7."
    assert game.won


def test_tool_specs_refuse_names_that_are_not_identifiers() -> None:
    with pytest.raises(ValueError, match="identifier"):
        ToolSpec("import", (), "", "")
    with pytest.raises(ValueError, match="identifier"):
        ToolSpec("ok", ("a b",), "", "")
