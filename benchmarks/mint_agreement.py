"""MINT conformance of the checkers with a roomy code time limit: agreement with MINT's labels.

``tests/test_mint_conformance.py`` uses a 30 s limit per code run; on a loaded machine one MBPP
gold-like proposal (amicable numbers, about 20 s of CPU) runs out of it. This script re-judges
the same 603 proposals with a 90 s limit, so two checkouts compare on verdicts, not on load:

    PYTHONPATH=src python benchmarks/mint_agreement.py ../shared/data/mint
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mulligan.interop.mint_rejudge import judge_mint_logs
from mulligan.sandbox import SandboxLimits, SandboxPool

LOGS = Path("outputs", "gpt-3.5-turbo-0613", "F=None", "max5_p2+tool+cd")


async def main(mint: Path) -> None:
    limits = SandboxLimits(cell_timeout_s=90.0, cpu_s=120)
    async with SandboxPool(size=4, limits=limits) as pool:
        report = await judge_mint_logs(mint / LOGS, mint, pool, concurrency=4, code_timeout_s=90.0)
    total = sum(s.proposals for s in report.suites)
    print(f"agreement {report.agreement:.4f} over {total} proposals")
    for verdict in report.disagreements:
        print(f"  {verdict.key}: MINT {verdict.mint_correct}, mulligan {verdict.our_correct}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
