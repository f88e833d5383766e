"""Run records in, one flat row per run out (plus each run's steady-state step samples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

RECORD_FILE, FAILED_FILE, BASELINE_FILE, MANIFEST_FILE = "record.json", "failed.json", "baseline.json", "manifest.json"
KEYS = ["implementation", "cell", "layers", "bidirectional"]
IMPLEMENTATION_ORDER = ["keras-torch", "keras-tensorflow", "torch", "tensorflow"]


class AnalysisError(ValueError):
    """Records that cannot be analysed together (reported to users in one line)."""


def flatten(record: dict) -> dict:
    spec, timing, memory, quality = record["model_spec"], record["timing"], record["memory"], record["metrics"]
    return dict(
        status="ok", implementation=record["implementation"], cell=spec["cell"], layers=spec["layers"],
        bidirectional=spec["bidirectional"], seed=record["train_spec"]["seed"],
        accuracy=quality["accuracy"], f1=quality["f1"], roc_auc=quality["roc_auc"], log_loss=quality["log_loss"],
        steady_ms=timing["steady_step_ms"]["median"], steady_iqr_ms=timing["steady_step_ms"]["iqr"],
        epoch_s=float(np.mean(timing["epoch_s"])), first_step_s=timing["first_step_s"],
        ready_s=timing["process_start_to_ready_s"], train_wall_s=timing["train_wall_s"],
        train_samples_per_s=timing["train_samples_per_s"],
        inference_per_s=timing["inference"]["throughput_per_s"],
        latency_ms=timing["inference"]["batch_latency_ms"]["median"],
        train_cpu_s=record["cpu"]["train_cpu_s"], cpu_utilisation=record["cpu"]["train_utilisation"],
        peak_above_mb=memory["peak_above_baseline_mb"], peak_rss_mb=memory["peak_rss_mb"],
        rss_after_imports_mb=memory["rss_after_imports_mb"], baseline_mb=memory["baseline_ready_mb"],
        epochs_run=record["early_stopping"]["epochs_run"], n_train=record["data"]["n_train"],
        n_test=record["data"]["n_test"], kernel_path=record["runtime"]["kernel_path"],
        threads=record["runtime"]["policy"]["intra_op_threads"],
        flush_denormal=record["runtime"]["policy"]["flush_denormal"],
        jit_compile=record["runtime"]["jit_compile"],
    )


def steady_samples(record: dict) -> np.ndarray:
    """All step times of the run after the excluded warm-up steps (ms)."""
    pooled = np.concatenate([np.asarray(epoch, dtype=float) for epoch in record["timing"]["step_samples_ms"]])
    return pooled[record["timing"]["warmup_steps_excluded"]:]


def _identity(record: dict) -> tuple:
    environment = record["environment"]
    packages = environment["packages"]
    return (environment["cpu"]["model"], packages.get("torch"), packages.get("tensorflow-cpu"), packages.get("keras"))


def load(results: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict | None, dict | None]:
    """(one row per run, steady step samples per run id, baseline result, manifest)."""
    results = Path(results)
    run_root = results / "runs"
    if not run_root.is_dir():
        raise AnalysisError(f"{results} holds no runs (expected {run_root}/)")
    rows, samples, identities = [], {}, set()
    for run_dir in sorted(p for p in run_root.iterdir() if p.is_dir()):
        if (run_dir / RECORD_FILE).exists():
            record = json.loads((run_dir / RECORD_FILE).read_text())
            identities.add(_identity(record))
            rows.append(dict(run_id=run_dir.name, **flatten(record)))
            samples[run_dir.name] = steady_samples(record)
        elif (run_dir / FAILED_FILE).exists():
            failure = json.loads((run_dir / FAILED_FILE).read_text())
            rows.append(dict(run_id=run_dir.name, status=failure["status"], failure=failure["reason"],
                             error=(failure.get("stderr_tail") or "").strip().splitlines()[-1:] or [""],
                             **failure["run"]))
    if len(identities) > 1:
        raise AnalysisError(f"{results} mixes records from different machines or versions: {sorted(identities)}")
    if not rows:
        raise AnalysisError(f"{results} holds no finished or failed runs yet")
    frame = pd.DataFrame(rows)
    if "error" in frame:
        frame["error"] = frame["error"].map(lambda e: e[0] if isinstance(e, list) else e)
    baseline = json.loads((results / BASELINE_FILE).read_text()) if (results / BASELINE_FILE).exists() else None
    manifest = json.loads((results / MANIFEST_FILE).read_text()) if (results / MANIFEST_FILE).exists() else None
    return frame, samples, baseline, manifest
