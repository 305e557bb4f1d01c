"""MINT logs whose histories do not alternate, are empty, lost a reply or a line: imported with
the irregularity recorded on the episode (or the skipped line in the manifest), never failing
the import, in reasoning, code and ALFWorld histories alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mulligan.events import (
    ActionEvent,
    Episode,
    FeedbackEvent,
    ModelCallEvent,
    ObservationEvent,
    VerdictEvent,
)
from mulligan.interop import import_mint
from mulligan.store import RunStore

COUNTDOWN = "\nYou have {t} steps left and {p} chances to propose solution left."

# One regular opening per kind of suite: (task type, suite, prompt, an executing reply, its
# observation, a proposal).
SUITES = {
    "reasoning": (
        "gsm8k",
        "Task:\nWhat is 2 + 2? Solution output format: an integer.",
        "Assistant:\n<execute>\nprint(2 + 2)\n</execute>",
        "Observation:\n4",
        "Assistant:\nThe answer is <solution> 4 </solution>.",
    ),
    "code_generation": (
        "humaneval",
        "Task:\nComplete def add(a, b): ...",
        "Assistant:\n<execute>\nprint(add(1, 2))\n</execute>",
        "Observation:\n3",
        "Assistant:\n<solution>\ndef add(a, b):\n    return a + b\n</solution>",
    ),
    "decision_making": (
        "alfworld",
        "Interact with a household to solve a task. Your task is to: put a mug in shelf.",
        "Assistant:\n<execute>\nprint(goto('shelf 1'))\n</execute>",
        "Observation:\nOn the shelf 1, you see a mug 1.",
        "Assistant:\n<execute>\nprint(put('mug 1', 'shelf 1'))\n</execute>",
    ),
}


def _line(task_id: str, history: list[tuple[str, str]], **state: Any) -> dict[str, Any]:
    return {
        "state": {
            "history": [{"role": role, "content": text} for role, text in history],
            "success": False,
            "agent_action_count": {},
            "token_counter": {},
            "terminate_reason": "max_steps",
            **state,
        },
        "task": {"task_id": task_id, "reference": "4"},
    }


def _cases(task_type: str) -> dict[str, dict[str, Any]]:
    """The irregular histories of one kind of suite, by task id (= the case's name)."""
    _, prompt, execute, observation, answer = SUITES[task_type]
    obs = observation + COUNTDOWN.format(t=3, p=2)
    wrong = "Observation:\nYour answer is wrong." + COUNTDOWN.format(t=2, p=1)
    return {
        # the reply to the prompt was not recorded: MINT's answer to it follows the prompt
        "two_users": _line(
            "two_users",
            [("user", prompt), ("user", obs), ("assistant", answer)],
            success=True,
            terminate_reason="task_success",
        ),
        "two_assistants": _line(
            "two_assistants",
            [("user", prompt), ("assistant", execute), ("assistant", answer)],
            success=True,
            terminate_reason="task_success",
        ),
        "missing_final_reply": _line(
            "missing_final_reply",
            [("user", prompt), ("assistant", execute), ("user", obs)],
            success=True,
            terminate_reason="task_success",
        ),
        "empty": _line("empty", []),
        "regular": _line(
            "regular",
            [("user", prompt), ("assistant", answer), ("user", wrong), ("assistant", answer)],
        ),
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Episode]]:
    """Every case of every kind of suite, plus a truncated line and a task logged twice."""
    tmp_path = tmp_path_factory.mktemp("irregular")
    config = tmp_path / "outputs/model-y/F=None/max5_p2+tool+cd"
    for task_type, (suite, *_) in SUITES.items():
        lines = [json.dumps(line) for line in _cases(task_type).values()]
        lines.insert(2, lines[0][: len(lines[0]) // 2])  # a line cut off mid-way
        lines.append(lines[-1])  # the regular line again
        path = config / task_type / suite / "results.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(lines) + "\n")
    (run_dir,) = import_mint(tmp_path / "outputs", tmp_path / "out")
    with RunStore.open_existing(run_dir) as store:
        episodes = list(store.episodes())
    by_suite: dict[str, dict[str, Episode]] = {}
    for episode in episodes:
        by_suite.setdefault(episode.key.suite, {})[episode.key.task_id] = episode
    return by_suite


SUITE_NAMES = [suite for suite, *_ in SUITES.values()]


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_every_line_mint_counted_is_imported(
    imported: dict[str, dict[str, Episode]], suite: str
) -> None:
    episodes = imported[suite]
    assert set(episodes) == {
        "two_users",
        "two_assistants",
        "missing_final_reply",
        "empty",
        "regular",
    }
    kinds = {task: [i.kind for i in e.irregularities] for task, e in episodes.items()}
    assert kinds == {
        "two_users": ["consecutive_user"],
        "two_assistants": ["consecutive_assistant"],
        "missing_final_reply": ["missing_final_reply"],
        "empty": ["empty_history"],
        "regular": [],
    }
    # MINT's outcome is kept as logged, whatever the history's shape.
    assert {t for t, e in episodes.items() if e.success} == {
        "two_users",
        "two_assistants",
        "missing_final_reply",
    }
    assert all(e.success_at(e.max_turns) == e.success for e in episodes.values())


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_the_history_is_kept_verbatim(imported: dict[str, dict[str, Episode]], suite: str) -> None:
    task_type = next(t for t, (s, *_) in SUITES.items() if s == suite)
    for task_id, line in _cases(task_type).items():
        episode = imported[suite][task_id]
        logged = [(m["role"], m["content"]) for m in line["state"]["history"]]
        assert [(m.role, m.content) for m in episode.conversation()] == logged, task_id
        # each recorded reply was sent exactly the history before it
        for call, received in episode.policy_calls():
            index = call.context_messages
            assert index is not None and logged[index] == ("assistant", call.output), task_id
            assert [(m.role, m.content) for m in received] == logged[:index], task_id


def test_unrecorded_replies_are_turns_without_calls(
    imported: dict[str, dict[str, Episode]],
) -> None:
    two_users = imported["gsm8k"]["two_users"]
    (irregular,) = two_users.irregularities
    assert irregular.index == 1 and "turn 1's reply was not recorded" in irregular.detail
    assert two_users.turns_used == 2 and two_users.success_turn == 2
    calls = [e for e in two_users.events if isinstance(e, ModelCallEvent)]
    assert [c.turn for c in calls] == [2]
    # MINT's answer to the unrecorded reply is still an observation of turn 1
    (observation,) = [e for e in two_users.events if isinstance(e, ObservationEvent)]
    assert observation.turn == 1 and observation.content == "4"

    missing = imported["humaneval"]["missing_final_reply"]
    assert missing.turns_used == 2 and missing.success_turn == 2
    assert missing.irregularities[0].index == 3


def test_a_reply_with_no_answer_is_not_judged_by_the_next(
    imported: dict[str, dict[str, Episode]],
) -> None:
    two = imported["gsm8k"]["two_assistants"]
    actions = [e for e in two.events if isinstance(e, ActionEvent)]
    assert [(a.turn, a.kind) for a in actions] == [(1, "execute"), (2, "solution")]
    (verdict,) = [e for e in two.events if isinstance(e, VerdictEvent)]
    assert verdict.turn == 2 and verdict.correct
    assert not [e for e in two.events if isinstance(e, (ObservationEvent, FeedbackEvent))]


def test_empty_history_is_an_episode_of_no_turns(
    imported: dict[str, dict[str, Episode]],
) -> None:
    empty = imported["alfworld"]["empty"]
    assert empty.turns_used == 0 and not empty.success and empty.conversation() == []


def test_skipped_lines_are_listed_in_the_manifest(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs/model-y/F=None/max5_p2+tool+cd/reasoning/gsm8k"
    outputs.mkdir(parents=True)
    cases = [json.dumps(line) for line in _cases("reasoning").values()]
    outputs.joinpath("results.jsonl").write_text(
        "\n".join([*cases, cases[0][:40], cases[1]]) + "\n"
    )
    (run_dir,) = import_mint(tmp_path / "outputs", tmp_path / "out")
    with RunStore.open_existing(run_dir) as store:
        found = store.run()
    assert found is not None
    entry = found.manifest["files"]["gsm8k"]
    assert entry["episodes"] == 5 and entry["irregular_episodes"] == 4
    skipped = entry["skipped_lines"]
    assert [s["line"] for s in skipped] == [6, 7]
    assert skipped[0]["reason"].startswith("not valid JSON")
    assert (
        skipped[1]["reason"] == "task 'two_assistants' again (first on line 2); the first is kept"
    )
