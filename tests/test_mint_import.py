"""Importing MINT's results.jsonl trees: layout, provenance, event reconstruction, bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_mint_dir
from mulligan.events import (
    ActionEvent,
    Episode,
    ErrorEvent,
    FeedbackEvent,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    VerdictEvent,
)
from mulligan.feedback.leak import detect_leak
from mulligan.interop import MintConfig, MintImportError, import_mint, leak_flags, leak_task
from mulligan.store import DB_NAME, RunStore, find_runs

PROMPT = "You are a helpful assistant.\n\nTask:\nWhat is 2 + 2? Solution output format: an integer."
COUNTDOWN = "You have {t} steps left and {p} chances to propose solution left."


def _line(history: list[tuple[str, str]], **state: Any) -> dict[str, Any]:
    task_id = state.pop("task_id", 0)
    return {
        "state": {
            "history": [{"role": role, "content": text} for role, text in history],
            "success": False,
            "finished": True,
            "agent_action_count": {},
            "token_counter": {},
            "terminate_reason": "max_steps",
            "error": None,
            **state,
        },
        "task": {"task_name": "reasoning", "task_id": task_id, "reference": "4", "metadata": {}},
    }


def _write(path: Path, lines: list[dict[str, Any]] | list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


SOLVED_WITH_FEEDBACK = _line(
    [
        ("user", PROMPT),
        (
            "assistant",
            "Assistant:\n<thought> add </thought> The answer is <solution> 5 </solution>.",
        ),
        (
            "user",
            "Observation:\nYour answer is wrong.\n"
            + COUNTDOWN.format(t=2, p=1)
            + "\n\nExpert feedback:\nThis is BAD. Add again: the answer is 4.\n",
        ),
        ("assistant", "Assistant:\n<execute>\nprint(2 + 2)\n</execute>"),
        (
            "user",
            "Observation:\n4\n"
            + COUNTDOWN.format(t=1, p=1)
            + "\nYou should take the last step to propose a solution.\n\nExpert feedback:\nThis is GOOD.\n",
        ),
        ("assistant", "Assistant:\nThe answer is <solution> 4 </solution>."),
    ],
    success=True,
    terminate_reason="task_success",
    token_counter={
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "feedback_prompt_tokens": 30,
        "feedback_completion_tokens": 6,
        "feedback_total_tokens": 36,
    },
    agent_action_count={"propose_solution": 2, "use_tool": 1, "invalid_action": 0},
)

INVALID_THEN_CONTEXT_FULL = _line(
    [
        ("user", PROMPT),
        ("assistant", "Assistant:\nI think it is four."),
        (
            "user",
            "Observation:\nI don't understand your input. \nIf you want to execute code, please "
            "use <execute> YOUR_CODE_HERE </execute>.\n\n"
            + COUNTDOWN.format(t=2, p=2)
            + "\n\nExpert feedback:\nUse the tags.\n",
        ),
    ],
    task_id=1,
    terminate_reason="error",
    error="Traceback (most recent call last):\nopenai.error.InvalidRequestError: This model's "
    "maximum context length is 4097 tokens. However, you requested 4313 tokens.",
)

ALFWORLD_SOLVED = _line(
    [
        ("user", "Interact with a household to solve a task."),
        ("assistant", "Assistant:\n<execute>\nprint(goto('shelf 1'))\n</execute>"),
        ("user", "Observation:\nOn the shelf 1, you see a mug 1.\n" + COUNTDOWN.format(t=1, p=2)),
        ("assistant", "Assistant:\n<execute>\nprint(take_from('mug 1', 'shelf 1'))\n</execute>"),
    ],
    task_id="pick_and_place-Mug/trial_T1",
    success=True,
    terminate_reason="task_success",
)

UNSOLVED = _line(
    [
        ("user", PROMPT),
        ("assistant", "Assistant:\n<solution> 3 </solution>"),
        ("user", "Observation:\nYour answer is wrong.\n" + COUNTDOWN.format(t=2, p=1)),
        ("assistant", "Assistant:\n<solution> 3.0 </solution>"),
    ],
    task_id=2,
    terminate_reason="max_propose_steps",
)


@pytest.fixture
def mint_tree(tmp_path: Path) -> Path:
    outputs = tmp_path / "outputs"
    fb = outputs / "model-x/F=gpt-4-0613/PHF=GT-textual/max3_p2+tool+cd"
    _write(fb / "reasoning/gsm8k/results.jsonl", [SOLVED_WITH_FEEDBACK, INVALID_THEN_CONTEXT_FULL])
    plain = outputs / "model-x/F=None/max3_p2+tool+cd"
    _write(plain / "decision_making/alfworld/results.jsonl", [ALFWORLD_SOLVED])
    _write(plain / "reasoning/gsm8k/results.jsonl", [UNSOLVED])
    return outputs


def _episodes(run_dir: Path) -> dict[str, Episode]:
    with RunStore.open_existing(run_dir) as store:
        return {e.id: e for e in store.episodes()}


def test_one_run_per_config_with_provenance(mint_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported"
    runs = import_mint(mint_tree, out)
    assert runs == [
        out / "model-x/F=None/max3_p2+tool+cd",
        out / "model-x/F=gpt-4-0613/PHF=GT-textual/max3_p2+tool+cd",
    ]
    assert find_runs(out) == runs
    with RunStore.open_existing(runs[1]) as store:
        found = store.run()
    assert found is not None
    run_id, config_hash, manifest = found.run_id, found.config_hash, found.manifest
    assert run_id == "mint:model-x/F=gpt-4-0613/PHF=GT-textual/max3_p2+tool+cd"
    assert manifest["imported_from"] == "mint"
    assert manifest["source"] == str(
        (mint_tree / "model-x/F=gpt-4-0613/PHF=GT-textual/max3_p2+tool+cd").resolve()
    )
    assert (manifest["model"], manifest["feedback_model"], manifest["feedback_setting"]) == (
        "model-x",
        "gpt-4-0613",
        "GT-textual",
    )
    assert (manifest["k"], manifest["p"], manifest["feedback_saw_reference"]) == (3, 2, True)
    assert manifest["files"]["gsm8k"]["episodes"] == 2
    assert manifest["files"]["gsm8k"]["path"] == (
        "model-x/F=gpt-4-0613/PHF=GT-textual/max3_p2+tool+cd/reasoning/gsm8k/results.jsonl"
    )
    assert len(manifest["files"]["gsm8k"]["sha256"]) == 64
    config = MintConfig.from_manifest(manifest)
    assert config is not None and config.config_hash == config_hash
    with RunStore.open_existing(runs[0]) as store:
        plain = store.run()
    assert plain is not None
    assert (plain.manifest["feedback_model"], plain.manifest["feedback_setting"]) == (None, None)
    assert sorted(plain.manifest["files"]) == ["alfworld", "gsm8k"]


def test_a_model_folder_imports_like_the_outputs_folder(mint_tree: Path, tmp_path: Path) -> None:
    runs = import_mint(mint_tree / "model-x", tmp_path / "imported")
    assert [r.relative_to(tmp_path / "imported").parts[0] for r in runs] == ["model-x"] * 2


def test_events_of_a_solved_episode_with_feedback(mint_tree: Path, tmp_path: Path) -> None:
    runs = import_mint(mint_tree, tmp_path / "imported")
    episode = _episodes(runs[1])["gsm8k/0#0"]
    assert (episode.success, episode.success_turn, episode.terminate_reason) == (True, 3, "solved")
    assert (episode.turns_used, episode.proposals_used, episode.status) == (3, 2, "finished")
    assert (episode.max_turns, episode.max_proposals, episode.model) == (3, 2, "model-x")
    kinds = [(e.turn, e.type) for e in episode.events]
    assert kinds == [
        (0, "prompt"),
        (1, "model_call"), (1, "action"), (1, "verdict"), (1, "message"), (1, "feedback"),
        (1, "model_call"), (1, "feedback"), (1, "message"),
        (2, "model_call"), (2, "action"), (2, "message"), (2, "observation"), (2, "model_call"),
        (2, "feedback"), (2, "message"),
        (3, "model_call"), (3, "action"), (3, "verdict"), (3, "message"),
    ]  # fmt: skip
    # What each policy call received is MINT's history up to it, verbatim.
    history = [(m["role"], m["content"]) for m in SOLVED_WITH_FEEDBACK["state"]["history"]]
    received = [[(m.role, m.content) for m in seen] for _, seen in episode.policy_calls()]
    assert received == [history[:1], history[:3], history[:5]]
    assert [(m.role, m.content) for m in episode.conversation()] == history
    prompt = episode.events[0]
    assert isinstance(prompt, PromptEvent) and prompt.messages[0].content == PROMPT
    actions = [e for e in episode.events if isinstance(e, ActionEvent)]
    assert [(a.kind, a.content, a.proposal) for a in actions] == [
        ("solution", "5", 1),
        ("execute", "print(2 + 2)", None),
        ("solution", "4", 2),
    ]
    assert actions[0].thought == "add"
    verdicts = [e for e in episode.events if isinstance(e, VerdictEvent)]
    assert [(v.answer, v.correct, v.checker) for v in verdicts] == [
        ("5", False, "mint:gsm8k"),
        ("4", True, "mint:gsm8k"),
    ]
    verdict_fb, textual_fb, good_fb = [e for e in episode.events if isinstance(e, FeedbackEvent)]
    assert (verdict_fb.kind, verdict_fb.source, verdict_fb.content) == (
        "binary",
        "rule:checker-verdict",
        "Your answer is wrong.",
    )
    assert verdict_fb.saw_reference
    assert (textual_fb.kind, textual_fb.source, textual_fb.saw_reference) == (
        "textual",
        "model:gpt-4-0613",
        True,
    )
    assert textual_fb.content == "This is BAD. Add again: the answer is 4."
    assert textual_fb.leak.numeric  # "4" is the reference and not in the task text
    assert good_fb.content == "This is GOOD." and not good_fb.leak.any
    observation = next(e for e in episode.events if isinstance(e, ObservationEvent))
    assert (observation.source, observation.content) == ("sandbox", "4")  # count-down dropped
    calls = [e for e in episode.events if isinstance(e, ModelCallEvent)]
    assert [(c.role, c.prompt_tokens, c.completion_tokens) for c in calls] == [
        ("policy", 100, 20),
        ("feedback", 30, 6),
        ("policy", 0, 0),
        ("feedback", 0, 0),
        ("policy", 0, 0),
    ]
    assert calls[1].model == "gpt-4-0613"
    assert episode.prompt_tokens == 130 and episode.completion_tokens == 26


def test_invalid_action_and_full_context(mint_tree: Path, tmp_path: Path) -> None:
    runs = import_mint(mint_tree, tmp_path / "imported")
    episode = _episodes(runs[1])["gsm8k/1#0"]
    assert (episode.terminate_reason, episode.status, episode.success) == (
        "context_exhausted",
        "finished",
        False,
    )
    action = next(e for e in episode.events if isinstance(e, ActionEvent))
    assert (action.kind, action.content) == ("invalid", "")
    observation = next(e for e in episode.events if isinstance(e, ObservationEvent))
    assert observation.source == "environment"
    assert observation.content.startswith("I don't understand your input.")
    error = episode.events[-1]
    assert isinstance(error, ErrorEvent) and error.turn == 2 and "maximum context" in error.message


def test_alfworld_success_and_unsolved_proposals(mint_tree: Path, tmp_path: Path) -> None:
    runs = import_mint(mint_tree, tmp_path / "imported")
    episodes = _episodes(runs[0])
    alfworld = episodes["alfworld/pick_and_place-Mug/trial_T1#0"]
    assert (alfworld.success, alfworld.success_turn, alfworld.proposals_used) == (True, 2, 0)
    assert not any(isinstance(e, VerdictEvent) for e in alfworld.events)
    assert not any(isinstance(e, FeedbackEvent) for e in alfworld.events)
    unsolved = episodes["gsm8k/2#0"]
    assert (unsolved.success, unsolved.success_turn) == (False, None)
    assert unsolved.terminate_reason == "max_proposals"
    verdicts = [e for e in unsolved.events if isinstance(e, VerdictEvent)]
    assert [(v.answer, v.correct) for v in verdicts] == [("3", False), ("3.0", False)]


def test_existing_run_needs_overwrite(mint_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported"
    import_mint(mint_tree, out)
    with pytest.raises(MintImportError, match="already holds a run"):
        import_mint(mint_tree, out)
    runs = import_mint(mint_tree, out, overwrite=True)
    assert len(_episodes(runs[1])) == 2


def _bad_tree(tmp_path: Path, lines: list[dict[str, Any]] | list[str]) -> Path:
    outputs = tmp_path / "bad"
    _write(outputs / "m/F=None/max2_p2+tool+cd/reasoning/gsm8k/results.jsonl", lines)
    return outputs


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [{"state": {"history": [{"role": "user", "content": "x"}]}, "task": {"task_id": 1}}],
            r"line 1: not a MINT result \(field 'state.success'",
        ),
        ([UNSOLVED, '{"state": []}'], r"line 2: not a MINT result \(field 'state'"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, lines: list[dict[str, Any]] | list[str], message: str
) -> None:
    outputs = _bad_tree(tmp_path, lines)
    with pytest.raises(MintImportError, match=message) as failure:
        import_mint(outputs, tmp_path / "out")
    assert "gsm8k/results.jsonl" in str(failure.value)
    # No half-written run is left behind.
    assert not (tmp_path / "out/m/F=None/max2_p2+tool+cd" / DB_NAME).exists()


def test_paths_off_the_layout_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path / "a/model/max5_p2+tool+cd/reasoning/gsm8k/results.jsonl", [UNSOLVED])
    with pytest.raises(MintImportError, match="F=<feedback model>"):
        import_mint(tmp_path / "a", tmp_path / "out")
    _write(tmp_path / "b/m/F=None/five_turns/reasoning/gsm8k/results.jsonl", [UNSOLVED])
    with pytest.raises(MintImportError, match="max<k>_p<p>"):
        import_mint(tmp_path / "b", tmp_path / "out")
    _write(tmp_path / "c/m/F=gpt-4/max5_p2+tool+cd/reasoning/gsm8k/results.jsonl", [UNSOLVED])
    with pytest.raises(MintImportError, match="PHF="):
        import_mint(tmp_path / "c", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MintImportError, match=r"no results\.jsonl"):
        import_mint(tmp_path / "empty", tmp_path / "out")


def test_leak_flags_ignore_what_the_task_already_says() -> None:
    assert leak_flags("The answer is 4.", "4", "What is 2 + 2?", "gsm8k").numeric
    assert not leak_flags("You used the 2 correctly.", "2", "What is 2 + 2?", "gsm8k").any
    assert leak_flags(
        "It was George Harrison.", "George Harrison", "Who wrote it?", "hotpotqa"
    ).exact
    assert not leak_flags("assert f(1) == 2", "assert f(1) == 2", "", "mbpp").any


def test_leak_flags_are_the_live_detectors() -> None:
    """Imported feedback is checked by mulligan.feedback.leak, as live feedback is: an mmlu
    option letter named as the answer leaks; the letter as an English word does not."""
    prompt = "Which is right? Options: A) 1 , B) 2 , C) 3 , D) 4"
    assert leak_flags("Option A is right.", "A", prompt, "mmlu").option_letter
    assert not leak_flags("Check a second time.", "A", prompt, "mmlu").any
    task = leak_task("4", "What is 2 + 2?", "gsm8k")
    assert task is not None and leak_flags("x = 4", "4", "What is 2 + 2?", "gsm8k") == (
        detect_leak("x = 4", task)
    )
    assert leak_task("", "What is 2 + 2?", "gsm8k") is None
    assert leak_task("pick up mug", "Interact with a household.", "alfworld") is None


# The real logs ----------------------------------------------------------------------------------


def _shared_mint() -> Path:
    return shared_mint_dir()


SUITE_SIZES = {
    "alfworld": 134,
    "gsm8k": 48,
    "hotpotqa": 43,
    "humaneval": 45,
    "math": 100,
    "mbpp": 91,
    "mmlu": 76,
    "theoremqa": 49,
}
CONFIGS = [
    "F=None/max1_p1+tool+cd",
    "F=None/max2_p2+tool+cd",
    "F=None/max3_p2+tool+cd",
    "F=None/max4_p2+tool+cd",
    "F=None/max5_p2+tool+cd",
    "F=gpt-4-0613/PHF=GT-textual/max5_p2+tool+cd",
    "F=gpt-4-0613/PHF=no_GT-binary/max5_p2+tool+cd",
    "F=gpt-4-0613/PHF=no_GT-textual/max5_p2+tool+cd",
]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outputs = _shared_mint() / "outputs"
    if not outputs.is_dir():
        pytest.skip(
            f"MINT outputs not found at {outputs} (third-party data lives in ../shared/data)"
        )
    out = tmp_path_factory.mktemp("mint-import")
    import_mint(outputs, out)
    return out


def test_real_logs_counts_per_suite_and_config(imported: Path) -> None:
    model_dir = imported / "gpt-3.5-turbo-0613"
    assert find_runs(imported) == sorted(model_dir / c for c in CONFIGS)
    for config in CONFIGS:
        with RunStore.open_existing(model_dir / config) as store:
            found = store.run()
            episodes = list(store.episodes(with_events=False))
        assert found is not None
        manifest = found.manifest
        assert Counter(e.key.suite for e in episodes) == SUITE_SIZES, config
        assert {s: f["episodes"] for s, f in manifest["files"].items()} == SUITE_SIZES
        assert manifest["source"].endswith(config)
        assert all(e.status == "finished" for e in episodes)
        assert all(e.max_turns == manifest["k"] for e in episodes)


def test_real_logs_match_mints_own_counters(imported: Path) -> None:
    """Proposals, successes and tokens of every episode agree with MINT's logged counters."""
    outputs = _shared_mint() / "outputs"
    run_dir = imported / "gpt-3.5-turbo-0613" / CONFIGS[-1]
    with RunStore.open_existing(run_dir) as store:
        episodes = {e.id: e for e in store.episodes()}
        found = store.run()
    assert found is not None
    for suite, info in found.manifest["files"].items():
        for text in (outputs / info["path"]).read_text().splitlines():
            record = json.loads(text)
            state = record["state"]
            episode = episodes[f"{suite}/{record['task']['task_id']}#0"]
            assert episode.success == state["success"]
            assert episode.proposals_used == state["agent_action_count"]["propose_solution"]
            assert episode.turns_used == len(state["history"]) // 2
            tokens = state["token_counter"]
            assert episode.prompt_tokens == tokens["prompt_tokens"] + tokens.get(
                "feedback_prompt_tokens", 0
            )
            textual = [
                e for e in episode.events if isinstance(e, FeedbackEvent) and e.kind == "textual"
            ]
            assert all(not e.saw_reference and e.source == "model:gpt-4-0613" for e in textual)
