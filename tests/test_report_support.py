"""Small stored runs for the report tests (no tests here): realistic events, hostile text on demand.

``build_run`` writes a run directory through the real ``RunStore``, so the report reads exactly
what ``mulligan run`` would leave behind: a prompt, then per turn a policy call, an action
(code at turn 1, then proposed solutions), the observation or verdict, and feedback with
provenance after each wrong proposal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    ErrorEvent,
    FeedbackEvent,
    LeakFlags,
    Message,
    ModelCallEvent,
    ObservationEvent,
    PromptEvent,
    VerdictEvent,
)
from mulligan.store import RunStore

PWN_SCRIPT = "<script>window.__pwned=1</script>"
PWN_IMG = '<img src=x onerror="window.__pwned=1">'
# Tries to end the JSON block, then to run code; then to end a <pre>/<textarea>; then Jinja.
BREAKOUT = "</script><script>window.__pwned=1</script><!-- </pre></textarea> {{ 7*7 }} &amp;"
HOSTILE = f"{PWN_SCRIPT} {PWN_IMG} {BREAKOUT}"

INSTRUCTIONS = (
    "You are a helpful assistant. Solve the task with Python inside <execute> and propose the\n"
    "answer inside <solution>. You have 3 turns and 2 proposals.\n\n"
    "Here is an example of a solved task, to show the format. It is long on purpose, like\n"
    "MINT's in-context examples: prompts of one template share it, the report stores it once."
)


def make_episode(
    run_id: str,
    suite: str,
    task_id: str,
    success_turn: int | None,
    *,
    model: str = "test/model",
    max_turns: int = 3,
    feedback: str | None = "textual",
    hostile: bool = False,
    failed: bool = False,
) -> Episode:
    """One episode: code at turn 1, a proposal per later turn, correct at ``success_turn``."""
    text = HOSTILE if hostile else ""
    events: list = [
        PromptEvent(
            turn=0,
            messages=(Message(role="user", content=f"{INSTRUCTIONS}\n\nTask: {task_id} {text}"),),
            template="test.j2",
            template_hash="0123456789abcdef",
        )
    ]
    last = success_turn or max_turns
    proposal = 0
    for turn in range(1, last + 1):
        if turn == 1:
            code = f"x = {len(task_id)}\nprint(x * 2)  # {text}"
            reply = f"<thought> Compute first. {text}</thought>\n<execute>\n{code}\n</execute>"
            events += [
                ModelCallEvent(
                    turn=turn,
                    model=model,
                    output=reply,
                    prompt_tokens=120,
                    completion_tokens=20,
                    latency_s=0.4,
                    cost_usd=0.0002,
                ),
                ActionEvent(
                    turn=turn,
                    kind="execute",
                    content=code,
                    thought=f"Compute first. {text}",
                    raw=reply,
                ),
                ObservationEvent(
                    turn=turn,
                    source="sandbox",
                    content=f"{2 * len(task_id)}\n{text}",
                    duration_s=0.01,
                ),
            ]
            continue
        proposal += 1
        correct = turn == success_turn
        answer = (str(turn * 7) if not correct else "42") + (f" {text}" if text else "")
        reply = f"<thought> The answer. {text}</thought>\n<solution> {answer} </solution> {text}"
        events += [
            ModelCallEvent(
                turn=turn,
                model=model,
                output=reply,
                prompt_tokens=150,
                completion_tokens=15,
                latency_s=0.3,
                cost_usd=0.0002,
            ),
            ActionEvent(
                turn=turn,
                kind="solution",
                content=answer,
                thought=f"The answer. {text}",
                raw=reply,
                proposal=proposal,
            ),
            VerdictEvent(
                turn=turn,
                proposal=proposal,
                answer=answer,
                correct=correct,
                score=1.0 if correct else 0.0,
                checker="numeric",
                detail=f"reference 42 {text}",
            ),
        ]
        if not correct and feedback:
            content = f"Your answer is wrong; check the units. {text}"
            events += [
                ModelCallEvent(
                    turn=turn,
                    role="feedback",
                    model="test/critic",
                    output=content,
                    prompt_tokens=200,
                    completion_tokens=30,
                    latency_s=0.5,
                    cost_usd=0.001,
                ),
                FeedbackEvent(
                    turn=turn,
                    kind=feedback,
                    source=f"model:test/critic {text}".strip(),  # type: ignore[arg-type]
                    content=content,
                    saw_reference=True,
                    expertise="expert",
                    leak=LeakFlags(numeric=hostile),
                ),
            ]
    if failed:
        events.append(
            ErrorEvent(turn=last, where="model", message=f"backend down {text}", fatal=True)
        )
    return Episode(
        key=EpisodeKey(suite=suite, task_id=task_id),
        run_id=run_id,
        config_hash="cafe",
        model=model,
        max_turns=max_turns,
        max_proposals=2,
        events=events,
        status="failed" if failed else "finished",
        success=success_turn is not None and not failed,
        success_turn=None if failed else success_turn,
        turns_used=last,
        proposals_used=proposal,
        terminate_reason="error" if failed else ("solved" if success_turn else "max_turns"),
        error=f"backend down {text}" if failed else None,
    )


def build_run(
    path: Path,
    run_id: str,
    outcomes: Mapping[tuple[str, str], int | None],
    *,
    feedback: str | None = "textual",
    hostile: frozenset[tuple[str, str]] = frozenset(),
    failed: frozenset[tuple[str, str]] = frozenset(),
    manifest: Mapping[str, object] | None = None,
    model: str = "test/model",
) -> Path:
    """A run directory with one episode per ``(suite, task) -> success turn or None``."""
    with RunStore(path) as store:
        store.create_run(run_id, "cafe", dict(manifest or {"model": model, "k": 3}))
        for (suite, task), turn in outcomes.items():
            store.save_episode(
                make_episode(
                    run_id,
                    suite,
                    task,
                    turn,
                    model=model,
                    feedback=feedback,
                    hostile=(suite, task) in hostile,
                    failed=(suite, task) in failed,
                )
            )
    return path


# A small but varied pair of runs: two suites, solved at different turns, unsolved, failed.
OUTCOMES_A: dict[tuple[str, str], int | None] = {
    ("gsm8k", "1"): 2,
    ("gsm8k", "2"): 3,
    ("gsm8k", "3"): None,
    ("gsm8k", "4"): 2,
    ("mbpp", "10"): 3,
    ("mbpp", "11"): None,
    ("mbpp", "12"): 2,
}
OUTCOMES_B: dict[tuple[str, str], int | None] = {
    ("gsm8k", "1"): 3,
    ("gsm8k", "2"): None,
    ("gsm8k", "3"): None,
    ("gsm8k", "4"): 2,
    ("mbpp", "10"): None,
    ("mbpp", "11"): None,
    ("mbpp", "12"): 3,
}
