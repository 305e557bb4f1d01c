"""The base of every error that reports a user's mistake or a bad input.

The CLI catches :class:`MulliganError` once and prints its message instead of a traceback, so
each such error's message must say what was wrong and how to fix it. This module imports nothing
from mulligan: it sits below every layer, and any package may raise a subclass.

Errors that are not the user's to fix (programming errors, a model call failing mid-run, the
sandbox worker's protocol, a checker's private signals) do not subclass it; the list of those,
each with its reason, is ``INTERNAL_ERRORS`` in ``tests/test_errors.py``.
"""

from __future__ import annotations


class MulliganError(Exception):
    """A user's mistake or a bad input (option, file, data, run directory, model name...).

    Subclasses keep their other bases (e.g. ``ValueError``), so existing handlers still match.
    """
