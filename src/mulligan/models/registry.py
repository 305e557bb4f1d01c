"""The one model registry: ``provider/model`` names to backend instances."""

from __future__ import annotations

from collections.abc import Callable

from mulligan.errors import MulliganError
from mulligan.models.base import Model
from mulligan.models.scripted import SCRIPTS, ScriptedModel


class UnknownModelError(MulliganError, ValueError):
    """A model name that no provider recognises."""


def _scripted(rest: str, base_url: str | None = None) -> Model:
    if rest not in SCRIPTS:
        raise UnknownModelError(
            f"unknown scripted model 'scripted/{rest}'; choose one of "
            + ", ".join(f"scripted/{s}" for s in SCRIPTS)
        )
    return ScriptedModel(rest)


def _local(rest: str, base_url: str | None = None) -> Model:
    # Imported here so that runs that never touch llama.cpp do not need it installed.
    from mulligan.models.local import LocalModel

    return LocalModel.from_name(f"local/{rest}")


def _openai(rest: str, base_url: str | None = None) -> Model:
    from mulligan.models.openai_compat import BackendConfigError, openai_model

    try:
        return openai_model(rest)
    except BackendConfigError as e:
        raise UnknownModelError(str(e)) from e


def _openai_compatible(rest: str, base_url: str | None = None) -> Model:
    # Base URL: 'model@http://host:port/v1[,http://...]' in the name, or $MULLIGAN_BASE_URL.
    from mulligan.models.openai_compat import BackendConfigError, openai_compatible_model

    try:
        return openai_compatible_model(rest, base_url=base_url)
    except BackendConfigError as e:
        raise UnknownModelError(str(e)) from e


def _replay(rest: str, base_url: str | None = None) -> Model:
    from mulligan.models.replay import ReplayModel, ReplayModelError

    try:
        return ReplayModel(rest)
    except ReplayModelError as e:
        raise UnknownModelError(str(e)) from e


def _vllm(rest: str, base_url: str | None = None) -> Model:
    # vLLM is imported on first use, so naming the model costs nothing on machines without it.
    from mulligan.models.vllm_offline import VLLMModel

    return VLLMModel(rest)


ModelFactory = Callable[[str, str | None], Model]
"""Builds a backend from the part of the name after ``provider/`` and the optional base URL."""

PROVIDERS: dict[str, ModelFactory] = {
    "scripted": _scripted,
    "local": _local,
    "openai": _openai,
    "openai-compatible": _openai_compatible,
    "replay": _replay,
    "vllm": _vllm,
}


def register_provider(provider: str, factory: ModelFactory, *, replace: bool = False) -> None:
    """Make ``provider/...`` model names build backends with ``factory``.

    A new backend is one module with a :class:`~mulligan.models.base.Model` and one call (or one
    entry in :data:`PROVIDERS`). Refuses to shadow a provider unless ``replace`` is given.
    """
    if not provider or "/" in provider:
        raise ValueError(f"provider name {provider!r} must be non-empty and contain no '/'")
    if provider in PROVIDERS and not replace:
        raise ValueError(f"model provider {provider!r} is already registered")
    PROVIDERS[provider] = factory


def get_model(name: str, *, base_url: str | None = None) -> Model:
    """Instantiate the backend for ``provider/model`` (e.g. ``local/qwen2.5-coder-0.5b``).

    ``base_url`` (comma-separated for replicas) is used by ``openai-compatible/...`` only.
    """
    provider, sep, rest = name.partition("/")
    if not sep or not rest:
        raise UnknownModelError(f"model {name!r} must look like provider/model")
    if provider not in PROVIDERS:
        raise UnknownModelError(
            f"unknown model provider {provider!r} in {name!r}; known: {', '.join(PROVIDERS)}"
        )
    return PROVIDERS[provider](rest, base_url)
