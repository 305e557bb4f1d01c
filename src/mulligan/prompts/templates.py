"""The one loader of prompt templates: every file a model is shown, with its version and hash.

All templates live beside this module, named by their path under ``prompts/``:

- ``mint.j2`` and ``examples/<kind>.txt``: the policy's first message and its in-context
  examples (:mod:`mulligan.prompts.policy`); ``refine.j2``: the first message under the
  ``reply`` answer format;
- ``feedback/<name>.j2``: the model-based feedback providers' prompts;
- ``judge.j2``: the judge's prompt.

Every file opens with a version header line, ``{#- version: 2 -#}``; bump it when the wording
changes. ``.j2`` files are Jinja2 templates (the header is a Jinja comment and renders to
nothing); other files are plain text, read without their header line. A template's hash is the
first 16 hex digits of the sha256 of the file's bytes, so it pins every word the model was shown;
feedback events record it (``FeedbackEvent.template_hash``) and run manifests list them.

A template may open with a system message: the text before a line reading exactly
:data:`USER_MARKER` is sent as the system message, the rest as the user message
(:func:`to_messages`). Small models keep their role far better when it is stated there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jinja2

from mulligan.events import Message

_PACKAGE = "mulligan.prompts"
_SUFFIXES = (".j2", ".txt")
USER_MARKER = "==== user message ===="
"""Separates a rendered template's system message from its user message."""

_VERSION = re.compile(r"\{#-?\s*version:\s*([\w.\-]+)\s*-?#\}")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mulligan", "prompts"),
    undefined=jinja2.StrictUndefined,  # a missing variable is a bug, never an empty string
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # plain-text prompts, never HTML
    # The package's templates do not change under a running process: no stat() of the file
    # for every rendering (one per episode) to see whether it did.
    auto_reload=False,
)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """One template file: its name (path under ``prompts/``), declared version and hash."""

    name: str
    version: str
    hash: str
    """First 16 hex digits of the sha256 of the file's bytes."""

    def render(self, **variables: Any) -> str:
        """The text for these variables exactly as the template produces it (every variable the
        file uses must be given). Only for ``.j2`` files."""
        if not self.name.endswith(".j2"):
            raise ValueError(f"{self.name!r} is plain text, not a Jinja2 template: use .text")
        return _ENV.get_template(self.name).render(**variables)

    @property
    def text(self) -> str:
        """The file's text without its version header line (for plain-text files)."""
        source = self.source
        return source.split("\n", 1)[1] if "\n" in source else ""

    @property
    def source(self) -> str:
        """The file's whole text, version header included."""
        return template_source(self.name)


@cache
def load_template(name: str) -> PromptTemplate:
    """The template ``prompts/<name>`` (e.g. ``"feedback/critic.j2"``).

    Raises FileNotFoundError if there is none, ValueError if it declares no version.
    """
    path = resources.files(_PACKAGE).joinpath(name)
    if not name.endswith(_SUFFIXES) or not path.is_file():
        folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        known = ", ".join(n for n in template_names() if n.startswith(folder))
        raise FileNotFoundError(f"no prompt template {name!r}; known: {known}")
    data = path.read_bytes()
    found = _VERSION.search(data.decode("utf-8").split("\n", 1)[0])
    if found is None:
        raise ValueError(f"prompt template {name!r} does not declare {{#- version: N -#}}")
    return PromptTemplate(
        name=name, version=found.group(1), hash=hashlib.sha256(data).hexdigest()[:16]
    )


def _walk(folder: Traversable, prefix: str) -> list[str]:
    names: list[str] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            names += _walk(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(_SUFFIXES):
            names.append(prefix + entry.name)
    return names


def template_names() -> list[str]:
    """Names of every template file shipped with mulligan (paths under ``prompts/``)."""
    return sorted(_walk(resources.files(_PACKAGE), ""))


@cache
def template_source(name: str) -> str:
    """The whole text of a template file, version header included."""
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def template_hash(*names: str) -> str:
    """One hash of several files (the policy prompt and its example): the first 16 hex digits
    of the sha256 over each name and its text, in order."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(template_source(name).encode())
    return digest.hexdigest()[:16]


def model_template_versions() -> dict[str, dict[str, str]]:
    """``{file name: {"version": ..., "hash": ...}}`` of the templates shown to the feedback and
    judge roles: what a run manifest records as ``feedback_templates``."""
    names = [n for n in template_names() if n.startswith("feedback/")] + ["judge.j2"]
    out: dict[str, dict[str, str]] = {}
    for name in sorted(names, key=lambda n: n.rsplit("/", 1)[-1]):
        template = load_template(name)
        out[name.rsplit("/", 1)[-1]] = {"version": template.version, "hash": template.hash}
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
