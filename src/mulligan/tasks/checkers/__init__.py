"""The checker registry: every answer checker by name.

MINT's criteria, registered under the suite names (``checkers="mint"``, the default):

==============  ==============================================================================
``gsm8k``       within 5% if both are numbers, else the reference occurs in the answer
``math``        same rule as gsm8k (MINT's math references are decimals such as "10.0")
``hotpotqa``    same rule; ``score`` is HotpotQA's token F1, exact match in ``detail``
``mmlu``        MINT's multiple-choice rule (letter found in the answer, then option texts)
``theoremqa``   TheoremQA's scorer by ``answer_type`` (integer, float, lists, bool, option)
``humaneval``   every value ``check(<entry_point>)`` tests is right (computed in the sandbox,
                judged here: :mod:`~mulligan.tasks.checkers.testplan`)
``humaneval-stub`` the same after the task's stub (imports, signature), as OpenAI's harness
``mbpp``        every value the asserts test is right (same)
``python_tests`` the same rule, under a neutral name for your own task files
``evalplus``    the function's outputs on EvalPlus's inputs equal the canonical solution's
==============  ==============================================================================

Stricter criteria (``checkers="strict"``): ``number`` (one number, exact to 1e-6),
``math_equiv`` (LaTeX / numeric equivalence via math-verify, in a worker process),
``exact_match`` (normalised exact match, F1 score; ``exact_match_long`` for
long free-form references), ``multiple_choice`` (exactly one letter).
"""

from __future__ import annotations

from mulligan.tasks.base import Checker
from mulligan.tasks.checkers.code import PythonTestsChecker
from mulligan.tasks.checkers.evalplus import EvalPlusChecker
from mulligan.tasks.checkers.math_equiv import MathEquivalenceChecker
from mulligan.tasks.checkers.mint_reasoning import MintHotpotQAChecker, MintNumericChecker
from mulligan.tasks.checkers.multiple_choice import MintMultipleChoiceChecker, MultipleChoiceChecker
from mulligan.tasks.checkers.numbers import NumberChecker
from mulligan.tasks.checkers.text_match import ExactMatchChecker, LongExactMatchChecker
from mulligan.tasks.checkers.theoremqa import TheoremQAChecker
from mulligan.tasks.environment import EnvironmentChecker

CHECKERS: dict[str, Checker] = {
    checker.name: checker
    for checker in (
        MintNumericChecker("gsm8k"),
        MintNumericChecker("math"),
        MintHotpotQAChecker(),
        MintMultipleChoiceChecker(),
        TheoremQAChecker(),
        PythonTestsChecker("humaneval"),
        PythonTestsChecker("humaneval-stub", with_stub=True),
        PythonTestsChecker("mbpp"),
        PythonTestsChecker("python_tests"),
        EvalPlusChecker(),
        NumberChecker(),
        MathEquivalenceChecker(),
        ExactMatchChecker(),
        LongExactMatchChecker(),
        MultipleChoiceChecker(),
        EnvironmentChecker(),
    )
}
"""Every registered checker, by the name a :class:`~mulligan.tasks.base.Task` refers to."""


def get_checker(name: str) -> Checker:
    """The checker registered as ``name``; ``KeyError`` naming the known checkers otherwise."""
    try:
        return CHECKERS[name]
    except KeyError:
        raise KeyError(
            f"unknown checker {name!r}; registered: {', '.join(sorted(CHECKERS))}"
        ) from None


def register_checker(checker: Checker, *, replace: bool = False) -> None:
    """Add a checker under ``checker.name`` (a plug-in suite's own criterion).

    Raises ``ValueError`` if the name is taken, unless ``replace`` is true.
    """
    if checker.name in CHECKERS and not replace:
        raise ValueError(f"a checker named {checker.name!r} is already registered")
    CHECKERS[checker.name] = checker


__all__ = ["CHECKERS", "get_checker", "register_checker"]
