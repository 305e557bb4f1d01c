"""Model backends behind one async protocol, and the registry that names them."""

from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    Model,
    ModelError,
)
from mulligan.models.cache import CACHE_MODES, CachedModel, ResponseCache
from mulligan.models.openai_compat import BackendError, OpenAICompatModel
from mulligan.models.pricing import PriceTable
from mulligan.models.registry import (
    PROVIDERS,
    ModelFactory,
    UnknownModelError,
    get_model,
    register_provider,
)
from mulligan.models.replay import ReplayModel
from mulligan.models.retry import RetryPolicy
from mulligan.models.scripted import ScriptedModel

__all__ = [
    "CACHE_MODES",
    "PROVIDERS",
    "BackendError",
    "CachedModel",
    "CallContext",
    "Completion",
    "ContextWindowExceeded",
    "GenerateParams",
    "Model",
    "ModelError",
    "ModelFactory",
    "OpenAICompatModel",
    "PriceTable",
    "ReplayModel",
    "ResponseCache",
    "RetryPolicy",
    "ScriptedModel",
    "UnknownModelError",
    "get_model",
    "register_provider",
]
