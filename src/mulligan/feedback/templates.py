"""Versioned Jinja2 prompt templates of the model-based feedback providers, with content hashes.

Each template is one self-contained file in ``feedback/prompts/`` (in-context example included),
so the hash of that one file pins every word the feedback model was shown. The first line of a
file declares its version: ``{#- version: 2 -#}``. Both are recorded on every feedback event
(``FeedbackEvent.template_hash``) and can be listed with :func:`template_versions`.

A template may open with a system message: the text before a line reading exactly
:data:`USER_MARKER` is sent as the system message, the rest as the user message
(:func:`to_messages`). Small feedback models keep their role far better when it is stated there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2

from mulligan.events import Message

_PACKAGE = "mulligan.feedback"
_DIR = "prompts"
USER_MARKER = "==== user message ===="
"""Separates a rendered template's system message from its user message."""

_VERSION = re.compile(r"\{#-?\s*version:\s*([\w.\-]+)\s*-?#\}")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader(_PACKAGE, _DIR),
    undefined=jinja2.StrictUndefined,  # a missing variable is a bug, never an empty string
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # plain-text prompts, never HTML
)


@dataclass(frozen=True, slots=True)
class FeedbackTemplate:
    """One prompt template file: its name, declared version and content hash."""

    name: str
    version: str
    hash: str
    """First 16 hex digits of the sha256 of the file's bytes."""

    def render(self, **variables: Any) -> str:
        """The prompt text for these variables (every variable the file uses must be given)."""
        return _ENV.get_template(self.name).render(**variables).strip()


@cache
def load_template(name: str) -> FeedbackTemplate:
    """The template ``feedback/prompts/<name>``; raises FileNotFoundError if there is none."""
    path = resources.files(_PACKAGE).joinpath(_DIR, name)
    if not path.is_file():
        known = ", ".join(sorted(template_names()))
        raise FileNotFoundError(f"no feedback prompt template {name!r}; known: {known}")
    data = path.read_bytes()
    found = _VERSION.search(data.decode("utf-8").split("\n", 1)[0])
    if found is None:
        raise ValueError(f"feedback template {name!r} does not declare {{#- version: N -#}}")
    return FeedbackTemplate(
        name=name, version=found.group(1), hash=hashlib.sha256(data).hexdigest()[:16]
    )


def template_names() -> list[str]:
    """Names of the template files shipped with mulligan."""
    folder = resources.files(_PACKAGE).joinpath(_DIR)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".j2"))


def template_versions() -> dict[str, dict[str, str]]:
    """``{name: {"version": ..., "hash": ...}}`` for every template (for run manifests)."""
    out: dict[str, dict[str, str]] = {}
    for name in template_names():
        template = load_template(name)
        out[name] = {"version": template.version, "hash": template.hash}
    return out


def to_messages(prompt: str) -> list[Message]:
    """A rendered template as chat messages: system (if it has a :data:`USER_MARKER` line) + user."""
    lines = prompt.split("\n")
    if USER_MARKER not in (line.strip() for line in lines):
        return [Message(role="user", content=prompt)]
    at = next(i for i, line in enumerate(lines) if line.strip() == USER_MARKER)
    system = "\n".join(lines[:at]).strip()
    user = "\n".join(lines[at + 1 :]).strip()
    return [Message(role="system", content=system), Message(role="user", content=user)]
