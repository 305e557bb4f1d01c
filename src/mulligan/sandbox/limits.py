"""Sandbox limits, the result of one REPL cell, and the sandbox's own error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mulligan.errors import MulliganError


class SandboxError(MulliganError, RuntimeError):
    """The sandbox itself failed (a worker could not start, or was used after close)."""


class SandboxLimits(BaseModel):
    """Resource limits for one sandbox worker (a REPL session or one program run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cell_timeout_s: float = Field(default=10.0, gt=0, description="wall time per cell")
    cpu_s: int = Field(
        default=30, gt=0, description="CPU seconds for the worker's life (RLIMIT_CPU)"
    )
    memory_mb: int = Field(
        default=1024, ge=128, description="address-space cap per process (RLIMIT_AS)"
    )
    output_bytes: int = Field(
        default=20_000,
        ge=100,
        description="observation size cap, counted in characters; longer output keeps its "
        "start and end and says how much was cut",
    )
    max_processes: int = Field(
        default=64, ge=4, description="processes + threads of the sandbox (fork-bomb guard)"
    )
    network: bool = Field(
        default=False, description="allow network access (off where the OS allows)"
    )


class CellResult(BaseModel):
    """What running one cell produced, as the model will see it."""

    model_config = ConfigDict(frozen=True)

    output: str = Field(
        description="stdout+stderr as printed, then the traceback if any, then 'Out[n]: repr' "
        "of a trailing expression; '' when the cell printed nothing"
    )
    error: str | None = Field(
        description="exception type name if the cell raised (e.g. 'ZeroDivisionError'), or "
        "'Timeout', 'MemoryError', 'OutputLimit', 'WorkerDied'; None on success"
    )
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    restarted: bool = Field(
        default=False,
        description="the worker was killed or died and was restarted: Python state was lost",
    )
