"""Hit rate of the offline ``wikipedia_search`` stand-in on the queries MINT's logs issued.

    python benchmarks/wikipedia_standin.py ../shared/data/mint/outputs [--suite hotpotqa]

For the suite's episodes (default hotpotqa) in every configuration under the folder: the
distinct queries the logged model issued in ``<execute>`` cells (literal arguments; calls with a
computed argument are counted apart), and how many of them the index built from all the logs
answers (in-sample). Then held out: for each configuration (``F=.../[PHF=.../]max<k>_p<p>...``),
the queries it issued answered by an index built from the other configurations' logs only; the
total counts each configuration's distinct queries once. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from mulligan.tasks.mint_log import RESULTS_FILE, read_results_as_mint
from mulligan.tasks.wikipedia import (
    LoggedSearch,
    index_from_logs,
    issued_queries,
    normalize_query,
    searches_in_history,
)


def _config_of(path: Path, root: Path) -> str:
    # <model>/F=.../[PHF=.../]max<k>_p<p>.../<type>/<suite>/results.jsonl -> the part before <type>
    return "/".join(path.relative_to(root).parts[:-3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", type=Path)
    parser.add_argument("--suite", default="hotpotqa")
    args = parser.parse_args()
    root: Path = args.outputs
    searches: dict[str, list[LoggedSearch]] = defaultdict(list)  # config -> answered searches
    issued: dict[str, set[str]] = defaultdict(set)  # config -> distinct issued queries (suite)
    computed = 0
    for path in sorted(root.rglob(RESULTS_FILE)):
        config = _config_of(path, root)
        source = path.relative_to(root).as_posix()
        for _, line in read_results_as_mint(path):
            if isinstance(line, Exception):
                continue
            searches[config] += searches_in_history(line.state.history, source)
            if path.parent.name == args.suite:
                for query in issued_queries(line.state.history):
                    if query is None:
                        computed += 1
                    else:
                        issued[config].add(normalize_query(query))
    everything = index_from_logs(s for found in searches.values() for s in found)
    distinct = set().union(*issued.values())
    held_out = {}
    for config, queries in sorted(issued.items()):
        others = index_from_logs(s for c, found in searches.items() if c != config for s in found)
        held_out[config] = {"queries": len(queries), "answered": len(queries & others.keys())}
    total = sum(v["queries"] for v in held_out.values())
    answered = sum(v["answered"] for v in held_out.values())
    print(
        json.dumps(
            {
                "suite": args.suite,
                "index_size": len(everything),
                "distinct_queries": len(distinct),
                "answered_in_sample": len(distinct & everything.keys()),
                "calls_with_computed_argument": computed,
                "held_out": held_out,
                "held_out_total": {"queries": total, "answered": answered},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
