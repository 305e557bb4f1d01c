"""Export MINT's imported gpt-3.5 runs with GPT-4 feedback in every format: records, time, memory.

Usage (after ``mulligan import mint ../shared/data/mint/outputs --out runs/mint-logs``)::

    python benchmarks/export_mint.py "runs/mint-logs/gpt-3.5-turbo-0613/F=gpt-4-0613" --out /tmp/x

Each format runs in a fresh child process (``python -m mulligan export ...``) so its peak
resident memory (``ru_maxrss`` of the child, which includes the interpreter and mulligan's
imports, from ``os.wait4``) is its own; wall time is the child's whole life, imports included. Prints one
Markdown table row per format.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

FORMATS = ("sft", "dpo", "kto", "rltf-sd", "feedback-model", "hindsight", "rollouts", "inspect")


def _records(out: Path, fmt: str) -> tuple[int, int]:
    """Records written and their bytes, counted line by line: this process stays small, and a
    child forked from it starts with its peak resident size (Linux keeps it across exec)."""
    parquet = list(out.glob("*.parquet"))
    if parquet:
        import pyarrow.parquet as pq

        rows = sum(pq.ParquetFile(path).metadata.num_rows for path in parquet)
        return rows, sum(path.stat().st_size for path in parquet)
    if fmt == "inspect":  # one sample per line, as inspect_log writes them
        files, prefix = list(out.glob("*.json")), '{"id": '
    else:
        files, prefix = list(out.glob("*.jsonl")), ""
    count = 0
    for path in files:
        with path.open(encoding="utf-8") as lines:
            count += sum(1 for line in lines if line.startswith(prefix))
    return count, sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--output", default="jsonl", choices=("jsonl", "parquet"))
    args = parser.parse_args()
    print("| format | records | MiB written | wall s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for fmt in FORMATS:
        out = args.out / fmt
        command = [sys.executable, "-m", "mulligan", "export", *map(str, args.runs)]
        command += ["--format", fmt, "--out", str(out), "--overwrite"]
        if fmt != "inspect":
            command += ["--output", args.output]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest one
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            assert child.stderr is not None
            sys.exit(f"{fmt}: {child.stderr.read().decode()}")
        rss = usage.ru_maxrss / 1024  # KiB on Linux
        records, size = _records(out, fmt)
        row = f"| {fmt} | {records} | {size / 2**20:.1f} | {seconds:.1f} | {rss:.0f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
