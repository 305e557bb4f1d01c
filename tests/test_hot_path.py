"""The per-turn fast paths agree with the plain code they replace (issue 17's hot path).

Speed itself is measured in benchmarks/ (harness_overhead.py), never asserted here; these tests
pin down that the cheaper code computes the same thing: the leak check's exact-string search
(``str.find`` with word-boundary checks instead of a regex compiled per reference) and the
transport's environment settings (read once per session instead of once per request), and
orjson on the wire.
"""

from __future__ import annotations

import gc
import json
import math
import random
import re

import pytest
import yarl

from mulligan.engine.eventloop import RUN_GC_THRESHOLD, run
from mulligan.feedback.leak import _exact_spans, find_leaks
from mulligan.models.http import Endpoint, _from_environment, decode_json, encode_json
from mulligan.tasks.base import Task


def _regex_spans(text: str, ref: str) -> list[tuple[int, int]]:
    """The regex the leak check used before: the reference on word boundaries."""
    left = r"(?<!\w)" if ref[:1].isalnum() or ref[:1] == "_" else ""
    right = r"(?!\w)" if ref[-1:].isalnum() or ref[-1:] == "_" else ""
    return [(m.start(), m.end()) for m in re.finditer(left + re.escape(ref) + right, text)]


def test_exact_spans_match_the_word_boundary_regex() -> None:
    alphabet = "ab_ .-é1٣$"  # letters, digits of two scripts, punctuation, underscore
    rng = random.Random(17)
    for _ in range(20_000):
        ref = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _exact_spans(text, ref) == _regex_spans(text, ref), (text, ref)


def test_exact_spans_examples() -> None:
    assert _exact_spans("36 and 360 and x36 and 36.", "36") == [(0, 2), (23, 25)]
    assert _exact_spans("----", "--") == [(0, 2), (2, 4)]  # non-overlapping, leftmost first
    assert _exact_spans("($5)", "$5") == [(1, 3)]


def test_proxy_from_the_environment_once_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@proxy.example:3128")
    proxy, proxy_auth, _ = _from_environment("http://api.example/v1")
    assert proxy == yarl.URL("http://proxy.example:3128")
    assert proxy_auth is not None and proxy_auth.login == "user"
    monkeypatch.setenv("NO_PROXY", "api.example")
    assert _from_environment("http://api.example/v1")[0] is None


def test_netrc_entry_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    netrc = Path(str(tmp_path)) / "netrc"
    netrc.write_text("machine api.example login me password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    auth = _from_environment("http://api.example/v1")[2]
    assert auth is not None and (auth.login, auth.password) == ("me", "secret")
    assert _from_environment("http://other.example/v1")[2] is None


async def test_endpoint_session_reads_the_environment_when_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    endpoint = Endpoint(
        "http://api.example/v1", api_key="k", timeout_s=5, connections=4, shown="api.example"
    )
    session = endpoint.session()
    try:
        assert not session.trust_env  # no per-request lookups in worker threads
        assert endpoint._proxy == yarl.URL("http://proxy.example:3128")
    finally:
        await endpoint.aclose()


def _text_task(reference: str, task_id: str = "t") -> Task:
    return Task(
        id=task_id,
        suite="gsm8k",
        category="reasoning",
        prompt="How many apples?",
        reference=reference,
        checker="gsm8k",
        gold_solution=reference,
    )


def test_remembered_leak_reports_belong_to_their_task() -> None:
    text = "The answer is 42, not 41."
    leaking, clean = _text_task("42", "a"), _text_task("17", "b")
    for _ in range(3):  # the second and third calls are answered from memory
        assert find_leaks(text, leaking).flags.numeric
        assert not find_leaks(text, clean).leaked
    # A new task object with the same fields is judged on its own, with the same result.
    assert find_leaks(text, _text_task("42", "a")) == find_leaks(text, leaking)
    for n in range(50):  # tasks come and go: a reused id() never returns another task's report
        assert find_leaks(text, _text_task(str(n))).leaked == (n in (41, 42))


def test_request_bodies_and_replies_parse_as_with_json() -> None:
    """orjson on the wire (when installed) reads and writes what json does: the same values,
    the same refusals; what orjson refuses and json accepts goes to json."""
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": 'é \u2028 \\ " 😀 \x00'}],
        "temperature": 1e-05,
        "seed": 2**63 - 1,
        "stop": ["</execute>"],
        "nested": {"a": [1, 2.5, None, True]},
    }
    assert json.loads(encode_json(payload)) == payload
    assert json.loads(encode_json({"big": 2**70})) == {"big": 2**70}  # beyond orjson: json
    body = json.dumps(payload, ensure_ascii=True).encode()
    assert decode_json(body) == payload
    assert math.isnan(decode_json(b'{"x": NaN}')["x"])  # json's extension, kept
    for bad in (b"", b"{", b"[1,]", b"\xff"):
        with pytest.raises(ValueError):
            decode_json(bad)


def test_a_run_collects_young_garbage_less_often_and_restores_the_thresholds() -> None:
    async def thresholds() -> tuple[int, int, int]:
        return gc.get_threshold()

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert run(thresholds()) == (RUN_GC_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0)  # collection turned off by the embedding program: stays off
        assert run(thresholds())[0] == 0
        gc.set_threshold(10 * RUN_GC_THRESHOLD, 5, 5)  # already rarer: kept
        assert run(thresholds()) == (10 * RUN_GC_THRESHOLD, 5, 5)
    finally:
        gc.set_threshold(*before)
