"""Secrets never reach an artefact.

A whole ``mulligan run`` (through the CLI) with fake keys in every environment variable mulligan
reads, plus a few it never reads but a machine typically holds. The policy is hostile: from
inside the sandbox it looks for keys in its environment, in every /proc/*/environ and
/proc/*/cmdline it can read, and prints what it finds (its output is stored, so whatever it can
see would reach the store). The feedback and judge models are real OpenAI-API clients talking to
a fake server on 127.0.0.1, which checks that each got its key (so the keys were used). Then
every artefact is searched for the keys: the run directory (store, manifest.json), the response
cache, the log records, the terminal output of ``run`` and ``report``, and the report as JSON,
CSV and HTML.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import RunConfig
from mulligan.engine.rundir import build_manifest, resume_conflicts
from mulligan.events import ErrorEvent, Message, ObservationEvent
from mulligan.models import BackendError, CallContext, Completion, GenerateParams
from mulligan.models.openai_compat import openai_compatible_model, openai_model
from mulligan.models.registry import PROVIDERS, Provider
from mulligan.models.retry import RetryPolicy
from mulligan.store import RunStore
from openai_server import OpenAIServer, Reply, Request, Response, Status

TOKEN = uuid.uuid4().hex[:16]
"""In every fake secret: finding it anywhere means a secret leaked."""

OPENAI_KEY = f"sk-fake-openai-{TOKEN}"
MULLIGAN_KEY = f"sk-fake-mulligan-{TOKEN}"
SECRETS = {
    "OPENAI_API_KEY": OPENAI_KEY,  # openai/ models
    "MULLIGAN_API_KEY": MULLIGAN_KEY,  # openai-compatible/ models
    # Never read by mulligan, common on machines that run it: must not reach anything either.
    "HF_TOKEN": f"hf_fake{TOKEN}",
    "ANTHROPIC_API_KEY": f"sk-ant-fake-{TOKEN}",
    "AWS_SECRET_ACCESS_KEY": f"fake/{TOKEN}",
    "GITHUB_TOKEN": f"ghp_fake{TOKEN}",
}

# Looks for key-shaped strings everywhere it can read, then prints its whole environment.
ATTACK = r"""
import glob, os, re
pattern = re.compile(rb"(?:sk-|hf_|ghp_|fake/)[\w/-]{8,}")
found, readable = set(), 0
for path in ["/proc/self/environ", "/proc/%d/environ" % os.getppid(),
             *glob.glob("/proc/*/environ"), *glob.glob("/proc/*/cmdline")]:
    try:
        with open(path, "rb") as f:
            found.update(pattern.findall(f.read()))
        readable += 1
    except OSError:
        pass
for value in os.environ.values():
    found.update(pattern.findall(value.encode()))
print("READABLE", readable)
print("FOUND", sorted(x.decode() for x in found))
print("ENV", dict(os.environ))
"""


class Attacker:
    """A policy that hunts for keys from the sandbox, then proposes wrong answers."""

    name = "attacker/env"
    cacheable = False

    async def generate(
        self, messages: list[Message], params: GenerateParams, context: CallContext | None = None
    ) -> Completion:
        turn = context.turn if context is not None else 1
        text = f"<execute>\n{ATTACK}\n</execute>" if turn == 1 else "<solution> xyzzy </solution>"
        return Completion(text=text, model=self.name)

    async def aclose(self) -> None:
        return None


def _responder(request: Request) -> Response:
    """The feedback model wants $MULLIGAN_API_KEY, the judge $OPENAI_API_KEY."""
    model = request.body.get("model")
    expected = {"fb": MULLIGAN_KEY, "judge": OPENAI_KEY}.get(str(model))
    headers = {k.lower(): v for k, v in request.headers.items()}
    if expected is None or headers.get("authorization") != f"Bearer {expected}":
        return Status(401, "wrong key")
    return Reply("Check the arithmetic again." if model == "fb" else "BAD: the answer is wrong.")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(_responder, model_ids=()) as running:
        yield running


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text] + (
        ["the token"] if TOKEN in text else []
    )


def test_no_secret_reaches_any_artefact(
    tmp_path: Path,
    mint_dir: Path,
    server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MULLIGAN_BASE_URL", server.base_url)
    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MULLIGAN_DATA_DIR", str(mint_dir))
    monkeypatch.setenv("MULLIGAN_LLAMA_THREADS", "1")
    monkeypatch.setenv("MULLIGAN_SANDBOX_ISOLATION", "auto")
    attacker = Provider(lambda rest, base_url, args: Attacker(), "attacker backend")
    monkeypatch.setitem(PROVIDERS, "attacker", attacker)
    # openai/ with its base URL pointed at the fake server (the key still comes from the env).
    here = Provider(
        lambda rest, base_url, args: openai_model(rest, base_url=server.base_url),
        "OpenAI backend",
    )
    monkeypatch.setitem(PROVIDERS, "openai-here", here)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "run"
    args = [
        "run", "--suite", "mint", "--tasks", "gsm8k", "--limit", "2", "--model", "attacker/env",
        "--turns", "3", "--proposals", "2", "--feedback", "llm",
        "--feedback-model", "openai-compatible/fb", "--judge-model", "openai-here/judge",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["mulligan", *args])
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    terminal = [result.output]
    for extra in (["--format", "json"], ["--format", "csv"], ["--html", str(tmp_path / "r.html")]):
        shown = runner.invoke(app, ["report", str(out), *extra])
        assert shown.exit_code == 0, shown.output
        terminal.append(shown.output)
    terminal.append(runner.invoke(app, ["report", str(out)]).output)

    # The keys were used: each model's requests carried its own key.
    used = {
        (r.body.get("model"), {k.lower(): v for k, v in r.headers.items()}.get("authorization"))
        for r in server.requests
    }
    assert used == {("fb", f"Bearer {MULLIGAN_KEY}"), ("judge", f"Bearer {OPENAI_KEY}")}

    # The attacker ran in the sandbox, saw an environment, and found no key in it.
    with RunStore.open_existing(out) as store:
        episodes = list(store.episodes())
    assert len(episodes) == 2 and all(e.status == "finished" for e in episodes)
    views = [
        e.content
        for ep in episodes
        for e in ep.events
        if isinstance(e, ObservationEvent) and e.source == "sandbox"
    ]
    assert len(views) == 2 and all("FOUND []" in v and "'PATH'" in v for v in views), views
    assert not [e for ep in episodes for e in ep.events if isinstance(e, ErrorEvent)]

    # No key in any file written (store, manifest, cache, HTML), log record or terminal output.
    written = list(_files(tmp_path))
    assert out / "manifest.json" in written and any("cache" in p.parts for p in written)
    leaked = {str(p): _leaks(p.read_bytes().decode("utf-8", "replace")) for p in written}
    leaked["logs"] = _leaks(caplog.text)
    leaked.update({f"terminal {i}": _leaks(text) for i, text in enumerate(terminal)})
    assert {where: names for where, names in leaked.items() if names} == {}


async def test_credentials_in_a_base_url_stay_out_of_error_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$MULLIGAN_BASE_URL may carry a password (a proxy with basic auth); a failing server's
    message, which lands in the episode's error, the logs and the terminal, must not show it."""
    password = f"pw-{TOKEN}"
    monkeypatch.setenv("MULLIGAN_BASE_URL", f"http://user:{password}@127.0.0.1:9/v1")
    model = openai_compatible_model("x", retry=RetryPolicy(max_attempts=1))
    try:
        with pytest.raises(BackendError) as info:
            await model.generate([Message(role="user", content="hi")], GenerateParams())
    finally:
        await model.aclose()
    assert "127.0.0.1:9" in str(info.value)  # the message still says which server
    assert password not in str(info.value) and password not in repr(model)


def test_credentials_in_urls_given_as_options_stay_out_of_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model name or ``--base-url`` with a password is kept in argv and the config; the
    manifest (meant to be shared) masks it, and a resume with the same options still matches."""
    password = f"pw-{TOKEN}"
    url = f"http://user:{password}@127.0.0.1:9/v1"
    cfg = RunConfig.model_validate(
        {"model": f"openai-compatible/m@{url}", "base_url": url, "out": tmp_path / "run"}
    )
    monkeypatch.setattr(sys, "argv", ["mulligan", "run", "--base-url", url])
    manifest = build_manifest(cfg, "r", [], "bwrap")
    text = json.dumps(manifest)
    assert password not in text and "http://127.0.0.1:9/v1" in text
    assert resume_conflicts(manifest["config"], cfg) == []
    other = cfg.with_options(model="openai-compatible/m2@" + url)
    assert resume_conflicts(manifest["config"], other) != []
