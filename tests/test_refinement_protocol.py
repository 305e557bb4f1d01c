"""The refinement protocol: --stop never, challenge feedback, checklist scoring by the judge, and
the verdict-free feedback kinds (issue 15, item 3)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import pytest

from mulligan.config import ConfigError, RunConfig
from mulligan.engine import execute_run
from mulligan.engine.components import build_components
from mulligan.episode import EpisodeLimits, StopRule, run_episode
from mulligan.events import ChallengeClaim, Episode, FeedbackEvent, PromptEvent, VerdictEvent
from mulligan.feedback import FEEDBACK_PROVIDERS, get_feedback, parse_feedback_spec, verdict_parts
from mulligan.feedback.challenge import ChallengeFeedback, perturbations, wrong_claim
from mulligan.flags import flag_type
from mulligan.judge import LLMJudge
from mulligan.models import CallContext, Completion, GenerateParams
from mulligan.prompts import EMPTY_REPLY
from mulligan.tasks import Task, get_checker, load_tasks
from mulligan.tasks.checkers.numbers import parse_number
from test_feedback_support import CannedModel, context, mmlu_task, reasoning_task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Replies:
    """A policy that answers from a fixed list."""

    name = "test/replies"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.calls = 0

    async def generate(
        self, messages: Any, params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.calls += 1
        return Completion(text=self.replies[self.calls - 1], model=self.name)

    async def aclose(self) -> None:
        return None


async def _episode(
    task: Task, answers: list[str], feedback: str = "none", judge: LLMJudge | None = None, **kw: Any
) -> Episode:
    policy = Replies([f"<solution> {a} </solution>" for a in answers])
    return await run_episode(
        task=task,
        policy=policy,
        params=GenerateParams(temperature=0.0),
        checker=get_checker(task.checker),
        sandboxes=object(),  # type: ignore[arg-type]  # reasoning tasks never run code
        feedback=get_feedback(feedback, CannedModel(["Looks fine."]), CannedModel(["Hmm."])),
        limits=EpisodeLimits(**kw),
        run_id="r",
        config_hash="h",
        judge=judge,
    )


def _verdicts(episode: Episode) -> list[bool]:
    return [e.correct for e in episode.events if isinstance(e, VerdictEvent)]


async def test_stop_never_judges_every_proposal_and_keeps_the_first_success() -> None:
    task = reasoning_task("36")
    never = await _episode(task, ["36", "30", "36"], max_turns=3, max_proposals=3, stop="never")
    assert _verdicts(never) == [True, False, True]
    assert never.success and never.success_turn == 1
    assert never.terminate_reason == "max_proposals" and never.turns_used == 3
    mint = await _episode(task, ["36", "30", "36"], max_turns=3, max_proposals=3)
    assert _verdicts(mint) == [True] and mint.terminate_reason == "solved"


async def test_self_feedback_follows_right_answers_under_stop_never() -> None:
    task = reasoning_task("36")
    episode = await _episode(task, ["36", "36"], "self", max_turns=2, max_proposals=2, stop="never")
    feedback = [e for e in episode.events if isinstance(e, FeedbackEvent)]
    assert [(e.turn, e.kind) for e in feedback] == [(1, "self"), (2, "self")]


def test_stop_never_refuses_reject_repeats_and_the_cli_offers_the_same_choices() -> None:
    with pytest.raises(ValueError, match="would tell the policy its verdict"):
        EpisodeLimits(stop="never", reject_repeats=True)
    assert get_args(flag_type("stop")) == get_args(StopRule)


# Every kind and option that declares it does not reveal the verdict, built from its options.
_VERDICT_FREE = [
    "none",
    "self",
    "challenge",
    "challenge:none",
    "challenge:indirect",
    "llm:no-reference",
    "llm:no-reference:binary",
    "critic:no-reference",
    "checklist",
]


def test_the_verdict_free_list_is_every_kind_that_declares_it() -> None:
    declared = {
        spec for spec in _VERDICT_FREE if not verdict_parts(spec)
    }  # each listed spec declares itself verdict-free
    assert declared == set(_VERDICT_FREE)
    assert verdict_parts("binary+unary+tests+llm+critic+challenge:right+checklist:reference") == [
        "binary", "unary", "tests", "llm", "critic", "challenge:right", "checklist:reference"
    ]  # fmt: skip
    kinds = {parse_feedback_spec(s)[0].kind for s in _VERDICT_FREE}
    revealing = {"binary", "unary", "tests"}
    assert kinds | revealing == set(FEEDBACK_PROVIDERS)  # a new kind must be classified here


@pytest.mark.parametrize("spec", _VERDICT_FREE)
async def test_verdict_free_feedback_reads_the_same_after_right_and_wrong(spec: str) -> None:
    task = reasoning_task("36", checklist=["States a number.", "Shows the product."])
    outputs = []
    for correct in (True, False):
        model = CannedModel(lambda prompt: "1. YES - ok\n2. NO - no\nThis is GOOD. Fine.")
        (provider,) = get_feedback(spec, model, model)
        event = await provider.feedback(context(task, content="35", correct=correct))
        outputs.append((None if event is None else (event.kind, event.content), model.prompts))
    assert outputs[0] == outputs[1]


async def test_judge_scores_checklists_and_reads_feedback_verdicts() -> None:
    task = reasoning_task("36").model_copy(update={"checklist": ("A number.", "The product.")})
    judge_model = CannedModel(
        lambda p: (
            "1. YES - fine\n2. NO - missing"
            if "Checklist:" in p
            else "VERDICT: GOOD"
            if "Feedback:" in p
            else "VERDICT: BAD"
        )
    )
    judge = LLMJudge(judge_model, reads_feedback=True)  # type: ignore[arg-type]
    episode = await _episode(task, ["30", "36"], "self", judge, max_turns=2, stop="never")
    verdicts = [e for e in episode.events if isinstance(e, VerdictEvent)]
    assert [v.checklist for v in verdicts] == [(True, False), (True, False)]
    assert verdicts[0].checklist_score == 0.5
    feedback = [e for e in episode.events if isinstance(e, FeedbackEvent)]
    assert [e.stated_verdict for e in feedback] == [True, True]
    judge_calls = [e for e in episode.events if getattr(e, "role", None) == "judge"]
    assert len(judge_calls) == 5  # 2 checklists, 2 feedback readings, 1 second opinion (30)


async def test_checklists_of_a_task_file_reach_the_judge() -> None:
    # The one home of a checklist is Task.checklist: a task file's (and RefineBench's) are judged.
    (task,) = [t for t in load_tasks(f"file:{EXAMPLES / 'tasks.jsonl'}") if t.id == "capital"]
    judge = LLMJudge(CannedModel(["1. YES - a city\n2. NO - not Paris"]))  # type: ignore[arg-type]
    episode = await _episode(task, ["Lyon"], "none", judge, max_turns=1, stop="never")
    (verdict,) = [e for e in episode.events if isinstance(e, VerdictEvent)]
    assert verdict.checklist == (True, False) and verdict.checklist_score == 0.5


# ---- challenge claims ----


def test_a_number_is_perturbed_beyond_every_tolerance_and_never_to_the_current_answer() -> None:
    reference = parse_number("36")
    assert reference is not None
    values = perturbations(reference, parse_number("72"))
    assert values and "72" not in values and "36" not in values
    assert all(abs(float(v) - 36) > 3.6 for v in values)
    assert perturbations(parse_number("0.25") or 0, None)[:2] == ["0.375", "0.125"]


async def test_a_wrong_claim_is_rejected_by_the_checker_and_recorded_with_its_origin() -> None:
    task = reasoning_task("36")
    event = await ChallengeFeedback().feedback(context(task, content="36", correct=True))
    assert event is not None and event.claim is not None
    claim = event.claim
    assert claim.origin == "perturbed-reference" and claim.correct is False
    assert event.content == f"Are you sure? I think the answer is {claim.answer}."
    result = await get_checker("gsm8k").check(str(claim.answer), task, None)  # type: ignore[arg-type]
    assert not result.correct
    again = await ChallengeFeedback().feedback(context(task, content="36", correct=True))
    assert again is not None and again.claim == claim  # the same claim on a rerun


@pytest.mark.parametrize(
    ("task", "current", "origin"),
    [
        (mmlu_task("c"), "A", "other-option"),
        (reasoning_task("True"), "True", "negation"),
        (reasoning_task("Paris, France"), "Lyon", "none"),
    ],
)
def test_wrong_claims_by_task_type(task: Task, current: str, origin: str) -> None:
    answer, found = wrong_claim(context(task, content=current, correct=False), current)
    assert found == origin
    if origin == "other-option":
        assert answer in {"B", "D"}
    if origin == "negation":
        assert answer == "False"


def test_a_free_text_claim_falls_back_on_the_policys_earlier_wrong_answer() -> None:
    task = reasoning_task("Paris")
    ctx = context(task, content="Lyon", correct=False, turn=2)
    earlier = VerdictEvent(
        turn=1, proposal=1, answer="Marseille", correct=False, score=0.0, checker="t"
    )
    ctx = replace(ctx, events=(earlier, *ctx.events))
    assert wrong_claim(ctx, "Lyon") == ("Marseille", "previous-answer")


async def test_right_and_bare_claims() -> None:
    task = mmlu_task("c")
    right = await ChallengeFeedback("right", "indirect").feedback(
        context(task, content="A", correct=False)
    )
    assert right is not None and right.claim == ChallengeClaim(
        answer="C", correct=True, origin="reference", style="indirect"
    )
    assert right.content == "Hmm, I'm not sure about that. Could the answer be C?"
    bare = await ChallengeFeedback("none").feedback(context(task, content="A", correct=False))
    assert bare is not None and bare.claim is not None
    assert bare.content == "Are you sure? I don't think that's right."
    assert bare.claim.answer is None and bare.claim.correct is True  # "wrong" was right
    assert not bare.saw_reference


def test_challenge_options_parse_and_contradictions_are_refused() -> None:
    (part,) = parse_feedback_spec("challenge:right:indirect")
    assert part.flags == {"claim": "right", "style": "indirect"}
    with pytest.raises(ValueError, match="contradict"):
        parse_feedback_spec("challenge:right:wrong")


class _Overflowing(CannedModel):
    """A judge whose context window every checklist prompt overflows."""

    async def generate(self, messages: Any, params: Any, context: Any = None) -> Completion:
        from mulligan.models.base import ContextWindowExceeded

        if "Checklist:" in messages[-1].content:
            raise ContextWindowExceeded("the prompt has 5908 tokens (test)")
        return await super().generate(messages, params, context)


async def test_a_checklist_too_long_for_the_judge_leaves_items_unjudged_not_the_episode() -> None:
    task = reasoning_task("36").model_copy(update={"checklist": ("A number.", "The product.")})
    judge = LLMJudge(_Overflowing(["VERDICT: BAD"]))  # type: ignore[arg-type]
    episode = await _episode(task, ["36"], judge=judge, max_turns=1, stop="never")
    assert episode.status == "finished" and episode.success
    (verdict,) = [e for e in episode.events if isinstance(e, VerdictEvent)]
    assert verdict.checklist == (None, None) and verdict.checklist_score is None
    errors = [e for e in episode.events if getattr(e, "where", None) == "judge:checklist"]
    assert len(errors) == 1 and not errors[0].fatal


class _TooSmall(CannedModel):
    """A judge whose context window no prompt fits (a 27,000-character reference does that)."""

    async def generate(self, messages: Any, params: Any, context: Any = None) -> Completion:
        from mulligan.models.base import ContextWindowExceeded

        raise ContextWindowExceeded("the prompt has 6040 tokens, leaving 0 (test)")


async def test_a_second_opinion_too_long_for_the_judge_leaves_the_checkers_verdict() -> None:
    task = reasoning_task("36").model_copy(update={"checklist": ("A number.",)})
    judge = LLMJudge(_TooSmall([]))  # type: ignore[arg-type]
    episode = await _episode(task, ["30", "36"], judge=judge, max_turns=2, stop="never")
    assert episode.status == "finished" and _verdicts(episode) == [False, True]
    errors = [(e.turn, e.where) for e in episode.events if getattr(e, "where", "").startswith("j")]
    assert errors == [(1, "judge:verdict"), (1, "judge:checklist"), (2, "judge:checklist")]


# ---- the reply answer format: the reply is the answer, every turn a proposal ----


class _Recording(Replies):
    """``Replies`` that keeps what each call was given."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies)
        self.seen: list[tuple[list[Any], GenerateParams]] = []

    async def generate(
        self, messages: Any, params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        self.seen.append((list(messages), params))
        return await super().generate(messages, params, context)


async def _reply_episode(
    task: Task, replies: list[str], judge: LLMJudge | None = None, **kw: Any
) -> tuple[Episode, _Recording]:
    policy = _Recording(replies)
    episode = await run_episode(
        task=task,
        policy=policy,
        params=GenerateParams(temperature=0.0),
        checker=get_checker(task.checker),
        sandboxes=object(),  # type: ignore[arg-type]  # no tools: nothing runs
        feedback=get_feedback("binary", None, None),
        limits=EpisodeLimits(answer_format="reply", **kw),
        run_id="r",
        config_hash="h",
        judge=judge,
    )
    return episode, policy


async def test_reply_format_judges_every_reply_and_asks_again_after_an_empty_one() -> None:
    replies = ["He reads 30 books.", "  ", "<thought>3 x 12</thought>\n36"]
    episode, policy = await _reply_episode(
        reasoning_task("36"), replies, max_turns=3, max_proposals=3
    )
    prompt = episode.events[0]
    assert isinstance(prompt, PromptEvent) and prompt.template == "refine"
    first = prompt.messages[0].content
    assert "<execute>" not in first and "<solution>" not in first and "Jim reads" in first
    verdicts = [(v.turn, v.answer) for v in episode.events if isinstance(v, VerdictEvent)]
    assert verdicts == [(1, "He reads 30 books."), (3, "36")] and _verdicts(episode) == [
        False,
        True,
    ]
    assert (episode.success_turn, episode.proposals_used) == (3, 2)
    second, third = policy.seen[1][0][-1].content, policy.seen[2][0][-1].content
    assert second.endswith("You can revise your answer 2 more times.")
    assert EMPTY_REPLY in third and "I don't understand" not in third
    assert all("</solution>" not in params.stop for _, params in policy.seen)


async def test_reply_format_scores_the_checklist_of_every_answer() -> None:
    task = reasoning_task("36").model_copy(update={"checklist": ("A number.", "The product.")})
    judge = LLMJudge(CannedModel(["1. YES - a number\n2. NO - not 36"] * 4))  # type: ignore[arg-type]
    episode, _ = await _reply_episode(
        task, ["About 30.", "Thirty."], judge, max_turns=2, max_proposals=2, stop="never"
    )
    verdicts = [v for v in episode.events if isinstance(v, VerdictEvent)]
    assert [(v.answer, v.checklist) for v in verdicts] == [
        ("About 30.", (True, False)),
        ("Thirty.", (True, False)),
    ]


def test_reply_format_refuses_environment_tasks_before_the_run(tmp_path: Path) -> None:
    config = RunConfig(
        model="scripted/reference", tasks=("guess",), answer_format="reply", out=tmp_path / "r"
    )
    with pytest.raises(ConfigError, match=r"--answer-format reply has no tools.*guess"):
        build_components(config)
    assert not (tmp_path / "r").exists()


async def test_a_reply_format_run_solves_with_the_reference_and_names_its_template(
    tmp_path: Path,
) -> None:
    config = RunConfig(
        model="scripted/reference", turns=2, answer_format="reply", out=tmp_path / "r"
    )
    tasks = [reasoning_task(str(n)).model_copy(update={"id": str(n)}) for n in (3, 4)]
    outcome = await execute_run(config, tasks=tasks)
    assert (outcome.finished, outcome.solved) == (2, 2)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert list(manifest["prompt_templates"]) == ["refine.j2"]
    assert manifest["config"]["answer_format"] == "reply"
    assert (
        config.config_hash()
        != config.model_copy(
            update={"episode": config.episode.model_copy(update={"answer_format": "tagged"})}
        ).config_hash()
    )
