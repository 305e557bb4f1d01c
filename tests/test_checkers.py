"""Unit tests of every checker: positives and negatives per answer type, MINT's quirks kept on
purpose, and adversarial answers (huge, or code that must never run in our process)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mulligan.tasks import CHECKERS, Checker, CheckResult, Task, get_checker, register_checker
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.checkers.safe_eval import ExpressionError, evaluate_expression, parse_quietly
from mulligan.tasks.checkers.theoremqa import normalize_theoremqa_answer
from mulligan.tasks.mint import parse_mint_options
from test_checkers_runner import SubprocessRunner, code_runner

MMLU_PROMPT = (
    "What is the largest factor of 54,321 that is less than 54,321?\n"
    "Options: A ) 6 , B ) 121 , C ) 18107 , D ) 54,320"
)


def make_task(
    checker: str,
    reference: str,
    *,
    suite: str | None = None,
    prompt: str = "question",
    category: str = "reasoning",
    metadata: Mapping[str, Any] | None = None,
) -> Task:
    return Task(
        id="t",
        suite=suite or checker,
        category=category,
        prompt=prompt,
        reference=reference,
        checker=checker,
        gold_solution=reference,
        metadata=dict(metadata or {}),
    )


async def judge(checker: str, reference: str, answer: str, **kwargs: Any) -> CheckResult:
    task = make_task(checker, reference, **kwargs)
    return await get_checker(checker).check(answer, task, SubprocessRunner())


def mmlu(reference: str) -> dict[str, Any]:
    return {"prompt": MMLU_PROMPT, "metadata": {"options": parse_mint_options(MMLU_PROMPT)}}


def theoremqa(answer_type: str, value: Any) -> dict[str, Any]:
    return {"metadata": {"answer_type": answer_type, "reference_value": value}}


# --- registry ---------------------------------------------------------------------------------


def test_registry_holds_every_checker_under_its_name() -> None:
    expected = {
        "gsm8k", "math", "hotpotqa", "mmlu", "theoremqa", "humaneval", "humaneval-stub", "mbpp",
        "number", "math_equiv", "exact_match", "multiple_choice", "python_tests", "evalplus",
        "exact_match_long", "environment",
    }  # fmt: skip
    assert set(CHECKERS) == expected
    for name, checker in CHECKERS.items():
        assert checker.name == name
        assert isinstance(checker, Checker)


def test_unknown_checker_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"registered: .*gsm8k"):
        get_checker("nope")


def test_register_checker_refuses_a_taken_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_checker(CHECKERS["gsm8k"])


# --- MINT numeric / substring rule (gsm8k, math) -----------------------------------------------


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("6", "6", True),
        ("6", "6.0", True),
        ("6", " 6 ", True),
        ("6", "7", False),
        ("40", "38", True),  # within 5%: MINT's tolerance
        ("40", "37", False),
        ("36", "Jim spends a total of 36 hours.", True),  # reference found in the text
        ("6", "16", False),  # both numbers: compared as numbers
        ("6", "The answer is 16", True),  # MINT's substring rule, kept for comparability
        ("130000", "130,000", False),  # not a float, and "130000" is not a substring
        ("131250", "$131,250", False),
        ("24", "total_balloons", False),
    ],
)
async def test_gsm8k_mint_rule(reference: str, answer: str, correct: bool) -> None:
    assert (await judge("gsm8k", reference, answer)).correct is correct


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("0.3333333333333333", "0.333", True),  # 1/3 within 5%
        ("0.3333333333333333", "0.3", False),
        ("0.5", "\\frac{1}{2}", False),  # MINT reads no LaTeX: strict mode does
        ("-150.0", "-150", True),  # negative references work (MINT at 3f7f12c)
        ("-150.0", "150", False),
        ("0.0", "0", True),
        ("0.0", "0.01", False),  # zero tolerance around 0
        ("10.0", "1e1", True),
        ("10.0", "nan", False),
    ],
)
async def test_math_mint_rule(reference: str, answer: str, correct: bool) -> None:
    assert (await judge("math", reference, answer)).correct is correct


# --- hotpotqa / exact match -------------------------------------------------------------------


async def test_hotpotqa_mint_rule_with_f1_score() -> None:
    result = await judge("hotpotqa", "yes", "Yes, both are musicians.")
    assert result.correct  # MINT: reference contained in the answer
    assert result.score == 0.0  # HotpotQA F1 of yes vs a sentence is 0
    partial = await judge("hotpotqa", "Robert Erskine Childers DSC", "Robert Erskine Childers")
    assert not partial.correct
    assert partial.score == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert "F1=0.857" in partial.detail
    exact = await judge("hotpotqa", "George Harrison", "george harrison")
    assert exact.correct and exact.score == 1.0


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("George Harrison", "the George Harrison.", True),
        ("yes", "Yes", True),
        ("yes", "Yes, both are.", False),
        ("Robert Erskine Childers DSC", "Robert Erskine Childers", False),
        ("March and April", "march, and april", True),
    ],
)
async def test_exact_match_normalises(reference: str, answer: str, correct: bool) -> None:
    assert (await judge("exact_match", reference, answer)).correct is correct


# --- multiple choice --------------------------------------------------------------------------


def test_mint_option_parsing_matches_minT_logged_metadata() -> None:
    assert parse_mint_options(MMLU_PROMPT) == {"a": "6", "b": "121", "c": "18107", "d": "54,320"}
    # MINT cuts an option at its first ")": reproduced because its checker compares with it.
    cut = parse_mint_options("Q\nOptions: A ) (-\\infty,-1)\\cup (1,\\infty) , B ) 2")
    assert cut == {"a": "(-\\infty,-1", "b": "2"}


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("C", True),
        ("(c)", True),
        ("C) 18107", True),
        ("c ) 18107", True),
        ("18107", True),  # the option's text
        ("B", False),
        ("B) 121", False),
        ("A) 6", False),
        ("6", False),  # another option's text
        ("54,320", False),
    ],
)
async def test_mmlu_mint_rule(answer: str, correct: bool) -> None:
    assert (await judge("mmlu", "c", answer, **mmlu("c"))).correct is correct


async def test_mmlu_mint_rule_keeps_minTs_letter_substring_flaw() -> None:
    # MINT accepts any answer containing the reference letter; kept for comparability.
    assert (await judge("mmlu", "a", "None of the above", **mmlu("a"))).correct
    assert (await judge("mmlu", "c", "I cannot decide", **mmlu("c"))).correct
    # ... which the strict checker does not.
    assert not (await judge("multiple_choice", "a", "None of the above", **mmlu("a"))).correct


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("C", True),
        ("(c)", True),
        ("c.", True),
        ("C) 18107", True),
        ("The answer is (C) 18107", True),
        ("Option C", True),
        ("18107", True),
        ("B", False),
        ("A or C", False),  # names no single letter
        ("I cannot decide", False),
        ("", False),
    ],
)
async def test_multiple_choice_strict(answer: str, correct: bool) -> None:
    assert (await judge("multiple_choice", "c", answer, **mmlu("c"))).correct is correct


# --- TheoremQA --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_type", "value", "answer", "correct"),
    [
        ("integer", 25, "25", True),
        ("integer", 25, "25.4", True),  # rounded
        ("integer", 25, "25.6", False),
        ("integer", 25, "x = 25", True),  # text after the last "="
        ("integer", 25, "[25]", False),
        ("float", 1.12, "1.12", True),
        ("float", 1.12, "1.15", True),  # within 4%
        ("float", 1.12, "1.2", False),
        ("float", 1.12, "1.12 m/s", True),  # unit dropped
        ("float", 1.12, "$1.12$", True),
        ("float", 1.12, "approximately 1.12", True),
        ("float", 11200.0, "1.12 × 10^4", True),  # "10^k" read as a power of ten
        ("float", -0.166, "-0.166", True),
        ("float", 1.28e-06, "1.28e-06", True),
        ("float", 0.5, "1/2", True),
        ("float", 0.5, "\\frac{1}{2}", False),  # no LaTeX in TheoremQA's scorer
        ("list of integer", [0, 5], "[0, 5]", True),
        ("list of integer", [0, 5], "[0,5]", True),
        ("list of integer", [0, 5], "[5, 0]", True),  # compared sorted
        ("list of integer", [0, 5], "0, 5", True),  # a tuple becomes a list
        ("list of integer", [0, 5], "[0, 5, 6]", False),
        ("list of integer", [0, 5], "[True, True]", False),
        ("list of float", [1.5, 2.0], "[1.52, 1.99]", True),
        ("bool", False, "False", True),
        ("bool", False, "false", True),
        ("bool", False, "no", True),
        ("bool", False, "True", False),
        ("bool", False, "yes", False),
        ("bool", True, "yes", True),
        ("bool", True, "True", True),
        ("bool", False, "0", True),  # Python's 0 == False, as in the scorer
        ("option", "c", "c", True),
        ("option", "c", "(c)", True),
        ("option", "c", "c) $\\Phi(\\Phi^T\\Phi)^{-1}\\Phi^T$", True),
        ("option", "c", "b", False),
        ("option", "c", "C) upper case", False),  # the scorer only reads lower-case options
    ],
)
async def test_theoremqa(answer_type: str, value: Any, answer: str, correct: bool) -> None:
    result = await judge("theoremqa", str(value), answer, **theoremqa(answer_type, value))
    assert result.correct is correct, result.detail


async def test_theoremqa_reads_reference_text_without_metadata_value() -> None:
    task = make_task("theoremqa", "[0, 5]", metadata={"answer_type": "list of integer"})
    assert (await get_checker("theoremqa").check("[5, 0]", task, SubprocessRunner())).correct


async def test_theoremqa_needs_an_answer_type() -> None:
    with pytest.raises(ValueError, match="answer_type"):
        await judge("theoremqa", "1", "1")


def test_theoremqa_normalisation_steps() -> None:
    assert normalize_theoremqa_answer("E = 5.2 J") == "5.2"
    assert normalize_theoremqa_answer("3 or 4") == "3"  # "3 " then the suffix rule
    assert normalize_theoremqa_answer("7%") == "7"
    assert normalize_theoremqa_answer("1,000,000") == "1000000"
    assert normalize_theoremqa_answer("b) two") == '"(b)"'
    assert normalize_theoremqa_answer("") == "0"


# --- strict number and math equivalence -------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("6", "6", True),
        ("6", "6.0", True),
        ("6", "16", False),
        ("130000", "130,000", True),
        ("131250", "$131,250", True),
        ("36", "36 hours", True),
        ("36", "\\boxed{36}", True),
        ("36", "$36$", True),
        ("0.5", "\\frac{1}{2}", True),
        ("0.5", "1/2", True),
        ("0.3333333333333333", "0.333", False),  # strict: 1e-6, not MINT's 5%
        ("36", "The answer is 36, not 4", False),
        ("36", "thirty-six", False),
    ],
)
async def test_number_strict(reference: str, answer: str, correct: bool) -> None:
    assert (await judge("number", reference, answer)).correct is correct


@pytest.mark.parametrize(
    ("reference", "answer", "correct"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("0.5", "$\\frac{1}{2}$", True),
        ("0.5", "0.5", True),
        ("10.0", "\\boxed{10}", True),
        ("10.0", "x = 10", True),
        ("\\sqrt{8}", "2\\sqrt{2}", True),
        ("10.0", "3", False),
        ("2.0", "2^{1/3}", False),
        ("0.63", "\\frac{63}{100}", True),
        ("0.63", "", False),
    ],
)
async def test_math_equivalence(reference: str, answer: str, correct: bool) -> None:
    result = await judge("math_equiv", reference, answer)
    assert result.correct is correct, result.detail


async def test_math_equivalence_survives_a_pathological_power() -> None:
    started = time.monotonic()
    result = await judge("math_equiv", "3.0", "9^{9^{9^{9}}}")
    assert not result.correct
    assert time.monotonic() - started < 25  # bounded by the worker's limits, then killed


# --- adversarial answers ----------------------------------------------------------------------

TEXT_CHECKERS = ["gsm8k", "math", "hotpotqa", "mmlu", "theoremqa", "number", "math_equiv",
                 "exact_match", "multiple_choice"]  # fmt: skip


def _kwargs_for(checker: str) -> dict[str, Any]:
    if checker in ("mmlu", "multiple_choice"):
        return mmlu("c")
    if checker == "theoremqa":
        return theoremqa("float", -7.25)
    return {}


@pytest.mark.parametrize("checker", TEXT_CHECKERS)
async def test_code_in_an_answer_is_never_run(checker: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # A reference that cannot occur in the answers' text (MINT's substring rule).
    reference = "c" if checker in ("mmlu", "multiple_choice") else "-7.25"
    for answer in (
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w').write('x')",
        f"x = __import__('pathlib').Path('{marker}').touch()",
        f"[c for c in ().__class__.__base__.__subclasses__()] or open('{marker}','w')",
        f"$\\input{{{marker}}}$",
    ):
        result = await judge(checker, reference, answer, **_kwargs_for(checker))
        # MINT's mmlu rule accepts any text containing the reference letter ("touch" has a
        # "c"); what matters here is that nothing ran.
        if checker != "mmlu":
            assert not result.correct, (checker, answer)
    assert not marker.exists()


@pytest.mark.parametrize("checker", TEXT_CHECKERS)
async def test_huge_answers_are_refused_quickly(checker: str) -> None:
    reference = "c" if checker in ("mmlu", "multiple_choice") else "6"
    started = time.monotonic()
    for answer in ("9" * 1_000_000, "[" * 100_000, "1," * 200_000 + "x"):
        result = await judge(checker, reference, answer, **_kwargs_for(checker))
        assert not result.correct
        assert "limit" in result.detail
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "answer",
    ["9**9**9", "[0]*10**9", "'a'*10**9", "(1,)*10**9", "2**10**8", "10**100000", "((((1))))" * 1],
)
async def test_theoremqa_bounds_expensive_expressions(answer: str) -> None:
    started = time.monotonic()
    result = await judge("theoremqa", "6", answer, **theoremqa("integer", 6))
    assert not result.correct
    assert time.monotonic() - started < 2


# --- the safe expression reader ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1/2", 0.5),
        ("[1, 2]", [1, 2]),
        ("1, 2", (1, 2)),
        ("True", True),
        ('"(a)"', "(a)"),
        ("2**10", 1024),
        ("-3", -3),
        ("  5", 5),
        ("math.pow(10, 2)", 100.0),
        ("round(3.14159, 2)", 3.14),
        ("3+4j", 3 + 4j),
    ],
)
def test_evaluate_expression_values(text: str, value: object) -> None:
    assert evaluate_expression(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "().__class__",
        "open('x')",
        "lambda: 1",
        "a",
        "math.sqrt(4)",
        "[x for x in range(3)]",
        "{'a': 1}['a']",
        "1 if True else 2",
        "9**9**9",
        "1/0",
        "(" * 300 + ")" * 300,
        "x" * 3000,
    ],
)
def test_evaluate_expression_refuses(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate_expression(text)


# --- code -------------------------------------------------------------------------------------

HUMANEVAL_TESTS = """

def check(candidate):
    assert candidate([1.0, 2.0, 3.9], 0.3) == False
    assert candidate([1.0, 2.8, 3.0], 0.3) == True

check(has_close_elements)"""

GOOD_HUMANEVAL = """from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
"""

MBPP_TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4"


def code_task(checker: str, tests: str) -> Task:
    return make_task(checker, tests, category="code_generation")


@pytest.mark.parametrize(
    ("checker", "tests", "answer", "correct"),
    [
        ("humaneval", HUMANEVAL_TESTS, GOOD_HUMANEVAL, True),
        # MINT runs only proposal + tests: without the import the annotation fails.
        ("humaneval", HUMANEVAL_TESTS, GOOD_HUMANEVAL.replace("from typing import List\n", ""), False),
        ("humaneval", HUMANEVAL_TESTS, GOOD_HUMANEVAL.replace("< threshold", "> threshold"), False),
        ("mbpp", MBPP_TESTS, "def add(a, b):\n    return a + b", True),
        ("mbpp", MBPP_TESTS, "def add(a, b):\n    return a * b", False),
        ("mbpp", MBPP_TESTS, "def add(a, b) return a + b", False),  # syntax error
        ("mbpp", MBPP_TESTS, "exit(0)\ndef add(a, b):\n    return 0", False),
        ("mbpp", MBPP_TESTS, "import sys\nsys.exit(0)", False),
        ("mbpp", MBPP_TESTS, "import os\nos._exit(0)", False),  # never prints the token
        ("mbpp", MBPP_TESTS, "def add(a, b):\n    return a + b\nif __name__ == '__main__':\n    raise SystemExit(1)", True),
        ("mbpp", MBPP_TESTS, "def add(a, b):\n    print('x' * 10**6)\n    return a + b", True),
        ("mbpp", MBPP_TESTS, "def add(a, b):\n    return input()", False),
    ],
)  # fmt: skip
async def test_code_checkers(checker: str, tests: str, answer: str, correct: bool) -> None:
    async with code_runner() as runner:
        result = await get_checker(checker).check(answer, code_task(checker, tests), runner)
    assert result.correct is correct, result.detail


async def test_code_failure_detail_shows_the_failing_assert() -> None:
    async with code_runner() as runner:
        result = await get_checker("mbpp").check(
            "def add(a, b):\n    return a * b", code_task("mbpp", MBPP_TESTS), runner
        )
    assert not result.correct
    # Decided in mulligan's process: the failing assert, what the call returned, what it should.
    assert "assert add(1, 2) == 3" in result.detail
    assert "add(1, 2) returned 2, expected 3" in result.detail


async def test_code_timeout() -> None:
    checker = PythonTestsChecker("mbpp", timeout_s=1.0)
    async with code_runner() as runner:
        result = await checker.check("while True:\n    pass", code_task("mbpp", MBPP_TESTS), runner)
    assert not result.correct
    assert "within 1 s" in result.detail


async def test_code_tests_cannot_be_escaped_by_closing_the_harness_string() -> None:
    # The source is embedded with repr(): quotes in it cannot end the literal.
    answer = "x = '''\n'''\ndef add(a, b):\n    return a + b\n\"\"\"\n\"\"\""
    async with code_runner() as runner:
        result = await get_checker("mbpp").check(answer, code_task("mbpp", MBPP_TESTS), runner)
    assert result.correct, result.detail


HUMANEVAL_STUB = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if any two numbers are closer to each other than the threshold. """
'''


@pytest.mark.parametrize(
    ("answer", "stub_correct", "mint_correct"),
    [
        (GOOD_HUMANEVAL, True, True),
        # A correct function relying on the stub's import: OpenAI's harness accepts it, MINT not.
        (GOOD_HUMANEVAL.replace("from typing import List\n", ""), True, False),
        # Only the body, as a completion model writes it: continues the stub's function.
        ("    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])", True, False),
        (GOOD_HUMANEVAL.replace("< threshold", "> threshold"), False, False),
    ],
)  # fmt: skip
async def test_humaneval_with_stub_vs_mint(
    answer: str, stub_correct: bool, mint_correct: bool
) -> None:
    task = code_task("humaneval-stub", HUMANEVAL_TESTS).model_copy(
        update={"metadata": {"stub": HUMANEVAL_STUB, "entry_point": "has_close_elements"}}
    )
    async with code_runner() as runner:
        with_stub = await get_checker("humaneval-stub").check(answer, task, runner)
        mint = await get_checker("humaneval").check(answer, task, runner)
    assert (with_stub.correct, mint.correct) == (stub_correct, mint_correct), (
        with_stub.detail,
        mint.detail,
    )


def test_model_text_writes_nothing_to_our_warnings() -> None:
    # Compiling "\w" in a string literal warns (DeprecationWarning, SyntaxWarning from 3.12).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert evaluate_expression("'a\\w'") == "a\\w"
        assert parse_quietly("x = '\\w'\n").body
    assert caught == []
