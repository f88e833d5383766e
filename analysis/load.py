"""Run records in (through ``model.records``), one flat row per run out, plus each run's steady step samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model import records
from model.errors import UserError

KEYS = ["implementation", "cell", "layers", "bidirectional"]


class AnalysisError(UserError):
    """Records that cannot be analysed together (reported to users in one line)."""


def _failed_row(run_id: str, failure: dict) -> dict:
    plan = failure["plan"]
    spec = plan["model"]
    return dict(run_id=run_id, status=failure["status"], failure=failure["reason"],
                error=((failure.get("stderr_tail") or "").strip().splitlines() or [""])[-1],
                implementation=plan["implementation"], cell=spec["cell"], layers=spec["layers"],
                bidirectional=spec["bidirectional"], seed=plan["train"]["seed"])


def _baseline(raw: dict) -> dict:
    """The TF-IDF reference over the sweep's seeds: each seed's result and the mean of their metrics."""
    per_seed = raw["seeds"] if "seeds" in raw else {"0": raw}  # one result: sweeps before per-seed baselines
    metrics = {name: float(np.mean([result["metrics"][name] for result in per_seed.values()]))
               for name in ("accuracy", "f1", "roc_auc")}
    return dict(metrics=metrics, seeds=per_seed)


def load(results: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict | None, dict | None]:
    """(one row per run, steady step samples per run id, baseline result, manifest)."""
    results = Path(results)
    run_root = results / records.RUNS_FOLDER
    if not run_root.is_dir():
        raise AnalysisError(f"{results} holds no runs (expected {run_root}/)")
    rows, samples, identities = [], {}, set()
    for run_dir in sorted(p for p in run_root.iterdir() if p.is_dir()):
        state = records.run_state(run_dir)
        if state == "done":
            record = records.read_record(run_dir)
            identities.add(records.identity(record))
            rows.append(dict(run_id=run_dir.name, **records.row(record)))
            samples[run_dir.name] = np.asarray(records.steady_samples_ms(record), dtype=float)
        elif state == "failed":
            rows.append(_failed_row(run_dir.name, records.read_json(run_dir / records.FAILED_FILE)))
    if len(identities) > 1:
        raise AnalysisError(f"{results} mixes records from different machines or versions: {sorted(identities)}")
    if not rows:
        raise AnalysisError(f"{results} holds no finished or failed runs yet")
    frame = pd.DataFrame(rows)
    baseline_file, manifest_file = results / records.BASELINE_FILE, results / records.MANIFEST_FILE
    baseline = _baseline(records.read_json(baseline_file)) if baseline_file.exists() else None
    manifest = records.read_json(manifest_file) if manifest_file.exists() else None
    return frame, samples, baseline, manifest
