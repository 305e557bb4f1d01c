"""Importers of other harnesses' logs, the reports that reproduce their published numbers, and
the re-judging of MINT's logged verdicts with mulligan's checkers.

MINT's log format itself (line model, reader, fixed wording) is ``mulligan.tasks.mint_log``.
"""

from mulligan.interop.mint import (
    MintConfig,
    MintImportError,
    MintResultLine,
    import_mint,
    leak_flags,
    leak_task,
    mint_line_to_episode,
    parse_results_path,
)
from mulligan.interop.mint_leaderboard import (
    MintLeaderboardEntry,
    mint_delta_feedback,
    mint_leaderboard,
    mint_leaderboard_entries,
    size_and_type,
)
from mulligan.interop.mint_rejudge import (
    ConformanceReport,
    agreement_table,
    judge_mint_logs,
    rejudge_mint_logs,
)

__all__ = [
    "ConformanceReport",
    "MintConfig",
    "MintImportError",
    "MintLeaderboardEntry",
    "MintResultLine",
    "agreement_table",
    "import_mint",
    "judge_mint_logs",
    "leak_flags",
    "leak_task",
    "mint_delta_feedback",
    "mint_leaderboard",
    "mint_leaderboard_entries",
    "mint_line_to_episode",
    "parse_results_path",
    "rejudge_mint_logs",
    "size_and_type",
]
