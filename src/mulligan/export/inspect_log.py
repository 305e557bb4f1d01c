"""``inspect``: each run as an Inspect AI eval log (JSON), for Inspect's viewer and dataframes.

One ``<run id>.json`` per run, in Inspect's JSON log format (``version`` 2), written directly:
no Inspect package needed. Each kept episode is a sample: ``id`` the suite/task, ``epoch``
mulligan's epoch + 1 (Inspect counts from 1), ``input`` the first prompt, ``messages`` the exact
conversation, ``output`` the last reply, and a score ``C`` (solved) or ``I`` with the last
proposal as the answer; the episode's provenance goes in the sample's metadata. The results
carry accuracy and SR@1..k. ``target`` is empty: the store does not keep the reference.
Samples are written as they are read, so a run of any size takes constant memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mulligan import __version__
from mulligan.export.base import EpisodesOf, ExportFormat
from mulligan.export.source import EpisodeView, RunSource, messages_json, provenance

LOG_VERSION = 2


def _sample(view: EpisodeView) -> dict[str, Any]:
    episode = view.episode
    answers = [t.verdict.answer for t in view.turns if t.verdict is not None]
    last = view.turns[-1].reply.content if view.turns else ""
    return {
        "id": f"{episode.key.suite}/{episode.key.task_id}",
        "epoch": episode.key.epoch + 1,
        "input": messages_json(view.first_prompt),
        "target": "",
        "messages": messages_json(view.conversation),
        "output": {
            "model": episode.model,
            "choices": [{"message": {"role": "assistant", "content": last}, "stop_reason": "stop"}],
        },
        "scores": {
            "mulligan": {
                "value": "C" if episode.success else "I",
                "answer": answers[-1] if answers else None,
                "explanation": f"terminated: {episode.terminate_reason}",
                "metadata": {"success_turn": episode.success_turn},
            }
        },
        "metadata": provenance(view),
    }


def _spec(run: RunSource) -> dict[str, Any]:
    manifest = run.manifest
    model = manifest.get("config", {}).get("model") or manifest.get("model") or "unknown"
    return {
        "run_id": run.run_id,
        "eval_id": run.run_id,
        "created": datetime.now(UTC).isoformat(),
        "task": f"mulligan/{run.run_id}",
        "task_id": run.run_id,
        "dataset": {"name": "mulligan"},
        "model": str(model),
        "config": {},
        "packages": {"mulligan": __version__},
        "metadata": {"run_dir": str(run.run_dir), "exported_by": "mulligan export"},
    }


class _Scores:
    """Accuracy and SR@k, counted as samples stream past."""

    def __init__(self) -> None:
        self.samples = 0
        self.solved_at: list[int] = []  # solved_at[k - 1]: episodes solved within k turns

    def add(self, view: EpisodeView) -> None:
        ep = view.episode
        self.samples += 1
        while len(self.solved_at) < ep.max_turns:
            self.solved_at.append(0)
        for k in range(1, len(self.solved_at) + 1):
            self.solved_at[k - 1] += ep.success_at(k)

    def results(self) -> dict[str, Any]:
        n = max(self.samples, 1)
        metrics = {
            f"sr@{k}": {"name": f"sr@{k}", "value": solved / n}
            for k, solved in enumerate(self.solved_at, start=1)
        }
        accuracy = self.solved_at[-1] / n if self.solved_at else 0.0
        metrics = {"accuracy": {"name": "accuracy", "value": accuracy}, **metrics}
        return {
            "total_samples": self.samples,
            "completed_samples": self.samples,
            "scores": [{"name": "mulligan", "scorer": "mulligan", "metrics": metrics}],
        }


def _write_run(run: RunSource, episodes_of: EpisodesOf, out: IO[str]) -> None:
    out.write(f'{{"version": {LOG_VERSION}, "status": "success", "eval": ')
    out.write(json.dumps(_spec(run)))
    out.write(', "samples": [')
    scores = _Scores()
    started = datetime.now(UTC).isoformat()
    for view in episodes_of(run):
        out.write(("," if scores.samples else "") + "\n" + json.dumps(_sample(view)))
        scores.add(view)
    stats = {"started_at": started, "completed_at": datetime.now(UTC).isoformat()}
    out.write(f'\n], "results": {json.dumps(scores.results())}, "stats": {json.dumps(stats)}}}\n')


def write(runs: Sequence[RunSource], episodes_of: EpisodesOf, out_dir: Path) -> list[Path]:
    """One eval log per run; each is written under a temporary name and renamed when whole."""
    paths = []
    for run in runs:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", run.run_id) or "run"
        path = out_dir / f"{name}.json"
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8") as out:
                _write_run(run, episodes_of, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
        paths.append(path)
    return paths


FORMAT = ExportFormat(
    name="inspect",
    description="each run as an Inspect AI eval log (JSON), read by Inspect's viewer",
    fields="Inspect eval log: eval, samples [{id, epoch, input, messages, output, scores, "
    "metadata: provenance}], results (accuracy, sr@k)",
    training=False,
    write=write,
)
