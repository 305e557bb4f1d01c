"""The feedback kind registry and the parsed spec: a toy kind registered from outside, the
documented spec-kind -> event-kind mapping, and a spec that serialises back to its text so config
hashes stay what they were."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mulligan.config import ConfigError, RunConfig, build_config
from mulligan.events import FeedbackEvent, FeedbackKind
from mulligan.feedback import (
    FEEDBACK_PROVIDERS,
    FeedbackContext,
    FeedbackPart,
    FeedbackSpec,
    Flags,
    KindInfo,
    LeakGuardedFeedback,
    Value,
    describe_feedback_kinds,
    get_feedback,
    register_feedback_kind,
)
from mulligan.feedback.base import provider_kind
from mulligan.models import ScriptedModel
from test_feedback_support import CannedModel, context, reasoning_task


class Shout:
    """A toy provider: repeats a fixed word after wrong proposals."""

    kind: FeedbackKind = "textual"

    def __init__(self, word: str, times: int) -> None:
        self.name = "shout"
        self.text = " ".join([word] * times)

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        if not ctx.wrong_proposal:
            return None
        return FeedbackEvent(turn=ctx.turn, kind=self.kind, source="rule:shout", content=self.text)


def _build_shout(part: FeedbackPart, _f: object, _p: object) -> Shout:
    word = "NO" if part.flag("volume", "loud") == "loud" else "no"
    return Shout(word, int(part.values.get("times", "1")))


SHOUT = KindInfo(
    "shout",
    "a word, shouted or not",
    "never",
    (Flags("volume", ("loud", "quiet")), Value("times", "<N>")),
    (),
    _build_shout,
    events=("textual",),
)


@pytest.fixture
def shout() -> Iterator[KindInfo]:
    register_feedback_kind(SHOUT)
    yield SHOUT
    del FEEDBACK_PROVIDERS["shout"]


async def test_a_registered_kind_parses_builds_and_is_listed(shout: KindInfo) -> None:
    chain = get_feedback("binary+shout:quiet:times=2:leak=redact")
    assert [p.name for p in chain] == ["binary", "shout"]
    guard = chain[1]
    assert isinstance(guard, LeakGuardedFeedback) and guard.policy.mode == "redact"
    event = await guard.feedback(context(reasoning_task(), correct=False))
    assert event is not None and event.content == "no no"
    assert guard.counters()["leak.checked"] == 1
    row = next(r for r in describe_feedback_kinds() if r["kind"] == "shout")
    assert row["options"] == ["loud", "quiet", "times=<N>", "leak=<mode>", "regen=<N>"]
    with pytest.raises(ValueError, match="contradict"):
        FeedbackSpec.parse("shout:loud:quiet")
    with pytest.raises(ValueError, match=r"options of shout: loud, quiet, times=<N>, leak="):
        FeedbackSpec.parse("shout:whisper")
    assert RunConfig(feedback="shout:loud").feedback.spec.parts[0].kind == "shout"


def test_registering_checks_the_name_and_refuses_duplicates(shout: KindInfo) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_feedback_kind(shout)
    register_feedback_kind(shout, replace=True)
    for bad in ("replay", "a+b", "a:b", "", " x"):
        with pytest.raises(ValueError, match="not usable"):
            register_feedback_kind(KindInfo(bad, "", "", (), (), _build_shout, events=("textual",)))
    with pytest.raises(ValueError, match="event kinds"):
        register_feedback_kind(KindInfo("mute", "", "", (), (), _build_shout, events=()))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("none", "none"),
        ("unary", "unary"),
        ("binary", "binary"),
        ("tests", "tests"),
        ("llm", "textual"),
        ("llm:binary", "binary"),
        ("critic", "critique"),
        ("checklist", "checklist"),
        ("self", "self"),
        ("challenge", "challenge"),
    ],
)
def test_each_kind_produces_the_event_kinds_it_declares(spec: str, expected: str) -> None:
    (provider,) = get_feedback(spec, CannedModel(["ok"]), ScriptedModel("wrong"))
    kind = provider_kind(provider)
    assert kind == expected
    assert kind in FEEDBACK_PROVIDERS[spec.split(":")[0]].events


def test_every_builtin_kind_is_covered_by_the_mapping_test() -> None:
    assert set(FEEDBACK_PROVIDERS) == {
        "none", "unary", "binary", "tests", "llm", "critic", "checklist", "self", "challenge"
    }  # fmt: skip


def test_the_spec_is_parsed_once_and_stored_as_written(tmp_path: Path) -> None:
    config = RunConfig(suite="mint", feedback="tests+llm:expert", feedback_model="scripted/wrong")
    spec = config.feedback.spec
    assert isinstance(spec, FeedbackSpec) and [p.kind for p in spec] == ["tests", "llm"]
    assert spec.needs() == {"runner", "feedback_model"} and spec.replay_dir is None
    assert config.options()["feedback"] == "tests+llm:expert"
    assert config.model_dump(mode="json")["feedback"]["spec"] == "tests+llm:expert"
    assert config.model_dump()["feedback"]["spec"] == "tests+llm:expert"
    assert RunConfig.model_validate_json(config.model_dump_json()) == config
    assert RunConfig.model_validate(config.model_dump()) == config
    # The hashes the plain-string field gave (computed before the spec became a type).
    out = Path("x")
    hashes = {
        "none": "a747c5e9be5f852e",
        "tests+llm:expert": "355651aefaf7570d",
        " binary+llm:no-reference ": "35f87b783449f978",
        "replay:runs/old": "f81515628d3ea079",
    }
    for text, expected in hashes.items():
        cfg = RunConfig(suite="mint", feedback=text, feedback_model="scripted/wrong", out=out)
        assert (cfg.config_hash(), str(cfg.feedback.spec)) == (expected, text)
    replay = RunConfig(feedback="replay:runs/old").feedback.spec
    assert replay.replay_dir == Path("runs/old") and replay.needs() == set()


def test_a_bad_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"feedback: unknown feedback kind 'lm'"):
        build_config(None, {"feedback": "lm"})
    with pytest.raises(ConfigError, match="replay needs a run directory"):
        build_config(None, {"feedback": "replay:"})
