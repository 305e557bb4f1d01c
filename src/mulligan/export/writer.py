"""Writing records: JSON Lines (default) or Parquet, one file per split, in constant memory.

Every file is written under a temporary ``.partial`` name and renamed when the export succeeds,
so a failed export leaves no half-written dataset. Parquet needs one schema for the whole file
while records are only seen one at a time: the records go to a temporary JSON Lines file first,
then two streaming passes over it unify the schema of every batch and write the row groups (the
optional extra ``parquet``, pyarrow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Literal

from mulligan.export.source import ExportError

OutputFormat = Literal["jsonl", "parquet"]
_BATCH = 512


class RecordSink:
    """Records in, one file per split out."""

    def __init__(self, out_dir: Path, output: OutputFormat) -> None:
        self.out_dir = out_dir
        self.output = output
        self._files: dict[str, IO[str]] = {}
        if output == "parquet":
            _pyarrow()  # fail before any work when the extra is missing

    def _jsonl(self, split: str) -> Path:
        suffix = ".jsonl" if self.output == "jsonl" else ".parquet.jsonl"
        return self.out_dir / f"{split}{suffix}.partial"

    def write(self, split: str, record: dict[str, Any]) -> None:
        out = self._files.get(split)
        if out is None:
            out = self._files[split] = self._jsonl(split).open("w", encoding="utf-8")
        out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def finish(self) -> list[Path]:
        """Close every file and give each its final name; the paths written."""
        paths = []
        for split, out in sorted(self._files.items()):
            out.close()
            partial = self._jsonl(split)
            final = self.out_dir / f"{split}.{self.output}"
            if self.output == "parquet":
                _to_parquet(partial, final)
                partial.unlink()
            else:
                partial.replace(final)
            paths.append(final)
        self._files.clear()
        return paths

    def abort(self) -> None:
        """Close and remove every partial file."""
        for split, out in self._files.items():
            out.close()
            self._jsonl(split).unlink(missing_ok=True)
        self._files.clear()


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise ExportError(
            "--output parquet needs pyarrow: pip install -e '.[parquet]' in mulligan's checkout "
            "(or pip install pyarrow), or export JSON Lines"
        ) from None
    return pa


def _batches(path: Path, schema: Any = None) -> Any:
    """Tables of up to ``_BATCH`` records (with ``schema``, or each batch's inferred one)."""
    pa = _pyarrow()
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            batch.append(json.loads(line))
            if len(batch) == _BATCH:
                yield pa.Table.from_pylist(batch, schema=schema)
                batch = []
    if batch:
        yield pa.Table.from_pylist(batch, schema=schema)


def _to_parquet(jsonl: Path, final: Path) -> None:
    """Two passes over the JSON Lines: the unified schema, then the row groups."""
    pa = _pyarrow()
    import pyarrow.parquet as pq

    schema = None
    for table in _batches(jsonl):
        schema = (
            table.schema
            if schema is None
            else pa.unify_schemas([schema, table.schema], promote_options="permissive")
        )
    partial = final.with_name(final.name + ".partial")
    with pq.ParquetWriter(partial, schema) as writer:
        for table in _batches(jsonl, schema):
            writer.write_table(table)
    partial.replace(final)
