"""Importers of other harnesses' logs, and the reports that reproduce their published numbers."""

from mulligan.interop.mint import (
    MintConfig,
    MintImportError,
    MintResultLine,
    import_mint,
    leak_flags,
    mint_line_to_episode,
    parse_results_path,
)
from mulligan.interop.mint_leaderboard import (
    MintLeaderboardEntry,
    mint_leaderboard,
    mint_leaderboard_entries,
    size_and_type,
)

__all__ = [
    "MintConfig",
    "MintImportError",
    "MintLeaderboardEntry",
    "MintResultLine",
    "import_mint",
    "leak_flags",
    "mint_leaderboard",
    "mint_leaderboard_entries",
    "mint_line_to_episode",
    "parse_results_path",
    "size_and_type",
]
