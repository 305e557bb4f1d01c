"""The model registry: provider/model names to backends, and adding a provider."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from mulligan.models import (
    PROVIDERS,
    Model,
    ScriptedModel,
    UnknownModelError,
    get_model,
    register_provider,
)


@pytest.fixture
def toy_provider() -> Iterator[list[tuple[str, str | None]]]:
    calls: list[tuple[str, str | None]] = []

    def factory(rest: str, base_url: str | None, args: Mapping[str, Any]) -> Model:
        calls.append((rest, base_url))
        return ScriptedModel("reference")

    register_provider("toy", factory)
    yield calls
    del PROVIDERS["toy"]


def test_a_registered_provider_builds_its_backends(
    toy_provider: list[tuple[str, str | None]],
) -> None:
    model = get_model("toy/anything", base_url="http://127.0.0.1:1/v1")
    assert isinstance(model, ScriptedModel)
    assert toy_provider == [("anything", "http://127.0.0.1:1/v1")]


def test_a_provider_is_not_shadowed_by_accident(toy_provider: list[tuple[str, str | None]]) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_provider("toy", lambda rest, url, args: ScriptedModel("wrong"))
    with pytest.raises(ValueError, match="contain no '/'"):
        register_provider("a/b", lambda rest, url, args: ScriptedModel("wrong"))


def test_unknown_providers_name_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"known: .*scripted.*local"):
        get_model("nosuch/model")
    with pytest.raises(UnknownModelError, match="provider/model"):
        get_model("scripted")
