"""Model backends behind one async protocol, and the registry that names them."""

from mulligan.models.base import (
    CallContext,
    Completion,
    ContextWindowExceeded,
    GenerateParams,
    Model,
    ModelError,
)
from mulligan.models.registry import PROVIDERS, UnknownModelError, get_model
from mulligan.models.scripted import ScriptedModel

__all__ = [
    "PROVIDERS",
    "CallContext",
    "Completion",
    "ContextWindowExceeded",
    "GenerateParams",
    "Model",
    "ModelError",
    "ScriptedModel",
    "UnknownModelError",
    "get_model",
]
