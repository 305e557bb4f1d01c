"""Issue 12, item 3: the response cache keys on each backend's identity (the server(s) and what
they report, a local model's weights checksum, a vLLM model's name and revision), so one server's
answers are never served for another's; and the manifest says which identity each role had."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from mulligan.events import Message
from mulligan.models import CachedModel, GenerateParams, get_model
from mulligan.models.base import identity_of
from mulligan.models.cache import cache_key
from mulligan.models.local import LocalModel
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.roles import RoleModel
from mulligan.models.scripted import ScriptedModel
from mulligan.models.vllm_offline import VLLMModel
from mulligan.models.weights import EMBEDDED_MODELS
from openai_server import OpenAIServer, Reply, Request, Response

GREEDY = GenerateParams(temperature=0.0, max_tokens=16)
QUESTIONS = [[Message(role="user", content=f"q{i}")] for i in range(5)]


def _says(who: str) -> object:
    def responder(request: Request) -> Response:
        return Reply(f"{who}: {request.last_user}")

    return responder


async def _ask_all(model: object) -> list[str]:
    replies = await asyncio.gather(*(model.generate(q, GREEDY) for q in QUESTIONS))  # type: ignore[attr-defined]
    return [r.text for r in replies]


async def test_two_servers_with_one_model_id_do_not_share_cached_answers(tmp_path: Path) -> None:
    """The reproduction: llama.cpp/vLLM/Ollama servers serving different weights under one id."""
    path = tmp_path / "responses.sqlite"
    with OpenAIServer(_says("A")) as a, OpenAIServer(_says("B")) as b:  # type: ignore[arg-type]
        first = CachedModel(get_model("openai-compatible/test-model", base_url=a.base_url), path)
        assert await _ask_all(first) == [f"A: q{i}" for i in range(5)]
        await first.aclose()

        second = CachedModel(get_model("openai-compatible/test-model", base_url=b.base_url), path)
        assert await _ask_all(second) == [f"B: q{i}" for i in range(5)]
        await second.aclose()
        assert len(b.requests) == 5  # B answered for itself
        assert second.hits == 0

        # The same server again still hits the cache (the identity is stable).
        again = CachedModel(get_model("openai-compatible/test-model", base_url=a.base_url), path)
        assert await _ask_all(again) == [f"A: q{i}" for i in range(5)]
        await again.aclose()
        assert len(a.requests) == 5 and again.hits == 5


async def test_same_url_serving_other_weights_is_a_miss(tmp_path: Path) -> None:
    """A server restarted on the same address with other weights: what ``/models`` reports
    (vLLM's ``root``, llama.cpp's file name and ``meta``) is part of the identity."""
    path = tmp_path / "responses.sqlite"
    with OpenAIServer(_says("old")) as server:  # type: ignore[arg-type]
        server.model_info = {"root": "/weights/old", "meta": {"n_params": 135}}
        first = CachedModel(OpenAICompatModel("test-model", base_urls=server.base_url), path)
        await _ask_all(first)
        await first.aclose()

        server.responder = _says("new")  # type: ignore[assignment]
        server.model_info = {"root": "/weights/new", "meta": {"n_params": 360}}
        second = CachedModel(OpenAICompatModel("test-model", base_urls=server.base_url), path)
        assert await _ask_all(second) == [f"new: q{i}" for i in range(5)]
        await second.aclose()
        assert len(server.requests) == 10


async def test_llama_cpp_style_server_ignoring_the_model_field(tmp_path: Path) -> None:
    """llama.cpp's server answers for whatever model it loaded, whatever id the client sends;
    the ids it reports (its file) are then the identity."""
    with OpenAIServer(model_ids=()) as server:
        server.reported_ids = ("/models/qwen-0.5b.gguf",)
        model = OpenAICompatModel("anything", base_urls=server.base_url)
        identity = await identity_of(model)
        await model.aclose()
    (entry,) = identity["servers"]
    assert entry["url"] == server.base_url
    assert [m["id"] for m in entry["reported"]] == ["/models/qwen-0.5b.gguf"]


async def test_a_server_without_models_endpoint_is_keyed_on_its_url(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite"
    with OpenAIServer(_says("A")) as a, OpenAIServer(_says("B")) as b:  # type: ignore[arg-type]
        a.serve_models = b.serve_models = False  # GET /models -> 404
        model_a = CachedModel(OpenAICompatModel("test-model", base_urls=a.base_url), path)
        assert await _ask_all(model_a) == [f"A: q{i}" for i in range(5)]
        identity = await identity_of(model_a)
        await model_a.aclose()
        assert identity["servers"] == [{"url": a.base_url, "reported": None}]
        model_b = CachedModel(OpenAICompatModel("test-model", base_urls=b.base_url), path)
        assert await _ask_all(model_b) == [f"B: q{i}" for i in range(5)]
        await model_b.aclose()
        assert len(b.requests) == 5


async def test_identity_is_resolved_once_and_holds_no_secret() -> None:
    with OpenAIServer(api_key="sk-secret-123") as server:
        model = OpenAICompatModel("test-model", base_urls=server.base_url, api_key="sk-secret-123")
        identities = await asyncio.gather(*(identity_of(model) for _ in range(5)))
        await model.aclose()
    assert all(i == identities[0] for i in identities)
    assert "sk-secret-123" not in json.dumps(identities[0])
    (entry,) = identities[0]["servers"]
    assert entry["reported"] == [{"id": "test-model", "owned_by": "test"}]  # no 'created'


async def test_identity_covers_replicas_mode_and_extra_body() -> None:
    urls = ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]

    async def ident(**kw: object) -> dict[str, object]:
        model = OpenAICompatModel("m", timeout_s=0.5, **kw)  # type: ignore[arg-type]
        try:
            return await identity_of(model)
        finally:
            await model.aclose()

    base = await ident(base_urls=urls)
    assert base == await ident(base_urls=list(reversed(urls)))  # routing order is not identity
    assert base != await ident(base_urls=urls[:1])
    assert base != await ident(base_urls=urls, mode="completion")
    assert base != await ident(base_urls=urls, extra_body={"top_k": 5})


async def test_local_models_are_identified_by_their_weights(tmp_path: Path) -> None:
    embedded = LocalModel(embedded="smollm2-135m")
    assert (await identity_of(embedded))["sha256"] == EMBEDDED_MODELS["smollm2-135m"].sha256

    one, two = tmp_path / "a.gguf", tmp_path / "b.gguf"
    one.write_bytes(b"GGUF" + b"\x01" * 100)
    two.write_bytes(b"GGUF" + b"\x02" * 100)
    first, second = LocalModel(one, name="local/x.gguf"), LocalModel(two, name="local/x.gguf")
    id_one, id_two = await identity_of(first), await identity_of(second)
    assert id_one["sha256"] == hashlib.sha256(one.read_bytes()).hexdigest()
    assert id_one != id_two
    two.write_bytes(one.read_bytes())  # the same weights under another path: the same answers
    assert (await identity_of(LocalModel(two, name="local/x.gguf")))["sha256"] == id_one["sha256"]
    templated = LocalModel(one, name="local/x.gguf", chat_template="{{ messages }}")
    assert await identity_of(templated) != id_one


async def test_vllm_identity_names_model_and_revision() -> None:
    plain = await identity_of(VLLMModel("org/model", engine=object()))  # type: ignore[arg-type]
    pinned = await identity_of(VLLMModel("org/model", revision="abc123"))
    assert plain["model"] == pinned["model"] == "org/model"
    assert pinned["revision"] == "abc123" and plain != pinned


async def test_wrappers_pass_identity_through_and_key_changes_with_it() -> None:
    inner = ScriptedModel("reference")
    role = RoleModel(inner, "judge")
    assert (
        await identity_of(role)
        == await identity_of(inner)
        == {
            "backend": "scripted",
            "script": "reference",
        }
    )
    messages = [Message(role="user", content="hi")]
    assert cache_key("m", messages, GREEDY, 0, {"server": "a"}) != cache_key(
        "m", messages, GREEDY, 0, {"server": "b"}
    )


async def test_a_backend_without_identity_is_keyed_on_its_class() -> None:
    class Plain:
        name = "custom/m"
        cacheable = True

    assert (await identity_of(Plain()))["backend"].endswith("Plain")


@pytest.mark.parametrize("mode", ["on", "auto"])
async def test_run_manifest_records_each_roles_identity(
    tmp_path: Path, mint_dir: Path, sandboxes: object, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run

    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cache"))
    with OpenAIServer(_says("A")) as a, OpenAIServer(_says("B")) as b:  # type: ignore[arg-type]
        outs = []
        for server in (a, b):
            out = tmp_path / f"run-{server.port}"
            cfg = RunConfig(
                suite="mint",
                tasks=("gsm8k",),
                data_dir=mint_dir,
                limit=1,
                turns=1,
                model="openai-compatible/test-model",
                judge_model="scripted/reference",
                base_url=server.base_url,
                cache=mode,  # type: ignore[arg-type]
                out=out,
            )
            await execute_run(cfg, sandboxes=sandboxes)  # type: ignore[arg-type]
            outs.append(out)
        assert len(a.requests) == 1 and len(b.requests) == 1  # no answer crossed servers
    for out, server in zip(outs, (a, b), strict=True):
        manifest = json.loads((out / "manifest.json").read_text())
        roles = manifest["model_identity"]
        assert roles["policy"]["name"] == "openai-compatible/test-model"
        assert roles["policy"]["identity"]["servers"][0]["url"] == server.base_url
        assert roles["judge"]["identity"] == {"backend": "scripted", "script": "reference"}
        assert "feedback" not in roles


async def test_a_resume_answered_by_another_server_keeps_the_earlier_identity(
    tmp_path: Path, mint_dir: Path, sandboxes: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``base_url`` may change on resume (a server moved); the manifest then says which models
    answered the earlier invocations."""
    from mulligan.config import RunConfig
    from mulligan.engine import execute_run

    monkeypatch.setenv("MULLIGAN_CACHE_DIR", str(tmp_path / "cache"))
    with OpenAIServer(_says("A")) as a, OpenAIServer(_says("B")) as b:  # type: ignore[arg-type]
        base = dict(
            suite="mint",
            tasks=("gsm8k",),
            data_dir=mint_dir,
            limit=1,
            turns=1,
            model="openai-compatible/test-model",
            out=tmp_path / "run",
        )
        await execute_run(RunConfig(**base, base_url=a.base_url), sandboxes=sandboxes)  # type: ignore[arg-type]
        await execute_run(
            RunConfig(**base, base_url=b.base_url),  # type: ignore[arg-type]
            resume=True,
            sandboxes=sandboxes,  # type: ignore[arg-type]
        )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["model_identity"]["policy"]["identity"]["servers"][0]["url"] == b.base_url
    (earlier,) = manifest["model_identity_earlier"]
    assert earlier["policy"]["identity"]["servers"][0]["url"] == a.base_url


def test_urls_in_the_identity_carry_no_credentials() -> None:
    from mulligan.models.openai_compat import public_url

    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    cleaned = public_url("https://user:sk-secret@host.example:8443/v1?api-key=sk-other")
    assert "sk-" not in cleaned and "user" not in cleaned
    assert cleaned.startswith("https://host.example:8443/v1?sha256=")
    assert cleaned != public_url("https://host.example:8443/v1?api-key=sk-third")
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


async def test_an_unknown_identity_bypasses_the_cache(tmp_path: Path) -> None:
    class Unsure(ScriptedModel):
        cacheable = True

        async def resolve_identity(self) -> dict[str, object]:
            raise OSError("weights unreadable")

    from mulligan.models import CallContext
    from mulligan.tasks import Task

    task = Task(
        id="t",
        suite="gsm8k",
        category="reasoning",
        prompt="p",
        reference="1",
        checker="gsm8k",
        gold_solution="1",
    )
    inner = Unsure("reference")
    model = CachedModel(inner, tmp_path / "c.sqlite", mode="on")
    for _ in range(3):
        await model.generate(QUESTIONS[0], GREEDY, CallContext(task=task, turn=1))
    assert inner.calls == 3 and model.hits == 0
    assert model.cache is not None and len(model.cache) == 0 and model.errors == 1
    await model.aclose()
