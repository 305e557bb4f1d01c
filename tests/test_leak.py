"""Leak detection: positives and, above all, the false positives it must avoid."""

from __future__ import annotations

import pytest

from mulligan.feedback import find_leaks, redact
from mulligan.feedback.leak import parse_reference_number, secret_code
from mulligan.tasks import Task
from test_feedback_support import humaneval_task, mbpp_task, mmlu_task, reasoning_task

# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "text"),
    [
        ("36", "The answer is 36."),
        ("36", "You should get 36 books in total."),
        ("36", "It comes to 36.0"),
        ("1000", "It costs 1,000 dollars."),
        ("1000", "about 1000.0"),
        ("1000", "write it as 1e3"),
        ("1000", "that is $1,000"),
        ("1,000", "so 1000 it is"),
        ("1.12", "roughly 1.120 in those units"),
        ("0.6667", "a probability of 0.667"),
        ("1.28e-06", "it is 0.00000128"),
        ("2", "so the answer should be 2"),
        ("3.0", "The correct value of $b$ should be 3, not $\\frac{-1}{2}$."),  # seen in a run
        ("3", "so b must be 3"),
        ("-3", "x = -3"),
    ],
)
def test_numeric_leaks(reference: str, text: str) -> None:
    report = find_leaks(text, reasoning_task(reference=reference, prompt="How much?"))
    assert report.flags.numeric, text


@pytest.mark.parametrize(
    ("reference", "text"),
    [
        ("36", "You counted 35; check the last week."),
        ("36", "Is 360 right? Divide again."),
        ("1000", "10000 is ten times too much."),
        ("1.12", "about 1.1, keep more digits"),
        ("0.6667", "roughly 0.67"),
        ("2", "You have 2 chances left."),  # a small integer without an answer cue
        ("2", "Step 2 is wrong."),
        ("3", "Jim reads 3 books a week."),  # in the prompt, no cue
        ("2", "You should be careful: 2 of your steps are wrong."),
    ],
)
def test_numeric_non_leaks(reference: str, text: str) -> None:
    task = reasoning_task(reference=reference, prompt="Jim reads 3 books a week. How many?")
    assert not find_leaks(text, task).flags.any, text


def test_number_in_the_prompt_leaks_only_with_a_cue() -> None:
    task = reasoning_task(reference="12", prompt="For 12 weeks Jim reads. How many weeks?")
    assert not find_leaks("Remember it lasts 12 weeks.", task).flags.any
    assert find_leaks("The answer is 12.", task).flags.numeric


def test_parse_reference_number() -> None:
    assert parse_reference_number("1,000") == 1000
    assert parse_reference_number(" $5 ") == 5
    assert parse_reference_number("1.28e-06") == 1.28e-06
    assert parse_reference_number("[0, 5]") is None
    assert parse_reference_number("Robert") is None


# --- strings -----------------------------------------------------------------------------------


def _text_task(reference: str, prompt: str = "Who wrote it?") -> Task:
    return reasoning_task(reference=reference, prompt=prompt)


def test_exact_and_normalised_strings() -> None:
    task = _text_task("Robert Erskine Childers DSC")
    exact = find_leaks("It was Robert Erskine Childers DSC.", task).flags
    assert exact.exact and exact.normalized
    assert find_leaks("robert erskine childers, dsc", task).flags.normalized
    assert not find_leaks("robert erskine childers, dsc", task).flags.exact
    # Most of a multi-word reference is a leak too...
    assert find_leaks("Think of Robert Erskine Childers.", task).flags.normalized
    # ...unless those words are in the prompt, where only an answer cue makes them one.
    comparison = _text_task(
        "Robert Erskine Childers DSC",
        "Which writer was from England, Henry Roth or Robert Erskine Childers?",
    )
    assert not find_leaks("Where was Robert Erskine Childers born?", comparison).flags.any
    assert find_leaks("The answer is Robert Erskine Childers.", comparison).flags.normalized


def test_short_and_boolean_references_need_a_cue() -> None:
    task = _text_task("True", "Is 7 prime?")
    assert not find_leaks("It is true that you should test divisors.", task).flags.any
    assert find_leaks("The answer is True.", task).flags.exact


# --- option letters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The answer is C.",
        "the answer is c.",
        "I think the answer is (C) here.",
        "Consider option c.",
        "Choice (c) fits.",
        "Look at (C) again.",
        "C) is the one.",
        "C is correct.",
        "<solution> c </solution>",
        "The answer is 8.",  # the option's text after an answer cue
    ],
)
def test_option_letter_leaks(text: str) -> None:
    flags = find_leaks(text, mmlu_task("c")).flags
    assert flags.option_letter or flags.exact, text


@pytest.mark.parametrize(
    "text",
    [
        "Take a closer look at a spider's body.",
        "Your answer is a bit off.",
        "Option B is tempting, but count again.",
        "(a) recount the legs (b) check the prompt",
        "There are 8 parts to consider.",
        "Is a the right choice?",
    ],
)
def test_option_letter_non_leaks(text: str) -> None:
    assert not find_leaks(text, mmlu_task("a")).flags.any, text


def test_article_a_is_not_option_a_but_the_letter_is() -> None:
    task = mmlu_task("a")
    assert not find_leaks("The answer is a bit off; take a look at a leg.", task).flags.any
    assert find_leaks("The answer is A.", task).flags.option_letter
    assert find_leaks("Go with option A.", task).flags.option_letter


# --- code --------------------------------------------------------------------------------------


def test_secret_code_drops_what_the_prompt_shows() -> None:
    assert [line.strip() for line in secret_code(humaneval_task()).splitlines()] == [
        "total = sum(x for x in xs if x > 0)",
        "return total",
    ]
    assert secret_code(mbpp_task()).startswith("def max(a, b):")


def test_code_leaks() -> None:
    task = humaneval_task()
    text = "Write it like this:\n    total = sum(x for x in xs if x > 0)\n    return total"
    report = find_leaks(text, task)
    assert report.flags.code
    assert "sum(x for x" not in redact(text, report)
    assert find_leaks("Use `total = sum(x for x in xs if x > 0)`.", task).flags.code


def test_code_non_leaks() -> None:
    task = humaneval_task()
    assert not find_leaks("Skip the negative numbers when you add them up.", task).flags.any
    assert not find_leaks(
        "def add_positive(xs: list) -> int: is the right signature", task
    ).flags.any
    # Code the policy wrote itself is not revealed by quoting it back.
    own = "def add_positive(xs):\n    total = sum(x for x in xs if x > 0)\n    return total + 1"
    quoted = "Your line `total = sum(x for x in xs if x > 0)` is fine; look at the return."
    assert not find_leaks(quoted, task, known_code=[own]).flags.any
    # Reasoning references are not checked as code and vice versa.
    assert not find_leaks("The answer is 4.", task).flags.any


def test_redact_masks_every_span() -> None:
    task = reasoning_task(reference="36", prompt="How many?")
    text = "It is 36, yes: 36.0 exactly."
    report = find_leaks(text, task)
    assert redact(text, report) == "It is [redacted], yes: [redacted] exactly."
