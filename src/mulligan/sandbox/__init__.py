"""The sandbox: persistent Python REPLs for model-written code, a pool of pre-started workers,
and a one-shot program runner for code checkers.

Each REPL runs in its own worker process (see ``_worker.py``) under bubblewrap namespaces with an
allow-list view of the host, a throwaway uid and resource limits (``SandboxPool.isolation`` names
the mode). Resource limits without bubblewrap are used only with the explicit ``allow_weak``
opt-in (see ``isolation.py``).

    pool = SandboxPool(size=4, limits=SandboxLimits(cell_timeout_s=5))
    await pool.start()
    async with pool.session() as sandbox:
        result = await sandbox.execute("x = 1\\nx + 1")   # result.output == "Out[1]: 2"
    verdict = await pool.run_program("assert 1 + 1 == 2")   # verdict.ok is True
    await pool.close()
"""

from mulligan.sandbox.isolation import IsolationMode, IsolationRequest, detect_isolation
from mulligan.sandbox.limits import CellResult, SandboxError, SandboxLimits
from mulligan.sandbox.pool import SandboxPool
from mulligan.sandbox.repl import Sandbox

__all__ = [
    "CellResult",
    "IsolationMode",
    "IsolationRequest",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxPool",
    "detect_isolation",
]
