"""Hypothesis strategies for adversarial model text, shared by the fuzz tests and
``benchmarks/fuzz_parser.py``: huge numbers, deep nesting, expression and LaTeX bombs, unbalanced
action tags, unicode digits and look-alikes, and mixtures of all of them."""

from __future__ import annotations

from hypothesis import strategies as st

TAGS = (
    "<thought>", "</thought>", "<execute>", "</execute>", "<solution>", "</solution>",
    "<solution >", "</ solution>", "<SOLUTION>", "<execute><execute>", "```", "```python\n",
    "\nObservation:", "<", ">", "</", "/>",
)  # fmt: skip

BOMBS = (
    "round(1, -10**7)", "9**9**9", "10**10**10", "pow(3, 10**3000, 7)", "[0]*10**9",
    "math.pow(10, 10**9)", "10^999999999", "1e999999", "-1e-999999", "2**-99999999", "1/0",
    "0**-1", "(1+2j)**10**9", "float('nan')", "inf", "nan", "__import__('os')",
    "sum([10**2900]*400)", "abs(-0.0)", "True", "1 or 2", "x = 10^9", "1,000,000,000,000",
    "$\\boxed{36}$", "50%", "≈ 3", "°", "c)", "(d)", "a )", "answer is", "option ",
)  # fmt: skip

LATEX = (
    "\\frac{", "}", "{", "\\sqrt{", "^{", "_{", "\\boxed{", "\\left(", "\\right)", "\\cdot",
    "\\infty", "\\pi", "$", "$$", "\\(", "\\)", "\\[", "\\]", "\\\\", "\\text{", "\\dfrac",
)  # fmt: skip

UNICODE = (
    "²", "١٢٣", "٣", "１２", "Ⅻ", "½", "−", "\u200b", "\u202e", "\ufeff", "𝟗", "∞", "π", "×",
    "\x00", "\r\n", "\t", "é", "ß", "İ", "ﬁ", "\U0001f600",
)  # fmt: skip


def _big_number() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(10**4000), max_value=10**4000).map(str),
        st.integers(min_value=1, max_value=9000).map(lambda n: "9" * n),
        st.integers(min_value=1, max_value=400).map(lambda n: "1," + ",".join(["000"] * n)),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=0, max_value=10**12).map(lambda n: f"1e{n}"),
    )


def _nested() -> st.SearchStrategy[str]:
    openers = st.sampled_from(["(", "[", "{", "abs(", "round(", "\\frac{", "^{", "\\sqrt{", "-"])
    closers = {"(": ")", "[": "]", "{": "}", "abs(": ")", "round(": ")", "\\frac{": "}{2}",
               "^{": "}", "\\sqrt{": "}", "-": ""}  # fmt: skip
    return st.tuples(openers, st.integers(min_value=1, max_value=3000), st.booleans()).map(
        lambda t: t[0] * t[1] + "1" + (closers[t[0]] * t[1] if t[2] else "")
    )


def _repeated(fragments: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(fragments), st.integers(min_value=1, max_value=5000)).map(
        lambda t: t[0] * t[1]
    )


FRAGMENT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(TAGS + BOMBS + LATEX + UNICODE),
    _big_number(),
    _nested(),
    _repeated(TAGS + LATEX + UNICODE + (" ", "1", "a", "answer", "1 x 2 ", "=", "0.", ",")),
)

ADVERSARIAL_TEXT = st.one_of(
    st.text(),
    FRAGMENT,
    st.lists(FRAGMENT, max_size=12).map("".join),
)
"""Text a hostile or broken model might send: every fragment kind alone and mixed."""
