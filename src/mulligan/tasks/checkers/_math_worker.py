"""Runs in a separate worker process: LaTeX/number equivalence with math-verify.

Kept apart from the checker so that parsing and simplifying a hostile answer (``9^{9^{9}}``)
can be killed without harming the evaluating process. Only math-verify's LaTeX extraction is
used: its plain-expression extraction calls sympy's ``parse_expr``, which uses ``eval``.
"""

from __future__ import annotations

from typing import Any

# math-verify's own timeouts use SIGALRM, which works here: the pool runs each call in the
# worker's main thread. The checker also kills the worker if a call overruns.
_PARSE_TIMEOUT_S = 5
_VERIFY_TIMEOUT_S = 5


def _parse(text: str) -> list[Any]:
    from math_verify import LatexExtractionConfig, parse

    config = [LatexExtractionConfig()]
    # With delimiters or \boxed the text parses as is; a bare "0.5" or "\frac12" needs "$...$".
    parsed = parse(text, extraction_config=config, parsing_timeout=_PARSE_TIMEOUT_S)
    if not parsed:
        parsed = parse(f"${text}$", extraction_config=config, parsing_timeout=_PARSE_TIMEOUT_S)
    return list(parsed)


def math_equivalent(answer: str, reference: str) -> tuple[bool, str]:
    """Whether ``answer`` and ``reference`` denote the same mathematical object.

    Returns (equivalent, how the answer was read). Never raises for bad input.
    """
    from math_verify import verify

    try:
        gold = _parse(reference)
        target = _parse(answer)
    except Exception as exc:  # math-verify raises assorted errors on odd LaTeX
        return False, f"could not parse: {exc.__class__.__name__}"
    if not gold:
        return False, "reference could not be parsed"
    if not target:
        return False, "answer could not be parsed as LaTeX or a number"
    try:
        equal = verify(gold, target, timeout_seconds=_VERIFY_TIMEOUT_S)
    except Exception as exc:
        return False, f"comparison failed: {exc.__class__.__name__}"
    shown = str(target[-1])[:60]
    return bool(equal), f"read as {shown}"
