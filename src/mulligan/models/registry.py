"""The one model registry: ``provider/model`` names to backend instances, with each provider's
backend arguments (``-M key=value``, :mod:`mulligan.models.args`) and whether it uses
``--base-url``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mulligan.errors import MulliganError
from mulligan.models.args import (
    LLAMA_CPP_ARGS,
    OPENAI_ARGS,
    VLLM_ARGS,
    ModelArg,
    ModelArgError,
    check_model_args,
    hashed_args,
)
from mulligan.models.base import Model
from mulligan.models.scripted import SCRIPTS, ScriptedModel


class UnknownModelError(MulliganError, ValueError):
    """A model name that no provider recognises."""


ModelFactory = Callable[[str, str | None, Mapping[str, Any]], Model]
"""Builds a backend from the part of the name after ``provider/``, the optional base URL and
the role's backend arguments (checked against the provider's table, ``null`` ones dropped)."""


@dataclass(frozen=True)
class Provider:
    """A registered provider: its factory, the backend arguments it accepts, and whether it
    connects to ``--base-url``.

    Attributes:
        backend: the backend in words, for messages ("llama.cpp backend").
    """

    factory: ModelFactory
    backend: str
    args: Mapping[str, ModelArg] = field(default_factory=dict)
    uses_base_url: bool = False


def _scripted(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    if rest not in SCRIPTS:
        raise UnknownModelError(
            f"unknown scripted model 'scripted/{rest}'; choose one of "
            + ", ".join(f"scripted/{s}" for s in SCRIPTS)
        )
    return ScriptedModel(rest)


def _local(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    # Imported here so that runs that never touch llama.cpp do not need it installed.
    from mulligan.models.local import LocalModel

    return LocalModel.from_name(f"local/{rest}", **args)


def _openai_kwargs(model: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor's keyword arguments: ``retry`` as a :class:`RetryPolicy`."""
    from pydantic import ValidationError

    from mulligan.models.retry import RetryPolicy

    kwargs = dict(args)
    if "retry" in kwargs:
        try:
            kwargs["retry"] = RetryPolicy.model_validate(kwargs["retry"])
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
            )
            known = ", ".join(RetryPolicy.model_fields)
            raise ModelArgError(
                f"model argument retry for {model}: {problems} (it takes {known})"
            ) from None
    return kwargs


def _openai(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    # --base-url is not used here: it would send $OPENAI_API_KEY to whatever server it names.
    from mulligan.models.openai_compat import BackendConfigError, openai_model

    try:
        return openai_model(rest, **_openai_kwargs(f"openai/{rest}", args))
    except BackendConfigError as e:
        raise UnknownModelError(str(e)) from e


def _openai_compatible(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    # Base URL: 'model@http://host:port/v1[,http://...]' in the name, --base-url, or
    # $MULLIGAN_BASE_URL.
    from mulligan.models.openai_compat import BackendConfigError, openai_compatible_model

    kwargs = _openai_kwargs(f"openai-compatible/{rest}", args)
    try:
        return openai_compatible_model(rest, base_url=base_url, **kwargs)
    except BackendConfigError as e:
        raise UnknownModelError(str(e)) from e


def _replay(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    from mulligan.models.replay import ReplayModel, ReplayModelError

    try:
        return ReplayModel(rest)
    except ReplayModelError as e:
        raise UnknownModelError(str(e)) from e


def _vllm(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
    # vLLM is imported on first use, so naming the model costs nothing on machines without it.
    from mulligan.models.vllm_offline import VLLMModel

    kwargs = dict(args)
    engine_args = kwargs.pop("engine_args", {})
    if "model" in engine_args or "engine" in engine_args:
        raise ModelArgError(f"vllm/{rest}: engine_args may not set 'model' or 'engine'")
    return VLLMModel(rest, **{**engine_args, **kwargs})


PROVIDERS: dict[str, Provider] = {
    "scripted": Provider(_scripted, "scripted backend"),
    "local": Provider(_local, "llama.cpp backend", LLAMA_CPP_ARGS),
    "openai": Provider(_openai, "OpenAI backend", OPENAI_ARGS),
    "openai-compatible": Provider(
        _openai_compatible, "OpenAI-compatible backend", OPENAI_ARGS, uses_base_url=True
    ),
    "replay": Provider(_replay, "replay backend"),
    "vllm": Provider(_vllm, "vLLM backend", VLLM_ARGS),
}


def register_provider(
    provider: str,
    factory: ModelFactory,
    *,
    args: Mapping[str, ModelArg] | None = None,
    uses_base_url: bool = False,
    replace: bool = False,
) -> None:
    """Make ``provider/...`` model names build backends with ``factory``.

    A new backend is one module with a :class:`~mulligan.models.base.Model` and one call (or one
    entry in :data:`PROVIDERS`). ``args`` are the backend arguments it accepts (none by
    default); ``uses_base_url`` says that it connects to ``--base-url``. Refuses to shadow a
    provider unless ``replace`` is given.
    """
    if not provider or "/" in provider:
        raise ValueError(f"provider name {provider!r} must be non-empty and contain no '/'")
    if provider in PROVIDERS and not replace:
        raise ValueError(f"model provider {provider!r} is already registered")
    PROVIDERS[provider] = Provider(
        factory, f"{provider} backend", dict(args or {}), uses_base_url=uses_base_url
    )


def _provider(name: str) -> tuple[Provider, str]:
    provider, sep, rest = name.partition("/")
    if not sep or not rest:
        raise UnknownModelError(f"model {name!r} must look like provider/model")
    if provider not in PROVIDERS:
        raise UnknownModelError(
            f"unknown model provider {provider!r} in {name!r}; known: {', '.join(PROVIDERS)}"
        )
    return PROVIDERS[provider], rest


def get_model(
    name: str, *, base_url: str | None = None, args: Mapping[str, Any] | None = None
) -> Model:
    """Instantiate the backend for ``provider/model`` (e.g. ``local/qwen2.5-coder-0.5b``).

    ``base_url`` (comma-separated for replicas) is used by ``openai-compatible/...`` only.
    ``args`` are backend arguments (``-M key=value``), checked against what the provider
    accepts before anything is built.

    Raises:
        UnknownModelError: the name names no provider or model.
        ModelArgError: an argument the backend does not accept, or a bad value.
    """
    provider, rest = _provider(name)
    checked = check_model_args(name, provider.backend, provider.args, args or {})
    try:
        return provider.factory(rest, base_url, checked)
    except (TypeError, ValueError) as e:
        if not checked or isinstance(e, MulliganError):
            raise
        # A backend's own check of an argument's value (e.g. a context too small to hold one).
        raise ModelArgError(f"{name}: {e} (model arguments: {checked})") from e


def uses_base_url(name: str) -> bool:
    """Whether model ``name``'s provider connects to ``--base-url`` (False for unknown names)."""
    provider = PROVIDERS.get(name.partition("/")[0])
    return provider is not None and provider.uses_base_url


def result_args(name: str | None, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments among ``args`` that define the results of model ``name`` (see
    :mod:`mulligan.models.args`); all of them when the provider is unknown."""
    provider = PROVIDERS.get((name or "").partition("/")[0])
    return hashed_args(provider.args if provider is not None else None, args)
