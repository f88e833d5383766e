"""Run records in (through ``model.records``), one flat row per run out, plus each run's steady step samples."""

from __future__ import annotations

from dataclasses import dataclass
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
                implementation=records.run_column(plan), base_implementation=plan["implementation"],
                cell=spec["cell"], layers=spec["layers"],
                bidirectional=spec["bidirectional"], seed=plan["train"]["seed"])


def _baseline(raw: dict) -> dict:
    """The TF-IDF reference over the sweep's seeds: each seed's result and the mean of their metrics."""
    per_seed = raw["seeds"] if "seeds" in raw else {"0": raw}  # one result: sweeps before per-seed baselines
    metrics = {name: float(np.mean([result["metrics"][name] for result in per_seed.values()]))
               for name in ("accuracy", "f1", "roc_auc")}
    return dict(metrics=metrics, seeds=per_seed)


@dataclass
class Results:
    """A results folder, read: one row per run and each run's raw series, the baseline and the manifest."""

    runs: pd.DataFrame  # one row per run, finished or failed
    samples: dict[str, np.ndarray]  # run id -> steady-state step times, ms
    losses: dict[str, np.ndarray]  # run id -> every training step's loss
    baseline: dict | None
    manifest: dict | None
    roofline: dict | None = None  # the machine's GEMM rates (runners/roofline.py)

    @property
    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    @property
    def profile(self) -> dict:
        return _profile(self.manifest)

    @property
    def cpu_model(self) -> str:
        if self.manifest:
            return self.manifest["environment"]["cpu"]["model"]
        return str(self.finished["cpu_model"].iloc[0]) if "cpu_model" in self.runs else "unknown CPU"


def _profile(manifest: dict | None) -> dict:
    profile = (manifest or {}).get("profile") or {}
    return {"name": profile} if isinstance(profile, str) else profile  # manifests before the run plan named it only


def load(results: Path) -> Results:
    results = Path(results)
    run_root = results / records.RUNS_FOLDER
    if not run_root.is_dir():
        raise AnalysisError(f"{results} holds no runs (expected {run_root}/)")
    manifest_file, baseline_file = results / records.MANIFEST_FILE, results / records.BASELINE_FILE
    manifest = records.read_json(manifest_file) if manifest_file.exists() else None
    target = _profile(manifest).get("target_accuracy")
    rows, samples, losses, identities = [], {}, {}, set()
    for run_dir in sorted(p for p in run_root.iterdir() if p.is_dir()):
        state = records.run_state(run_dir)
        if state == "done":
            record = records.read_record(run_dir)
            identities.add(records.identity(record))
            reached = records.time_to_target(record, target) if target else None
            rows.append(dict(run_id=run_dir.name, **records.row(record), cpu_model=records.identity(record)[0],
                             target_accuracy=target, ttt_wall_s=reached and reached["wall_s"],
                             ttt_cpu_s=reached and reached["cpu_s"]))
            samples[run_dir.name] = np.asarray(records.steady_samples_ms(record), dtype=float)
            losses[run_dir.name] = np.asarray(records.step_losses(record), dtype=float)
        elif state == "failed":
            rows.append(_failed_row(run_dir.name, records.read_json(run_dir / records.FAILED_FILE)))
    if len(identities) > 1:
        raise AnalysisError(f"{results} mixes records from different machines or versions: {sorted(identities)}")
    if not rows:
        raise AnalysisError(f"{results} holds no finished or failed runs yet")
    baseline = _baseline(records.read_json(baseline_file)) if baseline_file.exists() else None
    roofline_file = results / records.ROOFLINE_FILE
    roofline = records.read_json(roofline_file) if roofline_file.exists() else None
    return Results(pd.DataFrame(rows), samples, losses, baseline, manifest, roofline)
