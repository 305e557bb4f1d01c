"""Feedback providers: spec grammar and composition, rule providers, model-based providers with a
canned feedback model, the verdict parser, leak handling on the way to the policy, and replay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mulligan.episode import EpisodeLimits, run_episode
from mulligan.events import (
    ActionEvent,
    Episode,
    EpisodeKey,
    Event,
    FeedbackEvent,
    LeakFlags,
    Message,
    ModelCallEvent,
)
from mulligan.feedback import (
    FEEDBACK_PROVIDERS,
    BinaryFeedback,
    ChecklistFeedback,
    CritiqueFeedback,
    FeedbackContext,
    LeakGuardedFeedback,
    LeakPolicy,
    NoFeedback,
    SelfFeedback,
    SimulatedUserFeedback,
    UnaryFeedback,
    UnitTestFeedback,
    describe_feedback_kinds,
    feedback_needs,
    get_feedback,
    load_template,
    parse_binary_verdict,
    parse_feedback_spec,
    template_versions,
)
from mulligan.feedback.unary import PHRASINGS
from mulligan.metrics import leak_rate
from mulligan.models import CallContext, Completion, GenerateParams, ScriptedModel
from mulligan.prompts import USER_MARKER, to_messages
from mulligan.store import RunStore
from mulligan.tasks import CheckResult, CodeRunner, ProgramResult, Task
from test_feedback_support import CannedModel, context, mmlu_task, reasoning_task


def _inner(provider: object) -> object:
    return provider.inner if isinstance(provider, LeakGuardedFeedback) else provider


# --- the binary verdict parser -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "good"),
    [
        ("This is NOT GOOD.", False),
        ("GOOD", True),
        ("This is GOOD.", True),
        ("This is BAD.", False),
        ("The answer is not correct", False),
        ("The answer is correct.", True),
        ("Your answer isn't right.", False),
        ("incorrect", False),
        ("Not bad at all.", True),
        ("I don't see any problem; the answer is correct.", True),
        ("The approach is good, but the final answer is wrong.", False),
        ("No, that is wrong.", False),
        ("Almost correct, but the units are off.", False),
        ("The correct answer is 5, yours is wrong.", False),
        ("Is the unit right? The answer is wrong.", False),
        ("Step 1 has an error. Overall, the final answer is correct.", True),
        ("Let me look.\nVERDICT: GOOD", True),
        ("It looks good at first sight.\nVerdict: NOT GOOD", False),
        ("Let me think about it", None),
        ("", None),
    ],
)
def test_binary_verdict_parser(text: str, good: bool | None) -> None:
    assert parse_binary_verdict(text) is good


# --- specs and composition ---------------------------------------------------------------------


def test_spec_grammar_builds_ordered_chains() -> None:
    model, policy = CannedModel(["x"]), CannedModel(["y"], name="policy")
    chain = get_feedback("tests:partial+llm:expert", feedback_model=model)
    assert [type(_inner(p)) for p in chain] == [UnitTestFeedback, SimulatedUserFeedback]
    tests, llm = (_inner(p) for p in chain)
    assert isinstance(tests, UnitTestFeedback) and tests.coverage == "partial"
    assert isinstance(llm, SimulatedUserFeedback)
    assert (llm.expertise, llm.reference, llm.verdict) == ("expert", True, False)

    chain = get_feedback("binary+llm:no-reference:novice", feedback_model=model)
    binary, llm = (_inner(p) for p in chain)
    assert isinstance(binary, BinaryFeedback)
    assert isinstance(llm, SimulatedUserFeedback)
    assert (llm.reference, llm.expertise) == (False, "novice")

    llm = _inner(get_feedback("llm:binary", feedback_model=model)[0])
    assert isinstance(llm, SimulatedUserFeedback) and llm.verdict and llm.kind == "binary"
    assert isinstance(_inner(get_feedback("critic", feedback_model=model)[0]), CritiqueFeedback)
    assert isinstance(_inner(get_feedback("checklist", feedback_model=model)[0]), ChecklistFeedback)
    assert isinstance(_inner(get_feedback("self", policy_model=policy)[0]), SelfFeedback)
    share = _inner(get_feedback("tests:share=0.25")[0])
    assert isinstance(share, UnitTestFeedback) and (share.coverage, share.share) == (
        "partial",
        0.25,
    )
    # `none` alone is kept; composed with others it is dropped (it adds nothing anyway).
    assert [type(p) for p in get_feedback("none")] == [NoFeedback]
    assert [type(_inner(p)) for p in get_feedback("none+binary")] == [BinaryFeedback]
    assert feedback_needs("tests+llm") == {"runner", "feedback_model"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", r"unknown feedback kind 'nonsense' in 'nonsense'; known: none, unary"),
        ("binary+", r"empty part"),
        ("llm:loud", r"unknown option 'loud' for feedback kind 'llm' in 'llm:loud'.*novice"),
        ("llm:novice:expert", r"contradict"),
        ("llm:binary:novice", r"binary verdict has no expertise"),
        ("llm:persona=pirate", r"unknown persona 'pirate'"),
        ("tests:full:share=0.3", r"share= goes with partial"),
        ("tests:share=2", r"share must be in"),
        ("binary:leak=hide", r"leak='hide'.*flag, redact, regenerate"),
        ("llm", r"needs a feedback model"),
        ("self", r"needs a policy model"),
        ("replay:", r"replay needs a run directory"),
    ],
)
def test_bad_specs_name_the_spec_and_the_known_choices(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_feedback(spec)


def test_parse_feedback_spec_needs_no_models() -> None:
    parts = parse_feedback_spec("tests:partial+llm:no-reference:persona=busy:leak=redact")
    assert [p.kind for p in parts] == ["tests", "llm"]
    assert parts[1].flags == {"reference": "no-reference"}
    assert parts[1].values == {"persona": "busy", "leak": "redact"}


def test_describe_feedback_kinds_covers_every_kind() -> None:
    rows = describe_feedback_kinds()
    assert [r["kind"] for r in rows] == [*FEEDBACK_PROVIDERS, "replay:<run-dir>"]
    for row in rows:
        assert set(row) == {"kind", "options", "shows", "sees_reference", "needs"}
        assert row["shows"] and row["sees_reference"]
    llm = next(r for r in rows if r["kind"] == "llm")
    assert {"no-reference", "binary", "novice", "expert"} <= set(llm["options"])


async def test_later_providers_see_earlier_events_in_order() -> None:
    seen: list[tuple[str, ...]] = []

    class Recorder:
        name = "recorder"

        async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
            seen.append(tuple(e.content for e in ctx.earlier_feedback))
            return None

    chain = [*get_feedback("binary+unary:fixed"), Recorder()]
    ctx = context(reasoning_task())
    out: list[FeedbackEvent] = []
    for provider in chain:  # what episode.py's _collect_feedback does
        step = FeedbackContext(
            task=ctx.task,
            turn=ctx.turn,
            action=ctx.action,
            verdict=ctx.verdict,
            messages=ctx.messages,
            events=(*ctx.events, *out),
        )
        event = await provider.feedback(step)
        if event is not None:
            out.append(event)
    assert [e.content for e in out] == ["Your answer is wrong.", "Let's try again."]
    assert seen == [("Your answer is wrong.", "Let's try again.")]


# --- none, unary, binary -----------------------------------------------------------------------


class _ExactChecker:
    name = "exact"

    async def check(self, answer: str, task: Task, runner: CodeRunner) -> CheckResult:
        ok = answer.strip() == task.reference
        return CheckResult(correct=ok, score=float(ok))


class _NoSandbox:
    async def run_program(
        self, code: str, timeout_s: float = 10.0, *, output_limit: int | None = None
    ) -> ProgramResult:
        raise AssertionError("no code runs in this test")

    def session(self) -> object:
        raise AssertionError("no code runs in this test")


class _Listening:
    """A scripted policy that keeps the messages of every call."""

    def __init__(self) -> None:
        self.inner = ScriptedModel("wrong")
        self.name = self.inner.name
        self.calls: list[list[Message]] = []

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.calls.append(list(messages))
        return await self.inner.generate(messages, params, context)

    async def aclose(self) -> None:
        return None


async def _episode_messages(spec: str) -> tuple[list[Message], Episode]:
    policy = _Listening()
    episode = await run_episode(
        task=reasoning_task(),
        policy=policy,
        params=GenerateParams(),
        checker=_ExactChecker(),
        sandboxes=_NoSandbox(),
        feedback=get_feedback(spec),
        limits=EpisodeLimits(max_turns=3, max_proposals=3),
        run_id="r",
        config_hash="c",
    )
    return policy.calls[-1], episode


async def test_none_gives_the_policy_nothing_at_all() -> None:
    messages, episode = await _episode_messages("none")
    observations = [m.content for m in messages if m.role == "user"][1:]
    assert len(observations) == 2
    for text in observations:
        lines = text.splitlines()
        assert lines[0] == "Observation:"
        assert all(line.startswith(("You have", "You should")) for line in lines[1:]), text
        assert "wrong" not in text.lower()
    assert not [e for e in episode.events if isinstance(e, FeedbackEvent)]


async def test_binary_is_mints_no_feedback_line() -> None:
    messages, episode = await _episode_messages("binary")
    observations = [m.content for m in messages if m.role == "user"][1:]
    assert all("Your answer is wrong." in text for text in observations)
    events = [e for e in episode.events if isinstance(e, FeedbackEvent)]
    assert (events[0].kind, events[0].source, events[0].saw_reference) == (
        "binary",
        "rule:checker-verdict",
        True,
    )


async def test_unary_only_after_wrong_proposals() -> None:
    unary = UnaryFeedback()
    task = reasoning_task()
    assert await unary.feedback(context(task, kind="execute", content="print(1)")) is None
    assert await unary.feedback(context(task, kind="invalid", content="")) is None
    assert await unary.feedback(context(task, content="36", correct=True)) is None
    event = await unary.feedback(context(task, content="35", correct=False, turn=2))
    assert event is not None and event.kind == "unary" and event.content in PHRASINGS
    assert "wrong" not in event.content.lower() and event.saw_reference
    # Deterministic per task and turn, and varied over turns.
    again = await UnaryFeedback().feedback(context(task, content="35", correct=False, turn=2))
    assert again is not None and again.content == event.content
    texts = set()
    for turn in range(1, 20):
        e = await unary.feedback(context(task, content="35", correct=False, turn=turn))
        assert e is not None
        texts.add(e.content)
    assert len(texts) > 1
    fixed = await UnaryFeedback(fixed=True).feedback(context(task, turn=5))
    assert fixed is not None and fixed.content == "Let's try again."


# --- model-based providers ---------------------------------------------------------------------


async def test_llm_prompt_holds_the_reference_only_when_it_saw_it() -> None:
    task = reasoning_task(reference="1234")
    with_ref = CannedModel(["Recount the weeks."])
    event = await SimulatedUserFeedback(with_ref).feedback(context(task, content="35"))
    assert event is not None and event.saw_reference
    assert "1234" in with_ref.prompts[0] and "Never reveal it" in with_ref.prompts[0]

    without = CannedModel(["Recount the weeks."])
    event = await SimulatedUserFeedback(without, reference=False).feedback(context(task))
    assert event is not None and not event.saw_reference
    assert "1234" not in without.prompts[0] and "Never reveal it" not in without.prompts[0]
    assert (event.kind, event.source, event.expertise) == ("textual", "model:canned", "expert")
    assert event.content == "Recount the weeks."


async def test_llm_prompt_shows_task_trajectory_and_example() -> None:
    model = CannedModel(["Feedback: Check the multiplication.\nAssistant: <solution>"])
    ctx = context(
        reasoning_task(),
        kind="execute",
        content="print(3 * 11)",
        history=[("execute", "x = 3")],
        observation="33",
    )
    event = await SimulatedUserFeedback(model, expertise="novice", persona="busy").feedback(ctx)
    prompt = model.prompts[0]
    assert "Jim reads 3 books" in prompt
    assert "<execute> x = 3 </execute>" in prompt and "Observation:\n33" in prompt
    assert "Here is an example" in prompt and "without expert knowledge" in prompt
    assert "busy professional" in prompt
    # The label and the runaway next turn are cut off.
    assert event is not None and event.content == "Check the multiplication."
    assert event.expertise == "novice"
    # The role and the rules are the system message; the task and its trajectory the user's.
    system, user = model.messages[0]
    assert system.role == "system" and "You are not the assistant" in system.content
    assert user.role == "user" and "Jim reads 3 books" in user.content
    assert "Jim reads" not in system.content and "====" not in system.content + user.content


def test_to_messages_splits_only_at_a_whole_marker_line() -> None:
    assert to_messages("just a prompt") == [Message(role="user", content="just a prompt")]
    inline = f"say {USER_MARKER} inline"
    assert to_messages(inline) == [Message(role="user", content=inline)]
    assert to_messages(f"rules\n{USER_MARKER}\ntask") == [
        Message(role="system", content="rules"),
        Message(role="user", content="task"),
    ]


async def test_template_hashes_are_recorded() -> None:
    model = CannedModel(["Look again.", "VERDICT: BAD", "First wrong step: 2", "Review: fine"])
    task = reasoning_task()
    events = [
        await SimulatedUserFeedback(model).feedback(context(task)),
        await SimulatedUserFeedback(model, verdict=True).feedback(context(task)),
        await CritiqueFeedback(model).feedback(context(task)),
        await SelfFeedback(model).feedback(context(task)),
    ]
    names = ["user_feedback.j2", "user_verdict.j2", "critic.j2", "self_critique.j2"]
    for event, name in zip(events, names, strict=True):
        template = load_template(name)
        assert event is not None and event.template_hash == template.hash
        assert re.fullmatch(r"[0-9a-f]{16}", template.hash) and template.version.isdigit()
    assert set(template_versions()) >= set(names)


async def test_llm_binary_verdict_is_parsed_not_searched() -> None:
    model = CannedModel(["The code looks GOOD at first, but the loop is wrong. This is NOT GOOD."])
    provider = SimulatedUserFeedback(model, verdict=True)
    event = await provider.feedback(context(reasoning_task()))
    assert event is not None and (event.kind, event.content) == ("binary", "This is BAD.")
    assert "VERDICT: GOOD" in model.prompts[0]
    good = await SimulatedUserFeedback(CannedModel(["VERDICT: GOOD"]), verdict=True).feedback(
        context(reasoning_task())
    )
    assert good is not None and good.content == "This is GOOD."
    shrug = SimulatedUserFeedback(CannedModel(["Hmm."]), verdict=True)
    assert await shrug.feedback(context(reasoning_task())) is None and shrug.unparsed == 1


async def test_feedback_model_calls_are_recorded_for_cost_accounting() -> None:
    emitted: list[Event] = []
    model = CannedModel(["Look again."])
    await SimulatedUserFeedback(model).feedback(context(reasoning_task(), emit=emitted.append))
    assert len(emitted) == 1 and isinstance(emitted[0], ModelCallEvent)
    assert (emitted[0].role, emitted[0].model, emitted[0].output) == (
        "feedback",
        "canned",
        "Look again.",
    )


async def test_critic_names_the_first_wrong_step() -> None:
    model = CannedModel(["First wrong step: 3 * 11\nWhy it is wrong: 12 weeks, not 11."])
    event = await CritiqueFeedback(model, reference=False).feedback(context(reasoning_task()))
    assert event is not None and event.kind == "critique" and not event.saw_reference
    assert event.content.startswith("First wrong step")
    assert "FIRST step that is wrong" in model.prompts[0] and "36" not in model.prompts[0]


async def test_checklist_marks_each_item_and_skips_tasks_without_one() -> None:
    items = ["States the number of books", "Multiplies books per week by weeks"]
    task = reasoning_task().model_copy(update={"checklist": tuple(items)})
    model = CannedModel(["1. YES - it gives a number\n2. NO - it multiplied by 11"])
    event = await ChecklistFeedback(model).feedback(context(task))
    assert event is not None and event.kind == "checklist" and not event.saw_reference
    assert event.content.splitlines() == [
        "Checklist (1 of 2 satisfied):",
        "[x] 1. States the number of books (it gives a number)",
        "[ ] 2. Multiplies books per week by weeks (it multiplied by 11)",
    ]
    assert "2. Multiplies books per week by weeks" in model.prompts[0]
    unused = CannedModel(["1. YES"])
    assert await ChecklistFeedback(unused).feedback(context(reasoning_task())) is None
    assert unused.prompts == []


async def test_self_feedback_asks_the_policy_without_the_reference() -> None:
    policy = CannedModel(["I multiplied by 11 instead of 12."], name="policy-x")
    provider = _inner(get_feedback("self", policy_model=policy)[0])
    assert isinstance(provider, SelfFeedback)
    event = await provider.feedback(context(reasoning_task(reference="36")))
    assert event is not None and (event.kind, event.source) == ("self", "model:policy-x")
    assert not event.saw_reference and "36" not in policy.prompts[0]
    assert await provider.feedback(context(reasoning_task(), kind="execute", content="1")) is None


# --- leaks on the way to the policy ------------------------------------------------------------


async def test_leaks_are_flagged_by_default() -> None:
    model = CannedModel(["Close! The answer is 36."])
    [provider] = get_feedback("llm", feedback_model=model)
    event = await provider.feedback(context(reasoning_task(reference="36")))
    assert event is not None and event.content == "Close! The answer is 36."
    assert event.leak.numeric and event.leak.any


async def test_leaks_can_be_redacted() -> None:
    model = CannedModel(["Close! The answer is 36."])
    [provider] = get_feedback("llm:leak=redact", feedback_model=model)
    event = await provider.feedback(context(reasoning_task(reference="36")))
    assert event is not None and event.content == "Close! The answer is [redacted]."
    assert event.leak == LeakFlags()
    assert isinstance(provider, LeakGuardedFeedback) and provider.stats.redacted == 1


async def test_leaks_can_be_regenerated() -> None:
    model = CannedModel(["The answer is C.", "Count the legs again, pair by pair."])
    [provider] = get_feedback("llm", feedback_model=model, leak="regenerate")
    event = await provider.feedback(context(mmlu_task("c"), content="a"))
    assert event is not None and event.content == "Count the legs again, pair by pair."
    assert not event.leak.any
    assert "gave the solution away" in model.prompts[1] and "The answer is C." in model.prompts[1]
    assert model.params[1].seed != model.params[0].seed  # a new draft, not a cached one
    assert isinstance(provider, LeakGuardedFeedback)
    assert (provider.stats.leaked, provider.stats.regenerated_clean) == (1, 1)


async def test_regeneration_gives_up_and_redacts() -> None:
    model = CannedModel(["The answer is C."])
    provider = LeakGuardedFeedback(
        SimulatedUserFeedback(model), LeakPolicy(mode="regenerate", max_regenerations=2)
    )
    event = await provider.feedback(context(mmlu_task("c"), content="a"))
    assert len(model.prompts) == 3
    assert event is not None and event.content == "The answer is [redacted]."


# The audit trail: what the provider wrote, what the guard did, what the policy got. Before the
# fix, a redacted or regenerated leak left only the flags of the delivered text (all False).


async def test_a_redacted_leak_keeps_its_raw_flags_and_the_intervention() -> None:
    model = CannedModel(["Close! The answer is 36."])
    [provider] = get_feedback("llm:leak=redact", feedback_model=model)
    event = await provider.feedback(context(reasoning_task(reference="36")))
    assert event is not None and event.content == "Close! The answer is [redacted]."
    assert event.leak == LeakFlags()  # what the policy received
    assert event.raw_leak is not None and event.raw_leak.numeric and event.original_leak.any
    assert (event.intervention, event.regenerations) == ("redacted", 0)


async def test_a_regenerated_leak_keeps_its_raw_flags_and_the_number_of_drafts() -> None:
    model = CannedModel(["The answer is C.", "The answer is (C).", "Count the legs again."])
    [provider] = get_feedback("llm:leak=regenerate:regen=3", feedback_model=model)
    event = await provider.feedback(context(mmlu_task("c"), content="a"))
    assert event is not None and event.content == "Count the legs again."
    assert event.leak == LeakFlags() and event.raw_leak == LeakFlags(option_letter=True)
    assert (event.intervention, event.regenerations) == ("regenerated", 2)


async def test_regeneration_that_gives_up_says_so() -> None:
    model = CannedModel(["The answer is C."])
    [provider] = get_feedback("llm:leak=regenerate:regen=2", feedback_model=model)
    event = await provider.feedback(context(mmlu_task("c"), content="a"))
    assert event is not None and event.content == "The answer is [redacted]."
    assert event.raw_leak == LeakFlags(option_letter=True) and not event.leak.any
    assert (event.intervention, event.regenerations) == ("gave_up", 2)


async def test_an_empty_new_draft_does_not_erase_the_leak_from_the_record() -> None:
    # Before: the guard returned None, so the leak left no event at all.
    model = CannedModel(["The answer is C.", ""])
    [provider] = get_feedback("llm:leak=regenerate:regen=3", feedback_model=model)
    event = await provider.feedback(context(mmlu_task("c"), content="a"))
    assert event is not None and event.content == "The answer is [redacted]."
    assert event.raw_leak == LeakFlags(option_letter=True)
    assert (event.intervention, event.regenerations) == ("gave_up", 1)
    assert len(model.prompts) == 2  # no further drafts asked for after an empty one


async def test_flagged_and_clean_feedback_record_no_intervention() -> None:
    [flagged] = get_feedback("llm", feedback_model=CannedModel(["The answer is 36."]))
    event = await flagged.feedback(context(reasoning_task(reference="36")))
    assert event is not None and event.leak == event.raw_leak and event.leak.numeric
    assert event.intervention == "none"
    [clean] = get_feedback("llm:leak=redact", feedback_model=CannedModel(["Check line 2."]))
    event = await clean.feedback(context(reasoning_task(reference="36")))
    assert event is not None and event.raw_leak == LeakFlags() and event.intervention == "none"


def test_feedback_events_stored_before_the_audit_fields_still_load() -> None:
    old = (
        '{"type": "feedback", "turn": 2, "at": "2024-01-01T00:00:00Z", "kind": "textual",'
        ' "source": "model:m", "content": "x", "leak": {"numeric": true}}'
    )
    event = FeedbackEvent.model_validate_json(old)
    assert event.raw_leak is None and event.original_leak == LeakFlags(numeric=True)
    assert (event.intervention, event.regenerations, event.replayed_from) == ("none", 0, None)


def test_leak_rate_per_source() -> None:
    leak = LeakFlags(numeric=True)
    events: list[Event] = [
        FeedbackEvent(turn=1, kind="textual", source="model:a", content="x", leak=leak),
        FeedbackEvent(turn=2, kind="textual", source="model:a", content="y"),
        FeedbackEvent(turn=1, kind="binary", source="rule:checker-verdict", content="z"),
        ActionEvent(turn=1, kind="solution", content="1", raw="1"),
    ]
    assert leak_rate(events) == {"model:a": 0.5, "rule:checker-verdict": 0.0}


# --- replay ------------------------------------------------------------------------------------


def _recorded_run(run_dir: Path) -> None:
    events: list[Event] = [
        ActionEvent(turn=1, kind="execute", content="print(3 * 11)", raw="r"),
        FeedbackEvent(turn=1, kind="textual", source="model:old", content="Recorded one."),
        ActionEvent(turn=2, kind="solution", content="33", raw="r", proposal=1),
        FeedbackEvent(turn=2, kind="binary", source="rule:checker-verdict", content="Your answer is wrong."),
        FeedbackEvent(turn=2, kind="textual", source="model:old", content="Recorded two."),
    ]  # fmt: skip
    episode = Episode(
        key=EpisodeKey(suite="gsm8k", task_id="7"),
        run_id="old",
        config_hash="c",
        model="m",
        max_turns=3,
        max_proposals=2,
        events=events,
    )
    with RunStore(run_dir) as store:
        store.create_run("old", "c", {"config": {"feedback": "binary+llm"}})
        store.save_episode(episode)


async def test_replay_reuses_recorded_feedback_and_goes_live_on_divergence(
    tmp_path: Path,
) -> None:
    _recorded_run(tmp_path / "old")
    live_model = CannedModel(["Live feedback."])
    chain = get_feedback(f"replay:{tmp_path / 'old'}", feedback_model=live_model)
    assert [p.name for p in chain] == ["replay:binary", "replay:llm"]
    task = reasoning_task()

    given: list[FeedbackEvent] = []

    async def run(ctx: FeedbackContext) -> list[str]:
        out: list[str] = []
        for provider in chain:
            event = await provider.feedback(ctx)
            if event is not None:
                out.append(event.content)
                given.append(event)
        return out

    # Same history: turn 1 (the binary provider gave nothing), then turn 2.
    assert await run(context(task, kind="execute", content="print(3 * 11)", correct=None)) == [
        "Recorded one."
    ]
    same = context(task, content="33", turn=2, history=[("execute", "print(3 * 11)")])
    assert await run(same) == ["Your answer is wrong.", "Recorded two."]
    assert live_model.prompts == []
    # A different attempt at turn 2: the live chain answers.
    other = context(task, content="34", turn=2, history=[("execute", "print(3 * 11)")])
    assert await run(other) == ["Your answer is wrong.", "Live feedback."]
    assert dict(chain[0].stats) == {"replayed": 2, "live": 1}
    counters = chain[0].counters()  # type: ignore[attr-defined]
    assert {k: v for k, v in counters.items() if not k.startswith("live.leak.")} == {
        "turns.replayed": 2,  # the binary position was asked on two recorded turns,
        "turns.live": 1,
        "events.replayed": 1,  # and the recording had a binary event for one of them
        "events.live": 1,
    }
    assert counters["live.leak.checked"] == 1
    assert chain[1].counters()["events.replayed"] == 2  # type: ignore[attr-defined]
    # Replayed events say where they were first given; live ones do not.
    origins = [e.replayed_from for e in given]
    assert [o is not None for o in origins] == [True, True, True, False, False]
    first = origins[0]
    assert first is not None
    assert (first.run_id, first.run_dir, first.suite, first.task_id, first.epoch, first.turn) == (
        "old",
        str(tmp_path / "old"),
        "gsm8k",
        "7",
        0,
        1,
    )
    assert [o.turn for o in origins if o is not None] == [1, 2, 2]
    assert given[0].at > first.at  # given now, recorded then


def test_replay_of_a_missing_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no mulligan\.sqlite"):
        get_feedback(f"replay:{tmp_path / 'nothing'}")
    assert not (tmp_path / "nothing").exists()
