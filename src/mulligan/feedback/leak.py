"""Leak detection: does a feedback text reveal the task's reference before the policy sees it?

:func:`find_leaks` checks a text against a task and returns :class:`LeakReport` (the
``LeakFlags`` recorded on the event, plus the character spans that leak, for redaction):

- ``exact``: the reference string verbatim, on word boundaries;
- ``normalized``: the reference after SQuAD-style normalisation (lower case, punctuation and
  articles dropped), or most of a multi-word reference (>= 75% of its words in a row);
- ``numeric``: a number equal to a numeric reference in any formatting (``1,000``, ``1000.0``,
  ``1e3``, ``$1,000``), or rounding it to at least three significant digits;
- ``option_letter``: the letter of a multiple-choice reference in an answer-like pattern
  ("answer is C", "(C)", "option c", "C is correct", "<solution> C </solution>"); a bare
  "a" is English, not a leak;
- ``code``: for code tasks, the part of ``gold_solution`` the prompt does not already show,
  when its non-trivial lines or its token 4-grams reappear in the text above a threshold
  (default 50%). Code the policy itself already wrote (``known_code``) is not counted.

False positives are the main risk, so a *weak* reference match — a reference that also occurs
in the task prompt (hotpotqa comparisons, mmlu option texts), a small integer (|x| < 10), a
boolean or a string of three characters or fewer — counts only next to an answer cue ("the
answer is", "should be", "=", "<solution>", "... is correct").

:class:`LeakPolicy` says what to do with a leak (``flag``, ``redact`` or ``regenerate``);
:class:`LeakGuardedFeedback` applies it to any provider. Counting the recorded flags (leak rates
per source, solves after a leak) is a metric: ``mulligan.metrics.feedback``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mulligan.events import FeedbackEvent, FeedbackKind, LeakFlags, LeakIntervention, Message
from mulligan.feedback.base import FeedbackContext, FeedbackProvider, RevisableFeedback
from mulligan.models.base import counters_of
from mulligan.tasks.base import Task

LeakMode = Literal["flag", "redact", "regenerate"]
LEAK_MODES: tuple[LeakMode, ...] = ("flag", "redact", "regenerate")
REDACTED = "[redacted]"

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class LeakReport:
    """What :func:`find_leaks` found: the flags and the leaking character spans."""

    flags: LeakFlags
    spans: tuple[Span, ...] = ()

    @property
    def leaked(self) -> bool:
        return self.flags.any


# --- answer cues -------------------------------------------------------------------------------

_CUE_BEFORE = re.compile(
    r"(?:\b(?:answer|solution|result|output|total|value)\b[^.!?\n]{0,25}?"
    r"(?:\bis\b|\bwas\b|\bbe\b|\bequals?\b|\bgives?\b|=|:)"
    r"|\b(?:should|must)\s+(?:be|equal|get|give)\b|=|<solution>|\bequals?\b)"
    r"\s*[\(\[\$\"'`*]*\s*(?:option\s+|choice\s+|number\s+)?$",
    re.IGNORECASE,
)
_CUE_AFTER = re.compile(
    r"^[\)\]\"'`*]*\s*(?:is|would\s+be|should\s+be|was)\s+(?:the\s+)?(?:correct|right|answer|solution)\b"
    r"|^\s*</solution>",
    re.IGNORECASE,
)


def _has_cue(text: str, start: int, end: int) -> bool:
    """Whether an answer cue sits right before or after ``text[start:end]``."""
    return bool(
        _CUE_BEFORE.search(text[max(0, start - 60) : start])
        or _CUE_AFTER.search(text[end : end + 40])
    )


# --- exact and normalised strings --------------------------------------------------------------

_ARTICLES = frozenset({"a", "an", "the"})
_WORDS = re.compile(r"\w+")


def _norm_tokens(text: str) -> list[tuple[str, int, int]]:
    """Lower-cased word tokens with their spans, articles dropped (SQuAD normalisation)."""
    tokens = []
    for m in _WORDS.finditer(text):
        word = m.group(0).lower()
        if word not in _ARTICLES:
            tokens.append((word, m.start(), m.end()))
    return tokens


def _normalize(text: str) -> str:
    words = (word.lower() for word in _WORDS.findall(text))
    return " ".join([word for word in words if word not in _ARTICLES])


@functools.lru_cache(maxsize=1024)
def _normalized_prompt(prompt: str) -> str:
    """`` <normalised prompt> ``, once per task rather than once per feedback message (the
    prompt is the longest text a check reads; a task's prompt string is one object, whose hash
    Python keeps)."""
    return f" {_normalize(prompt)} "


def _is_word_char(char: str) -> bool:
    """What ``re``'s ``\\w`` matches in a ``str`` pattern: letters, digits, numerals, ``_``."""
    return char.isalnum() or char == "_"


def _exact_spans(text: str, ref: str) -> list[Span]:
    """Non-overlapping occurrences of ``ref``, leftmost first, on word boundaries where ``ref``
    starts or ends with a word character (what ``re`` finds for ``(?<!\\w)ref(?!\\w)``,
    without compiling a pattern per reference)."""
    check_left, check_right = _is_word_char(ref[:1]), _is_word_char(ref[-1:])
    spans: list[Span] = []
    start = text.find(ref)
    while start >= 0:
        end = start + len(ref)
        if (not check_left or start == 0 or not _is_word_char(text[start - 1])) and (
            not check_right or end == len(text) or not _is_word_char(text[end])
        ):
            spans.append((start, end))
            start = text.find(ref, end)
        else:
            start = text.find(ref, start + 1)
    return spans


@functools.lru_cache(maxsize=4096)
def _ref_words(ref: str) -> tuple[str, ...]:
    """The reference's normalised words, once per reference."""
    return tuple(t for t, _, _ in _norm_tokens(ref))


def _normalized_spans(text: str, ref: str) -> list[Span]:
    """Runs of the text's words equal to all of the reference's words, or >= 75% of them."""
    ref_words = _ref_words(ref)
    if not ref_words:
        return []
    tokens = _norm_tokens(text)
    need = len(ref_words) if len(ref_words) < 2 else max(2, math.ceil(0.75 * len(ref_words)))
    spans: list[Span] = []
    vocabulary = frozenset(ref_words)
    # Longest common run of words starting at each text position, against each ref position
    # (a run can only start at a word of the reference: the others are skipped at once).
    for i in range(len(tokens)):
        if tokens[i][0] not in vocabulary:
            continue
        for j in range(len(ref_words)):
            k = 0
            while (
                i + k < len(tokens)
                and j + k < len(ref_words)
                and tokens[i + k][0] == ref_words[j + k]
            ):
                k += 1
            if k >= need:
                spans.append((tokens[i][1], tokens[i + k - 1][2]))
    return spans


# --- numbers -----------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\w.])[-−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?(?![\w])"
    r"|(?<![\w.\d])[-−]?\.\d+(?![\w])"
)
_REFERENCE_NUMBER = re.compile(
    r"\s*[-−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?\s*%?\s*"
)


def _to_float(token: str) -> float | None:
    cleaned = token.replace(",", "").replace("$", "").replace("−", "-").rstrip("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_reference_number(reference: str) -> float | None:
    """The reference as a number when it is one ("36", "1,000", "1.28e-06", "$5"), else None."""
    ref = reference.strip()
    if not ref or not any(c.isdigit() for c in ref) or not _REFERENCE_NUMBER.fullmatch(ref):
        return None
    return _to_float(ref)


def _decimals(token: str) -> int:
    mantissa = re.split(r"[eE]", token)[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _significant_digits(token: str) -> int:
    digits = re.split(r"[eE]", token)[0].replace(",", "").replace(".", "").lstrip("-−$0")
    return len(digits.rstrip("%"))


def _numbers_equal(token: str, value: float, ref: float) -> bool:
    if math.isclose(value, ref, rel_tol=1e-9, abs_tol=1e-12):
        return True
    # A rounded rendering ("0.667" for 2/3) reveals the value too, if it is precise enough.
    if "e" in token.lower():
        return False
    places = _decimals(token)
    return (
        places >= 1
        and _significant_digits(token) >= 3
        and abs(ref - value) <= 0.5 * 10 ** (-places) + 1e-12
    )


def _numeric_spans(text: str, ref: float) -> list[Span]:
    spans: list[Span] = []
    for m in _NUMBER.finditer(text):
        value = _to_float(m.group(0))
        if value is not None and _numbers_equal(m.group(0), value, ref):
            spans.append((m.start(), m.end()))
    return spans


@functools.lru_cache(maxsize=1024)
def _prompt_numbers(prompt: str) -> tuple[float, ...]:
    """The numbers a task prompt shows, once per task (as :func:`_normalized_prompt`)."""
    numbers = (_to_float(m.group(0)) for m in _NUMBER.finditer(prompt))
    return tuple(v for v in numbers if v is not None)


# --- option letters ----------------------------------------------------------------------------


_LETTER_END = re.compile(r"\s*(?:[.,;:!?\)\]\"'`*]|</solution>|$)")


@functools.lru_cache(maxsize=64)
def _letter_patterns(letter: str) -> tuple[tuple[re.Pattern[str], bool, bool], ...]:
    """The patterns of :func:`_letter_spans` for one letter, compiled once:
    ``(pattern, upper case only, must end its phrase)``."""
    cased = rf"(?P<l>[{letter.upper()}{letter.lower()}])"
    patterns: list[tuple[str, bool, bool]] = [
        (rf"\b(?:option|choice|letter)\s*[:#]?\s*[\(\[]?{cased}[\)\]]?(?!\w)", False, True),
        (
            rf"\b(?:answer|solution)\b[^.!?\n]{{0,20}}?(?:\bis\b|\bbe\b|=|:)\s*[\"'`*]*\s*"
            rf"(?:option\s+|choice\s+)?[\(\[]?{cased}[\)\]]?(?!\w)",
            False,
            True,
        ),
        (rf"<solution>\s*[\(\[]?{cased}[\)\]]?\s*</solution>", False, False),
        (rf"\({cased}\)", True, False),
        (rf"(?<![\w(]){cased}\)", True, False),
        (
            rf"(?<![\w']){cased}[\)\]]?\s+(?:is|would\s+be|should\s+be)\s+(?:the\s+)?"
            rf"(?:correct|right)\b",
            letter.lower() in ("a", "i"),  # "a is right" is rarely English, but be safe
            False,
        ),
    ]
    return tuple((re.compile(p, re.IGNORECASE), upper, end) for p, upper, end in patterns)


def _letter_spans(text: str, letter: str) -> list[Span]:
    """Spans where ``letter`` is named as the chosen option (not used as a word).

    Patterns: "option C" / "choice (c)", "the answer is C", "<solution> c </solution>",
    "(C)", "C)", "C is correct". The bare parenthesised forms count in upper case only ("(c)"
    is more often an enumeration), and a lower-case letter after "answer is"/"option" must end
    its phrase ("the answer is a bit off" is English).
    """
    up = letter.upper()
    spans: list[Span] = []
    for pattern, upper_only, must_end in _letter_patterns(letter):
        for m in pattern.finditer(text):
            found = m.group("l")
            if upper_only and found != up:
                continue
            closed = text[m.end("l") : m.end("l") + 1] in (")", "]")
            if must_end and found != up and not closed and not _LETTER_END.match(text, m.end()):
                continue
            spans.append(m.span("l"))
    return spans


def _is_option_letter(task: Task) -> str | None:
    ref = task.reference.strip().lower()
    if len(ref) != 1 or not ref.isalpha():
        return None
    options = task.metadata.get("options")
    if (isinstance(options, dict) and ref in options) or task.checker in (
        "mmlu",
        "multiple_choice",
    ):
        return ref
    return None


# --- code --------------------------------------------------------------------------------------

_CODE_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|==|!=|<=|>=|//|\*\*|->|[^\s\w]")
_NGRAM = 4
_MIN_LINE_CHARS = 10  # shorter lines ("else:", "return x") say little about the solution


def _strip_comments(code: str) -> str:
    return "\n".join(line.split("#", 1)[0].rstrip() for line in code.splitlines())


def _norm_line(line: str) -> str:
    return " ".join(_CODE_TOKEN.findall(line))


def secret_code(task: Task) -> str:
    """The part of ``gold_solution`` the policy cannot read in its prompt (HumanEval: the body).

    The longest prefix of the gold solution that occurs in the prompt is dropped (HumanEval's
    gold solution is the prompt's stub plus the canonical body), then every line that occurs in
    the prompt.
    """
    return _secret_code(task.gold_solution, task.prompt)


@functools.lru_cache(maxsize=1024)
def _secret_code(gold_solution: str, task_prompt: str) -> str:
    """:func:`secret_code` of these texts, once per task (it searches the prompt repeatedly)."""
    gold = gold_solution.replace("\r\n", "\n")
    prompt = task_prompt.replace("\r\n", "\n")
    lo, hi = 0, len(gold)
    while lo < hi:  # binary search: "gold[:n] occurs in the prompt" holds up to some n
        mid = (lo + hi + 1) // 2
        if gold[:mid] in prompt:
            lo = mid
        else:
            hi = mid - 1
    # A short shared prefix is chance ("d" of "def"), not the prompt's stub: keep it.
    rest = gold[lo:] if "\n" in gold[:lo] else gold
    prompt_lines = {_norm_line(line) for line in prompt.splitlines()}
    kept = [line for line in rest.splitlines() if _norm_line(line) not in prompt_lines]
    return _strip_comments("\n".join(kept))


@functools.lru_cache(maxsize=1024)
def _secret_parts(secret: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The secret code's telling lines (normalised, long enough) and its token 4-grams, once
    per task."""
    lines = tuple(
        _norm_line(line) for line in secret.splitlines() if len(line.strip()) >= _MIN_LINE_CHARS
    )
    words = _CODE_TOKEN.findall(secret)
    grams = tuple(tuple(words[i : i + _NGRAM]) for i in range(len(words) - _NGRAM + 1))
    return lines, grams


def _code_spans(text: str, secret: str, known: Sequence[str], threshold: float) -> list[Span]:
    """Spans of ``text`` that copy ``secret``, if the copied share reaches ``threshold``."""
    known_lines = {_norm_line(line) for k in known for line in k.splitlines()}
    secret_lines, secret_grams = _secret_parts(secret)
    lines = [line for line in secret_lines if line not in known_lines]
    tokens = list(_CODE_TOKEN.finditer(text))
    words = [m.group(0) for m in tokens]
    known_grams = {
        tuple(ws[i : i + _NGRAM])
        for k in known
        for ws in [_CODE_TOKEN.findall(k)]
        for i in range(len(ws) - _NGRAM + 1)
    }
    grams = [g for g in secret_grams if g not in known_grams]
    text_grams: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(words) - _NGRAM + 1):
        text_grams.setdefault(tuple(words[i : i + _NGRAM]), []).append(i)
    gram_share = sum(g in text_grams for g in grams) / len(grams) if grams else 0.0
    norm_text = " ".join(words)
    line_share = sum(line in norm_text for line in lines) / len(lines) if lines else 0.0
    if max(gram_share, line_share) < threshold:
        return []
    covered = [False] * len(words)
    for g in set(grams):
        for i in text_grams.get(g, []):
            for k in range(i, i + _NGRAM):
                covered[k] = True
    spans: list[Span] = []
    i = 0
    while i < len(words):
        if covered[i]:
            j = i
            while j + 1 < len(words) and covered[j + 1]:
                j += 1
            spans.append((tokens[i].start(), tokens[j].end()))
            i = j + 1
        else:
            i += 1
    return spans


# --- the detector ------------------------------------------------------------------------------


def _weak_string(ref: str, task: Task) -> bool:
    # `` <normalised prompt> `` contains the normalised reference exactly when the prompt
    # without the padding does (a normalised text neither starts nor ends with a space).
    return (
        len(ref) <= 3
        or ref.lower() in ("true", "false", "yes", "no")
        or _normalize(ref) in _normalized_prompt(task.prompt)
    )


def _keep(spans: Iterable[Span], text: str, weak: bool) -> list[Span]:
    return [s for s in spans if not weak or _has_cue(text, *s)]


def find_leaks(
    text: str,
    task: Task,
    *,
    known_code: Sequence[str] = (),
    code_threshold: float = 0.5,
) -> LeakReport:
    """Check ``text`` against ``task``'s reference (see the module docstring for the rules).

    Args:
        text: the feedback text the policy would read.
        task: the task; code tasks (``category == "code_generation"``) are checked against
            ``gold_solution`` only, because their ``reference`` is test code.
        known_code: text the policy already wrote (its own replies); code it contains is not
            a leak when feedback quotes it back.
        code_threshold: share of the secret code's lines or token 4-grams that must reappear.

    Returns the flags and the leaking spans (sorted, merged).
    """
    if not text.strip():
        return LeakReport(LeakFlags())
    if task.category == "code_generation":
        return _code_leaks(text, task, known_code, code_threshold)
    # A text task's report depends on the text and the task alone, and rule-based feedback
    # repeats one text for every turn of an episode ("Your answer is wrong."): remembered.
    key = (text, id(task))
    remembered = _REPORTS.get(key)
    if remembered is not None and remembered[0] is task:
        return remembered[1]
    report = _text_leaks(text, task)
    _REPORTS[key] = (task, report)  # holds the task: its id is not reused while remembered
    if len(_REPORTS) > _REPORTS_KEPT:
        with contextlib.suppress(KeyError, StopIteration):  # another thread evicted it first
            del _REPORTS[next(iter(_REPORTS))]
    return report


_REPORTS: dict[tuple[str, int], tuple[Task, LeakReport]] = {}
_REPORTS_KEPT = 4096


def _code_leaks(
    text: str, task: Task, known_code: Sequence[str], code_threshold: float
) -> LeakReport:
    """:func:`find_leaks` for a code task: against the secret part of its gold solution."""
    found = _code_spans(text, secret_code(task), known_code, code_threshold)
    return LeakReport(LeakFlags(code=bool(found)), _merge(found))


def _text_leaks(text: str, task: Task) -> LeakReport:
    """:func:`find_leaks` for a task that is not code (its rules need no ``known_code``)."""
    spans: list[Span] = []
    flags: dict[str, bool] = {}
    ref = task.reference.strip()
    letter = _is_option_letter(task)
    if letter is not None:
        found = _letter_spans(text, letter)
        flags["option_letter"] = bool(found)
        spans += found
        options = task.metadata.get("options")
        option_text = options.get(letter) if isinstance(options, dict) else None
        # The option's text is in the prompt, so it leaks only as "the answer is <text>".
        if isinstance(option_text, str) and option_text.strip():
            found = _keep(_exact_spans(text, option_text.strip()), text, weak=True)
            flags["exact"] = bool(found)
            spans += found
        return LeakReport(LeakFlags(**flags), _merge(spans))

    if not ref:
        return LeakReport(LeakFlags())
    weak = _weak_string(ref, task)
    found = _keep(_exact_spans(text, ref), text, weak)
    flags["exact"] = bool(found)
    spans += found
    # A partial match is weak when the matched words are in the prompt ("Robert Erskine
    # Childers" of "Robert Erskine Childers DSC" in a hotpotqa comparison question).
    prompt_norm = _normalized_prompt(task.prompt)
    found = [
        s
        for s in _normalized_spans(text, ref)
        if not (weak or f" {_normalize(text[s[0] : s[1]])} " in prompt_norm) or _has_cue(text, *s)
    ]
    flags["normalized"] = bool(found)
    spans += found
    number = parse_reference_number(ref)
    if number is not None:
        weak_number = (number == int(number) and abs(number) < 10) or any(
            math.isclose(number, v, rel_tol=1e-9) for v in _prompt_numbers(task.prompt)
        )
        found = _keep(_numeric_spans(text, number), text, weak_number)
        flags["numeric"] = bool(found)
        spans += found
        if not found:
            # "36" in "x = 36" is also an exact/normalised match; judge numbers numerically.
            flags["exact"] = flags["normalized"] = False
            spans = []
    return LeakReport(LeakFlags(**flags), _merge(spans))


def detect_leak(text: str, task: Task, **kwargs: object) -> LeakFlags:
    """Just the flags of :func:`find_leaks`."""
    return find_leaks(text, task, **kwargs).flags  # type: ignore[arg-type]


def _merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return tuple((s, e) for s, e in out)


def redact(text: str, report: LeakReport, mask: str = REDACTED) -> str:
    """``text`` with every leaking span replaced by ``mask``."""
    out: list[str] = []
    last = 0
    for start, end in report.spans:
        out.append(text[last:start])
        out.append(mask)
        last = end
    out.append(text[last:])
    return "".join(out)


# --- policy and guard --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeakPolicy:
    """What to do when feedback leaks the reference.

    Attributes:
        mode: ``flag`` records the flags on the event and delivers the text unchanged;
            ``redact`` masks the leaking spans; ``regenerate`` asks a revisable (model-based)
            provider for new feedback up to ``max_regenerations`` times, then redacts what
            still leaks (providers that cannot revise are redacted at once).
        max_regenerations: how many new drafts ``regenerate`` asks for.
        code_threshold: see :func:`find_leaks`.
    """

    mode: LeakMode = "flag"
    max_regenerations: int = 2
    code_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in LEAK_MODES:
            raise ValueError(f"leak mode {self.mode!r}; choose one of {', '.join(LEAK_MODES)}")
        if self.max_regenerations < 0:
            raise ValueError("max_regenerations must be >= 0")


@dataclass(slots=True)
class LeakStats:
    """Counts kept by a guard (per provider): what was checked, found and done about it."""

    checked: int = 0
    leaked: int = 0
    redacted: int = 0
    regenerations: int = 0
    regenerated_clean: int = 0


def _policy_texts(messages: Sequence[Message]) -> list[str]:
    return [m.content for m in messages if m.role == "assistant"]


class LeakGuardedFeedback:
    """Wraps a provider: checks each of its events for leaks and applies a :class:`LeakPolicy`.

    Every event it returns carries the whole audit: ``leak``, the flags of the text the policy
    actually receives (after any redaction or regeneration); ``raw_leak``, the flags of the
    provider's own first text; ``intervention`` (none, redacted, regenerated, gave_up) and
    ``regenerations``, the new drafts asked for. ``stats`` counts the same per provider, and
    :meth:`counters` reports them for the run's manifest.
    """

    def __init__(self, inner: FeedbackProvider, policy: LeakPolicy | None = None) -> None:
        self.inner = inner
        self.policy = policy or LeakPolicy()
        self.name = inner.name
        self.stats = LeakStats()

    def counters(self) -> dict[str, int]:
        """``leak.<count>`` for each of :class:`LeakStats`, then the wrapped provider's own."""
        stats = self.stats
        return {
            "leak.checked": stats.checked,
            "leak.leaked": stats.leaked,
            "leak.redacted": stats.redacted,
            "leak.regenerations": stats.regenerations,
            "leak.regenerated_clean": stats.regenerated_clean,
            **counters_of(self.inner),
        }

    @property
    def kind(self) -> FeedbackKind | None:
        kind = getattr(self.inner, "kind", None)
        return kind if isinstance(kind, str) else None  # type: ignore[return-value]

    def check(self, event: FeedbackEvent, ctx: FeedbackContext) -> LeakReport:
        return find_leaks(
            event.content,
            ctx.task,
            known_code=_policy_texts(ctx.messages),
            code_threshold=self.policy.code_threshold,
        )

    async def feedback(self, ctx: FeedbackContext) -> FeedbackEvent | None:
        event = await self.inner.feedback(ctx)
        if event is None:
            return None
        self.stats.checked += 1
        report = self.check(event, ctx)
        raw = report.flags
        if not report.leaked:
            return _audited(event, LeakFlags(), raw)
        self.stats.leaked += 1
        if self.policy.mode == "flag":
            return _audited(event, raw, raw)
        asked = 0
        if self.policy.mode == "regenerate" and isinstance(self.inner, RevisableFeedback):
            for attempt in range(1, self.policy.max_regenerations + 1):
                self.stats.regenerations += 1
                asked = attempt
                revised = await self.inner.revise(ctx, event, attempt)
                if revised is None:  # no new draft: mask the last leaking one, as when out of tries
                    break
                event, report = revised, self.check(revised, ctx)
                if not report.leaked:
                    self.stats.regenerated_clean += 1
                    return _audited(event, LeakFlags(), raw, "regenerated", attempt)
        self.stats.redacted += 1
        masked = event.model_copy(update={"content": redact(event.content, report)})
        residual = self.check(masked, ctx).flags
        return _audited(masked, residual, raw, "gave_up" if asked else "redacted", asked)


def _audited(
    event: FeedbackEvent,
    leak: LeakFlags,
    raw: LeakFlags,
    intervention: LeakIntervention = "none",
    regenerations: int = 0,
) -> FeedbackEvent:
    """``event`` with its leak audit: flags as delivered, as first written, and what was done."""
    return event.model_copy(
        update={
            "leak": leak,
            "raw_leak": raw,
            "intervention": intervention,
            "regenerations": regenerations,
        }
    )
