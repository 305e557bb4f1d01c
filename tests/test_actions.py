"""The MINT action parser."""

from __future__ import annotations

import pytest

from mulligan.actions import (
    STOP_SEQUENCES,
    answer_key,
    is_well_formed,
    parse_action,
    parse_in_format,
    restore_stop,
    stop_sequences,
)


def test_solution_and_thought() -> None:
    action = parse_action("<thought> easy </thought> The answer is <solution> 42 </solution>.")
    assert action.kind == "solution"
    assert action.content == "42"
    assert action.thought == "easy"


def test_execute_with_fence_and_indent() -> None:
    action = parse_action("<execute>\n```python\n    x = 1\n    print(x)\n```\n</execute>")
    assert action.kind == "execute"
    assert action.content == "x = 1\nprint(x)"


def test_solution_wins_over_execute_like_mint() -> None:
    action = parse_action("<execute> print(1) </execute> so <solution> 1 </solution>")
    assert action.kind == "solution"
    assert action.content == "1"


def test_reply_cut_by_stop_sequence_is_closed() -> None:
    text = "<thought> run it </thought>\n<execute>\nprint(2 + 2)\n"
    action = parse_action(text)
    assert action.kind == "execute"
    assert action.content == "print(2 + 2)"
    assert action.reply.endswith("</execute>")
    assert restore_stop("no tags") == "no tags"


def test_invalid_and_empty_tags() -> None:
    assert parse_action("I think it is 42.").kind == "invalid"
    assert parse_action("<solution>   </solution>").kind == "invalid"
    assert parse_action("").kind == "invalid"


def test_stop_sequences_prevent_fake_observations() -> None:
    assert "</execute>" in STOP_SEQUENCES
    assert any("Observation:" in s for s in STOP_SEQUENCES)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("6", "6"),
        (" 6.0 ", "6"),
        ("6,000", "6000"),
        ("$6.50$", "6.5"),
        ("'Paris'.", "paris"),
        ("The   Answer", "the answer"),
        ("[1, 2]", "[1, 2]"),
        ("nan", "nan"),
    ],
)
def test_answer_key(raw: str, normal: str) -> None:
    assert answer_key(raw) == normal


@pytest.mark.parametrize(
    ("reply", "well_formed"),
    [
        ("<thought> hm </thought> <solution> 130000 </solution>", True),
        ("<thought> hm </thought>\n<execute>\nprint(1)\n", True),  # cut at the stop sequence
        ("<execute>print(1)</execute>", True),  # the thought is optional
        ("<thought> The answer is <solution> 130000\n</solution>", False),  # unclosed thought
        ("<thought>a</thought><execute>x</execute><solution>1</solution>", False),  # two actions
        ("<thought>a</thought><solution> </solution>", False),  # empty
        ("<thought>a</thought><solution>1</solution> and more", False),  # text after it
        ("Sure! <thought>a</thought><solution>1</solution>", False),  # text before it
        ("<solution>1</solution><thought>a</thought>", False),  # out of order
        ("no tags at all", False),
    ],
)
def test_well_formed_is_the_format_to_the_letter(reply: str, well_formed: bool) -> None:
    assert is_well_formed(reply) is well_formed
    if not well_formed and "<solution>1" in reply:
        assert parse_action(reply).kind == "solution"  # what the lenient parser still accepts


# ---- the reply answer format (RefineBench, Self-Refine): the reply itself is the answer ----


@pytest.mark.parametrize(
    ("reply", "kind", "content"),
    [
        ("Paris is the capital.", "solution", "Paris is the capital."),
        ("<thought>count again</thought>\n  The answer is 36.\n", "solution", "The answer is 36."),
        ("```python\ndef f():\n    return 1\n```", "solution", "def f():\n    return 1"),
        ("```\nA\n``` and ```\nB\n```", "solution", "```\nA\n``` and ```\nB\n```"),
        ("I think <solution> 42 </solution>", "solution", "42"),  # tags tolerated
        ("<thought>only thinking</thought>", "invalid", ""),
        (" \n ", "invalid", ""),
        ("```\n```", "invalid", ""),
    ],
)
def test_reply_format_takes_the_reply_as_the_answer(reply: str, kind: str, content: str) -> None:
    parsed = parse_in_format(reply, "reply")
    assert (parsed.kind, parsed.content, parsed.reply) == (kind, content, reply)
    assert is_well_formed(reply, "reply") == (kind == "solution")
    assert parse_in_format(reply, "tagged") == parse_action(reply)


def test_reply_format_stops_only_at_an_invented_observation() -> None:
    assert stop_sequences("reply") == ("\nObservation:",)
    assert stop_sequences("tagged") == STOP_SEQUENCES
