"""The one model registry: ``provider/model`` names to backend instances."""

from __future__ import annotations

from collections.abc import Callable

from mulligan.models.base import Model
from mulligan.models.scripted import SCRIPTS, ScriptedModel


class UnknownModelError(ValueError):
    """A model name that no provider recognises."""


def _scripted(rest: str) -> Model:
    if rest not in SCRIPTS:
        raise UnknownModelError(
            f"unknown scripted model 'scripted/{rest}'; choose one of "
            + ", ".join(f"scripted/{s}" for s in SCRIPTS)
        )
    return ScriptedModel(rest)  # type: ignore[arg-type]


def _local(rest: str) -> Model:
    # Imported here so that runs that never touch llama.cpp do not need it installed.
    from mulligan.models.local import LocalModel

    return LocalModel.from_name(f"local/{rest}")


PROVIDERS: dict[str, Callable[[str], Model]] = {
    "scripted": _scripted,
    "local": _local,
}


def get_model(name: str) -> Model:
    """Instantiate the backend for ``provider/model`` (e.g. ``local/qwen2.5-coder-0.5b``)."""
    provider, sep, rest = name.partition("/")
    if not sep or not rest:
        raise UnknownModelError(f"model {name!r} must look like provider/model")
    if provider not in PROVIDERS:
        raise UnknownModelError(
            f"unknown model provider {provider!r} in {name!r}; known: {', '.join(PROVIDERS)}"
        )
    return PROVIDERS[provider](rest)
