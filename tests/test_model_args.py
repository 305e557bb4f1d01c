"""Backend arguments: ``-M key=value`` and ``--model-config FILE`` per role, checked per backend,
reaching the OpenAI-compatible client, llama.cpp and vLLM's engine; which of them are hashed;
base URLs (``--base-url``, ``$OPENAI_BASE_URL``) and the warning for one nothing uses."""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mulligan.cli import app
from mulligan.config import ConfigError, RunConfig, build_config, parse_model_args
from mulligan.engine.components import build_components, warn_unused_base_url
from mulligan.engine.rundir import resume_conflicts
from mulligan.models import (
    PROVIDERS,
    Model,
    ScriptedModel,
    UnknownModelError,
    get_model,
    register_provider,
)
from mulligan.models.args import (
    LLAMA_CPP_ARGS,
    OPENAI_ARGS,
    VLLM_ARGS,
    ModelArg,
    ModelArgError,
)
from mulligan.models.local import LocalModel
from mulligan.models.openai_compat import OpenAICompatModel
from mulligan.models.retry import RetryPolicy
from mulligan.models.roles import RoleModel
from mulligan.models.vllm_offline import VLLMModel
from mulligan.models.weights import GGUF_MAGIC
from openai_server import OpenAIServer

DEFAULT_HASH = "5089e6e57847532f"  # tests/test_config.py pins it: runs stored before must resume


# ---------------------------------------------------------------------------- parsing, files


def test_values_are_json_when_they_parse_and_strings_otherwise() -> None:
    args = parse_model_args(
        ["max_model_len=4096", "stream=true", "mode=completion", 'extra_body={"top_k": 20}',
         "ratio=0.5", "note=a=b", "empty=", "x=null"]
    )  # fmt: skip
    assert args == {
        "max_model_len": 4096,
        "stream": True,
        "mode": "completion",
        "extra_body": {"top_k": 20},
        "ratio": 0.5,
        "note": "a=b",
        "empty": "",
        "x": None,
    }
    assert parse_model_args({"n_ctx": 8}) == {"n_ctx": 8}
    for bad in (["no_equals"], ["=4"]):
        with pytest.raises(ValueError, match="is not key=value"):
            parse_model_args(bad)


def test_the_file_goes_under_the_flags_and_is_read_once(tmp_path: Path) -> None:
    for name, text in (
        ("args.yaml", "max_model_len: 4096\ndtype: bfloat16\n"),
        ("args.toml", 'max_model_len = 4096\ndtype = "bfloat16"\n'),
        ("args.json", '{"max_model_len": 4096, "dtype": "bfloat16"}'),
    ):
        path = tmp_path / name
        path.write_text(text)
        config = RunConfig(model="vllm/m", model_config=path, model_args=["dtype=float16"])
        assert config.policy.model_args == {"max_model_len": 4096, "dtype": "float16"}, name
        # The manifest holds the arguments, not the path: a resume needs no file.
        assert config.options()["model_config"] is None
        path.unlink()
        assert RunConfig.model_validate(config.options()) == config


def test_file_errors_name_the_option_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"^judge_model_config: cannot read .*nope\.yaml"):
        build_config(None, {"judge_model": "scripted/reference", "judge_model_config": missing})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"^feedback_model_config: .*bad\.json is not valid JSON"):
        build_config(None, {"feedback_model_config": bad})
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping of argument: value"):
        build_config(None, {"model_config": listed})
    with pytest.raises(ConfigError, match=r"model_args: .*'oops' is not key=value"):
        build_config(None, {"model_args": ["oops"]})


def test_flags_add_to_the_config_files_arguments_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model: vllm/m\nmodel_args: {max_model_len: 4096, dtype: bfloat16}\n")
    config = build_config(path, {"model_args": ["dtype=float16", "enforce_eager=true"]})
    assert config.policy.model_args == {
        "max_model_len": 4096,
        "dtype": "float16",
        "enforce_eager": True,
    }
    # A repeatable flag given no times arrives as (): the file's arguments stay.
    assert build_config(path, {"model_args": ()}).policy.model_args["dtype"] == "bfloat16"
    nested = tmp_path / "nested.yaml"
    nested.write_text("judge:\n  model: vllm/j\n  model_args: [max_model_len=2048]\n")
    assert build_config(nested, {}).judge.model_args == {"max_model_len": 2048}


# ------------------------------------------------------------------------------------ hashing


def test_no_arguments_keeps_every_existing_hash() -> None:
    assert RunConfig().config_hash() == DEFAULT_HASH
    assert RunConfig(model_args={}, judge_model_args=[]).config_hash() == DEFAULT_HASH


@pytest.mark.parametrize(
    ("model", "unhashed", "hashed"),
    [
        (
            "openai-compatible/m",
            {"timeout_s": 5, "stream": True, "max_concurrency": 2, "retry": {"max_attempts": 1}},
            {"mode": "completion"},
        ),
        ("openai/gpt-4o-mini", {"balance": "round-robin"}, {"extra_body": {"top_k": 5}}),
        ("local/smollm2-135m", {"n_threads": 1, "n_batch": 64}, {"n_ctx": 8192}),
        ("vllm/m", {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5},
         {"max_model_len": 4096}),
    ],
)  # fmt: skip
def test_only_arguments_that_change_results_are_hashed(
    model: str, unhashed: dict[str, Any], hashed: dict[str, Any]
) -> None:
    base = RunConfig(model=model, feedback="llm", feedback_model=model)
    for role in ("model_args", "feedback_model_args"):
        assert base.with_options(**{role: unhashed}).config_hash() == base.config_hash()
        changed = base.with_options(**{role: {**unhashed, **hashed}})
        assert changed.config_hash() != base.config_hash()
        assert changed.result_fields()[role] == hashed


def test_arguments_of_an_unknown_backend_are_all_hashed() -> None:
    base = RunConfig(model="elsewhere/m")
    assert base.with_options(model_args={"speed": 1}).config_hash() != base.config_hash()


def test_resume_compares_only_the_hashed_arguments() -> None:
    stored = RunConfig(model="vllm/m", model_args={"max_model_len": 4096, "enforce_eager": True})
    faster = stored.with_options(model_args={"max_model_len": 4096, "max_num_seqs": 8})
    assert resume_conflicts(stored.options(), faster) == []
    longer = stored.with_options(model_args={"max_model_len": 8192})
    assert resume_conflicts(stored.options(), longer) == [
        "model_args: {'max_model_len': 4096} -> {'max_model_len': 8192}"
    ]
    # A run stored before arguments existed resumes, unless the new run uses one.
    older = {k: v for k, v in RunConfig(model="vllm/m").options().items() if "model_arg" not in k}
    assert resume_conflicts(older, RunConfig(model="vllm/m")) == []
    assert resume_conflicts(older, longer) != []


# ------------------------------------------------------------------------ checks per backend


@pytest.mark.parametrize(
    ("model", "backend", "some_accepted"),
    [
        ("openai-compatible/m@http://127.0.0.1:9/v1", "OpenAI-compatible backend", "extra_body"),
        ("local/smollm2-135m", "llama.cpp backend", "n_ctx"),
        ("vllm/m", "vLLM backend", "tensor_parallel_size"),
    ],
)
def test_an_unknown_key_names_the_key_the_backend_and_what_it_accepts(
    model: str, backend: str, some_accepted: str
) -> None:
    with pytest.raises(ModelArgError) as caught:
        get_model(model, args={"tensor_paralel_size": 2})
    message = str(caught.value)
    assert f"unknown model argument 'tensor_paralel_size' for {model}: the {backend} accepts" in (
        message
    )
    assert some_accepted in message


def test_backends_without_arguments_say_so() -> None:
    with pytest.raises(ModelArgError, match="the scripted backend accepts none"):
        get_model("scripted/reference", args={"n_ctx": 1})
    assert isinstance(get_model("scripted/reference", args={}), ScriptedModel)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"timeout_s": "soon"}, "timeout_s .* must be a number"),
        ({"stream": 1}, "stream .* must be true or false"),
        ({"max_concurrency": True}, "must be a whole number"),
        ({"mode": "chatty"}, "mode .* must be one of chat, completion"),
        ({"max_concurrency": 0}, "max_concurrency .* must be at least 1"),
        ({"extra_body": "top_k=1"}, "extra_body .* must be a JSON object"),
        ({"retry": {"max_attempts": 0}}, r"retry .*max_attempts: .*greater than or equal to 1"),
        ({"retry": {"attempts": 2}}, r"retry .*it takes max_attempts"),
    ],
)
def test_bad_values_are_clear_errors(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelArgError, match=message):
        get_model("openai-compatible/m@http://127.0.0.1:9/v1", args=args)


def test_each_table_names_its_constructors_parameters() -> None:
    openai_params = inspect.signature(OpenAICompatModel.__init__).parameters
    assert set(OPENAI_ARGS) <= set(openai_params)
    assert set(LLAMA_CPP_ARGS) <= set(inspect.signature(LocalModel.from_name).parameters)
    vllm_own = set(inspect.signature(VLLMModel.__init__).parameters)
    assert {"batch_window_s", "max_batch"} <= set(VLLM_ARGS) and "engine" not in VLLM_ARGS
    try:  # the engine's own arguments, where vLLM is installed
        from vllm import EngineArgs  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    engine = set(inspect.signature(EngineArgs).parameters)
    assert set(VLLM_ARGS) - vllm_own - {"engine_args"} <= engine


# ------------------------------------------------------------------------ reaching backends


def test_arguments_reach_the_openai_compatible_client() -> None:
    model = get_model(
        "openai-compatible/m@http://127.0.0.1:9/v1",
        args={
            "mode": "completion",
            "stream": True,
            "timeout_s": 7,
            "max_concurrency": 3,
            "extra_body": {"top_k": 20},
            "send_seed": False,
            "retry": {"max_attempts": 2},
            "balance": None,  # null: the backend's default
        },
    )
    assert isinstance(model, OpenAICompatModel)
    assert (model.mode, model.stream, model.timeout_s, model.send_seed) == (
        "completion",
        True,
        7,
        False,
    )
    assert model.extra_body == {"top_k": 20} and model.retry == RetryPolicy(max_attempts=2)
    assert [limit.maximum for limit in model.pool.limits] == [3]


def test_arguments_reach_llama_cpp(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(GGUF_MAGIC + b"\0" * 16)
    model = get_model(f"local/{gguf}", args={"n_ctx": 1000, "n_threads": 1, "reuse_prefix": False})
    assert isinstance(model, LocalModel)
    assert (model.n_ctx, model.n_threads, model.reuse_prefix) == (1024, 1, False)
    with pytest.raises(ModelArgError, match=r"n_ctx .* must be at least 16"):
        get_model(f"local/{gguf}", args={"n_ctx": 8})


async def test_arguments_reach_vllms_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, Any]] = []

    class FakeLLM:
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM  # type: ignore[attr-defined]
    fake.SamplingParams = dict  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    model = get_model(
        "vllm/org/m",
        args={
            "tensor_parallel_size": 2,
            "max_model_len": 4096,
            "dtype": "bfloat16",
            "engine_args": {"seed": 3, "dtype": "float16"},  # a named argument wins
            "max_batch": 8,
        },
    )
    assert isinstance(model, VLLMModel) and model._max_batch == 8
    from mulligan.models.vllm_offline import _load_vllm_engine

    _load_vllm_engine(model.model, model._engine_kwargs)
    assert built == [
        {"model": "org/m", "tensor_parallel_size": 2, "max_model_len": 4096,
         "dtype": "bfloat16", "seed": 3}
    ]  # fmt: skip
    assert (await model.resolve_identity())["dtype"] == "bfloat16"
    with pytest.raises(ModelArgError, match="engine_args may not set 'model'"):
        get_model("vllm/org/m", args={"engine_args": {"model": "other/m"}})


# ---------------------------------------------------------------------------------- base URLs


def test_openai_honours_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/v1")
    model = get_model("openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert isinstance(model, OpenAICompatModel)
    # Never --base-url: it would carry $OPENAI_API_KEY to another server.
    assert [e.base_url for e in model.endpoints] == ["https://gateway.example/v1"]


def test_the_missing_url_error_names_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULLIGAN_BASE_URL", raising=False)
    hint = re.escape("pass --base-url http://127.0.0.1:8000/v1")
    with pytest.raises(UnknownModelError, match=hint) as caught:
        get_model("openai-compatible/m")
    assert "MULLIGAN_BASE_URL" in str(caught.value)


def test_a_comma_separated_base_url_is_a_fleet() -> None:
    model = get_model("openai-compatible/m", base_url="http://a:1/v1, http://b:2/v1")
    assert isinstance(model, OpenAICompatModel)
    assert [e.base_url for e in model.endpoints] == ["http://a:1/v1", "http://b:2/v1"]


def test_a_base_url_that_no_model_uses_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://127.0.0.1:8000/v1"
    with caplog.at_level(logging.WARNING):
        message = warn_unused_base_url(RunConfig(model="local/smollm2-135m", base_url=url))
    assert message is not None and message in caplog.text
    assert f"--base-url {url} is ignored" in message and "local/smollm2-135m" in message
    hint = warn_unused_base_url(RunConfig(model="openai/gpt-4o", base_url=url))
    assert hint is not None and "$OPENAI_BASE_URL" in hint
    used = RunConfig(model="local/x", judge_model="openai-compatible/j", base_url=url)
    assert warn_unused_base_url(used) is None
    assert warn_unused_base_url(RunConfig(model="local/x")) is None


# ------------------------------------------------------------------------------ roles, CLI


@pytest.fixture
def toy() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    built: list[tuple[str, dict[str, Any]]] = []

    def factory(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
        built.append((rest, dict(args)))
        return ScriptedModel("reference")

    register_provider("toy", factory, args={"size": ModelArg((int,), True, "a size")})
    yield built
    del PROVIDERS["toy"]


def test_each_role_gets_its_own_arguments(toy: list[tuple[str, dict[str, Any]]]) -> None:
    config = RunConfig(
        model="toy/a",
        model_args={"size": 1},
        feedback="llm",
        feedback_model="toy/a",
        feedback_model_args={"size": 2},
        judge_model="toy/a",  # no arguments of its own: shares the policy's instance
        cache="off",
    )
    components = build_components(config, tasks=[])
    assert toy == [("a", {"size": 1}), ("a", {"size": 2})]
    assert isinstance(components.feedback_model, RoleModel)
    assert components.feedback_model.inner is not components.policy
    assert components.judge is not None
    assert isinstance(components.judge.model, RoleModel)
    assert components.judge.model.inner is components.policy


def test_the_cli_passes_arguments_per_role(tmp_path: Path) -> None:
    runner = CliRunner()
    judge_file = tmp_path / "judge.toml"
    judge_file.write_text("timeout_s = 9\n")
    with OpenAIServer() as server:
        result = runner.invoke(
            app,
            ["run", "--suite", "humaneval", "--limit", "1", "--turns", "1",
             "--model", "openai-compatible/test-model", "--base-url", server.base_url,
             "-M", "mode=completion", "--model-arg", 'extra_body={"top_k": 5}',
             "--judge-model", "openai-compatible/test-model", "--judge-model-config",
             str(judge_file), "--cache", "off", "--out", str(tmp_path / "run"), "--no-progress"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    calls = [r for r in server.requests if r.path.endswith("completions")]
    assert calls and all(r.path == "/v1/completions" for r in calls)
    assert all(r.body["top_k"] == 5 for r in calls)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    config = manifest["config"]
    assert config["model_args"] == {"mode": "completion", "extra_body": {"top_k": 5}}
    assert config["judge_model_args"] == {"timeout_s": 9}
    assert config["judge_model_config"] is None


def test_the_cli_refuses_an_unknown_argument_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "--suite", "humaneval", "--limit", "1", "--model", "scripted/reference",
         "-M", "n_ctx=4096", "--out", str(tmp_path / "run"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown model argument 'n_ctx' for scripted/reference" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_the_readme_lists_every_argument_and_whether_it_is_hashed() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for table in (OPENAI_ARGS, LLAMA_CPP_ARGS, VLLM_ARGS):
        for key, spec in table.items():
            assert f"`{key}`" in readme, key
            assert (f"`{key}`*" in readme) == spec.hashed, key
