"""Errors raised while finding, validating or downloading task data."""

from __future__ import annotations

from mulligan.errors import MulliganError


class TaskDataError(MulliganError):
    """Task data is missing or malformed; the message names the file and the fix."""


class DataChecksumError(TaskDataError):
    """A downloaded or copied data file does not match its pinned SHA-256."""

    def __init__(
        self, name: str, expected: str, actual: str, origin: str, *, fix: str | None = None
    ) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        self.origin = origin
        fix = fix or (
            "The source is not MINT's pinned data (commit 3f7f12c): point --from at "
            "an unmodified MINT checkout or use the default download."
        )
        super().__init__(
            f"{name} from {origin} has SHA-256 {actual}, expected {expected}; the file was not "
            f"written. {fix}"
        )
