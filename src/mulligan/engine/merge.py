"""``mulligan merge``: the shards of a run (``mulligan run --shard i/n``) joined into one run.

The shards may have run anywhere (a batch scheduler's array job, several machines, one after
another); what makes them one run is checked before anything is written: the same
result-defining options (config hash), shards that fit together (the same n, distinct i; a
missing shard is named, and merged around only when asked), and no episode stored twice (the
partition makes that impossible for true shards; a copied or mislabelled directory is refused,
naming the episode). The merged directory holds one store and a manifest like any run's, so
``report``, ``view`` and ``export`` read it as they read a run; its manifest says where each
shard came from (``merged_from``). The merged run is written beside ``--out`` and renamed into
place at the end, so a refused or interrupted merge leaves no half-written run.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mulligan.config import RunConfig, result_options
from mulligan.errors import MulliganError
from mulligan.events import Episode
from mulligan.store import DB_NAME, RunStore, StoredRun
from mulligan.tasks.shard import Shard

_BATCH = 256
"""Episodes copied per transaction."""


class MergeError(MulliganError):
    """The runs given to ``mulligan merge`` are not the shards of one run."""


@dataclass
class MergeOutcome:
    """What a merge wrote: the new run's id, its episodes, malformed ones left out, and the
    shards that were missing (only with ``allow_missing``)."""

    run_id: str
    episodes: int = 0
    skipped: int = 0
    missing: list[str] = field(default_factory=list)


@dataclass
class _Source:
    path: Path
    run: StoredRun
    shard: Shard | None


def _open(path: Path) -> _Source:
    with RunStore.open_existing(path) as store:
        run = store.run()
    if run is None:
        raise MergeError(f"{path}: holds no run; pass the --out directory of a `mulligan run`")
    return _Source(path, run, Shard.of(run.manifest.get("config", {}).get("shard")))


def _check_config(sources: list[_Source]) -> None:
    """The same result-defining options everywhere, or a MergeError naming what differs."""
    first = sources[0]
    for other in sources[1:]:
        if other.run.config_hash == first.run.config_hash:
            continue
        defaults = RunConfig().options()
        a = result_options({**defaults, **first.run.manifest.get("config", {})})
        b = result_options({**defaults, **other.run.manifest.get("config", {})})
        differs = ", ".join(
            f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(a) if a.get(k) != b.get(k)
        )
        raise MergeError(
            f"{other.path} was run with other result-defining options than {first.path} "
            f"(config hash {other.run.config_hash} vs {first.run.config_hash}"
            f"{'; ' + differs if differs else ''}); only shards of one run merge"
        )


def _check_shards(sources: list[_Source], allow_missing: bool) -> list[str]:
    """Shards that fit together; returns the missing ones (``i/n``)."""
    unsharded = [s.path for s in sources if s.shard is None]
    if unsharded and len(sources) > 1:
        raise MergeError(
            f"{unsharded[0]} is not a shard (run without --shard), so it overlaps the other "
            "runs; merge the runs of `mulligan run --shard i/n`"
        )
    if unsharded:
        return []
    counts = {s.shard.count for s in sources if s.shard is not None}
    if len(counts) > 1:
        listed = ", ".join(f"{s.path}: {s.shard}" for s in sources)
        raise MergeError(f"the shards split the tasks in different numbers of parts ({listed})")
    seen: dict[int, Path] = {}
    for source in sources:
        assert source.shard is not None
        if source.shard.index in seen:
            raise MergeError(
                f"{seen[source.shard.index]} and {source.path} are both shard {source.shard}; "
                "pass each shard once"
            )
        seen[source.shard.index] = source.path
    (count,) = counts
    missing = [f"{i}/{count}" for i in range(count) if i not in seen]
    if missing and not allow_missing:
        raise MergeError(
            f"shards {', '.join(missing)} are missing; pass their run directories too (or "
            "--allow-missing to merge only these)"
        )
    return missing


def _check_no_duplicates(sources: list[_Source]) -> None:
    """No episode in two of the runs: a MergeError naming the first one that is."""
    where: dict[str, Path] = {}
    for source in sources:
        with RunStore.open_existing(source.path) as store:
            for episode in store.episodes(with_events=False):
                if episode.id in where:
                    raise MergeError(
                        f"episode {episode.id} is stored in both {where[episode.id]} and "
                        f"{source.path}; these are not distinct shards of one run"
                    )
                where[episode.id] = source.path


def _manifest(sources: list[_Source], run_id: str, missing: list[str]) -> dict[str, Any]:
    """The first shard's manifest, made the merged run's: the whole task set, the counters
    summed, and where each shard came from."""
    manifest = json.loads(json.dumps(sources[0].run.manifest))
    # The first shard's selection digest is not the merged run's: a resume checks per episode.
    manifest.pop("tasks_digest", None)
    counters: dict[str, Counter[str]] = {}
    for source in sources:
        for name, counts in source.run.manifest.get("counters", {}).items():
            counters.setdefault(name, Counter()).update(counts)
    modes = sorted({str(s.run.manifest.get("sandbox_isolation", "")) for s in sources})
    manifest.update(
        run_id=run_id,
        config={**manifest.get("config", {}), "shard": None},
        tasks=sum(int(s.run.manifest.get("tasks", 0)) for s in sources),
        counters={name: dict(c) for name, c in counters.items()},
        sandbox_isolation="+".join(m for m in modes if m),
        sandbox_isolation_weak=any(s.run.manifest.get("sandbox_isolation_weak") for s in sources),
        merged_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        merged_from=[
            {
                "path": str(s.path),
                "run_id": s.run.run_id,
                "shard": None if s.shard is None else str(s.shard),
                "tasks": s.run.manifest.get("tasks"),
                **{
                    k: s.run.manifest.get(k) for k in ("model_identity", "platform", "git_revision")
                },
            }
            for s in sources
        ],
    )
    if missing:
        manifest["missing_shards"] = missing
    return manifest


def _copy(sources: list[_Source], target: Path, manifest: dict[str, Any]) -> MergeOutcome:
    merged = MergeOutcome(manifest["run_id"], missing=manifest.get("missing_shards", []))
    with RunStore(target) as out:
        out.create_run(merged.run_id, sources[0].run.config_hash, manifest)
        for source in sources:
            with RunStore.open_existing(source.path) as store:
                batch: list[Episode] = []
                for episode in store.episodes():
                    batch.append(episode.model_copy(update={"run_id": merged.run_id}))
                    if len(batch) == _BATCH:  # one transaction per batch, not per episode
                        out.save_episodes(batch)
                        merged.episodes, batch = merged.episodes + len(batch), []
                out.save_episodes(batch)
                merged.episodes += len(batch)
                merged.skipped += len(store.skipped)
    (target / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return merged


def merge_runs(run_dirs: list[Path], out: Path, *, allow_missing: bool = False) -> MergeOutcome:
    """Check that ``run_dirs`` are the shards of one run (module docstring) and write them into
    ``out`` as one run; raises MergeError naming what does not fit."""
    if not run_dirs:
        raise MergeError("name the shards' run directories: mulligan merge RUN... --out DIR")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "holds a run" if (out / DB_NAME).exists() else "is not an empty directory"
        raise MergeError(f"--out {out} {what}; pass a new directory for the merged run")
    sources = [_open(Path(p)) for p in run_dirs]
    _check_config(sources)
    missing = _check_shards(sources, allow_missing)
    _check_no_duplicates(sources)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = out.parent / f".{out.name}.merging-{uuid.uuid4().hex[:6]}"
    try:
        merged = _copy(sources, staging, _manifest(sources, run_id, missing))
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return merged
