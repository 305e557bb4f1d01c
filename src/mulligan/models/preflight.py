"""Checks that a model's backend answers before a run starts, so a dead server costs seconds.

Without them, a run against a server that is down spends every episode on retries (about 21 s
each with the default policy) and stores them all as failed. :func:`check_endpoint` asks each
OpenAI-compatible server once, ``GET /models`` with a short timeout: a refused connection, a
timeout or a rejected API key stops the run with an error that names the URL and the fix. A
server that answers anything else (even 404: some have no ``/models``) is up. A local model's
weights are checked when it is named (:meth:`~mulligan.models.local.LocalModel.from_name`), so
there is nothing left to check here; other backends are not asked.

Roles are checked through their wrappers (response cache, role settings), which name what they
wrap ``inner``.
"""

from __future__ import annotations

import asyncio

from mulligan.errors import MulliganError
from mulligan.models.base import Model
from mulligan.models.http import TRANSPORT_ERRORS, Endpoint
from mulligan.models.openai_compat import (
    API_KEY_ENV,
    BASE_URL_ENV,
    OPENAI_BASE_URL,
    OPENAI_KEY_ENV,
    OpenAICompatModel,
    public_url,
    redact_url_credentials,
)

PREFLIGHT_TIMEOUT_S = 10.0


class EndpointError(MulliganError):
    """A model's server cannot be reached or refuses our key; the message names URL and fix."""


def backend_of(model: Model) -> Model:
    """The backend under a model's wrappers (each wrapper names what it wraps ``inner``)."""
    for _ in range(16):  # wrappers nest a few deep; the bound only guards against a cycle
        inner = getattr(model, "inner", None)
        if inner is None:
            break
        model = inner
    return model


def _fix(model: OpenAICompatModel) -> str:
    if any(e.base_url.rstrip("/") == OPENAI_BASE_URL for e in model.endpoints):
        return "check your network connection"
    return (
        f"start the server, or pass --base-url URL (or set ${BASE_URL_ENV}) to the one that "
        "serves this model"
    )


async def _ask(model: OpenAICompatModel, endpoint: Endpoint, timeout_s: float) -> str | None:
    """None if ``endpoint`` answers ``GET /models``, else what is wrong with it and the fix."""
    url = public_url(endpoint.base_url)
    try:
        response = await endpoint.request("GET", "models", timeout_s=timeout_s)
    except TimeoutError:
        return f"{url} did not answer GET /models within {timeout_s:g} s; {_fix(model)}"
    except TRANSPORT_ERRORS as e:
        detail = redact_url_credentials(f"{type(e).__name__}: {e}")
        return f"cannot connect to {url} ({detail}); {_fix(model)}"
    status = response.status
    if status >= 400:
        if status in (401, 403):
            key = OPENAI_KEY_ENV if url.rstrip("/") == OPENAI_BASE_URL else API_KEY_ENV
            return f"{url} refused the API key (HTTP {status}); set ${key} to a valid key"
        return None  # it answered: up (a server without /models says 404)
    return None


async def check_endpoint(model: Model, *, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Raise :class:`EndpointError` if ``model``'s server does not answer (see the module
    docstring); with several replicas, if none does (the fleet routes around a dead one)."""
    backend = backend_of(model)
    if not isinstance(backend, OpenAICompatModel):
        return
    problems = await asyncio.gather(*(_ask(backend, e, timeout_s) for e in backend.endpoints))
    if all(problems):
        found = "; ".join(p for p in problems if p)
        raise EndpointError(f"{backend.name}: {found}")
