"""Tables and report from hand-made records: medians, ratios, intervals, the written findings."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import report, tables
from analysis.load import AnalysisError, load
from model import records
from model.records import RecordError, write_json_atomic

ENVIRONMENT = {"cpu": {"model": "Test CPU", "usable_cores": 2, "governor": None}, "memory_total_gb": 24,
               "os": "Linux", "python": "3.11", "git": {"commit": "abc", "dirty": False},
               "packages": {"torch": "2.13.0", "tensorflow-cpu": "2.21.0", "keras": "3.15.1"}}


def fixture_record(implementation, cell, layers, steps_ms, accuracy=0.8, seed=0, peak=100.0):
    return {
        "schema_version": 2, "status": "ok", "created": "2026-11-27T00:00:00+00:00",
        "plan": {"plan_version": 1, "implementation": implementation,
                 "model": {"cell": cell, "layers": layers, "bidirectional": False}, "train": {"seed": seed},
                 "variant": {}, "warmup_steps": 2},
        "data": {"n_train": 1280, "n_test": 1000},
        "environment": ENVIRONMENT,
        "runtime": {"kernel_path": f"{implementation} path", "jit_compile": False, "framework": implementation,
                    "policy": {"intra_op_threads": 2, "flush_denormal": True}},
        "timing": {"steady_step_ms": {"median": float(np.median(steps_ms[2:])), "iqr": 1.0},
                   "step_samples_ms": [list(steps_ms)], "epoch_s": [2.0, 4.0],
                   "first_step_s": 1.5, "process_start_to_ready_s": 3.0, "train_wall_s": 6.0,
                   "train_samples_per_s": 300.0,
                   "inference": {"throughput_per_s": 1000.0, "batch_latency_ms": {"median": 50.0}}},
        "cpu": {"train_cpu_s": 10.0, "train_utilisation": 1.6},
        "memory": {"peak_above_baseline_mb": peak, "peak_rss_mb": 600.0, "rss_after_imports_mb": 300.0,
                   "baseline_ready_mb": 500.0},
        "metrics": {"accuracy": accuracy, "f1": accuracy, "roc_auc": 0.9, "log_loss": 0.4},
        "curves": [], "early_stopping": {"epochs_run": 2}, "files": [],
    }


# Step samples (ms); the first two of each run are warm-up and must be ignored.
STEPS = {
    ("torch", 1): [900, 900, 10, 11, 12, 10, 11],
    ("torch", 2): [900, 900, 20, 21, 22, 20, 21],
    ("tensorflow", 1): [5, 5, 10, 11, 12, 10, 11],  # same as torch: a tie
    ("tensorflow", 2): [5, 5, 20, 22, 24, 20, 22],
    ("keras-torch", 1): [5, 5, 40, 44, 48, 40, 44],
    ("keras-torch", 2): [5, 5, 80, 88, 96, 80, 88],
}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "sweep"
    for (implementation, layers), steps in STEPS.items():
        accuracy = {"torch": 0.80, "tensorflow": 0.81, "keras-torch": 0.79}[implementation]
        write_json_atomic(folder / "runs" / f"{implementation}-lstm{layers}-s0" / "record.json",
                          fixture_record(implementation, "lstm", layers, steps, accuracy, peak=100.0 * layers))
    write_json_atomic(folder / "runs" / "keras-tensorflow-lstm1-s0" / "failed.json",
                      {"status": "failed", "reason": "timeout", "stderr_tail": "killed",
                       "plan": {"implementation": "keras-tensorflow", "train": {"seed": 0},
                                "model": {"cell": "lstm", "layers": 1, "bidirectional": False}}})
    write_json_atomic(folder / "baseline.json", {"metrics": {"accuracy": 0.805, "f1": 0.8, "roc_auc": 0.88}})
    write_json_atomic(folder / "manifest.json", {"profile": {"name": "quick"}, "threads": 2, "environment":
                      ENVIRONMENT, "sessions": [{"started": "now", "command": ["python", "-m", "runners.compare"]}]})
    return folder


def test_summary_medians_exclude_warmup_and_ratios_are_to_torch(results):
    runs, samples, _, _ = load(results)
    summary = tables.summary(runs, samples).set_index(["implementation", "layers"])
    assert summary.loc[("torch", 1), "step_ms"] == 11.0
    assert summary.loc[("keras-torch", 1), "step_ms"] == 44.0
    assert summary.loc[("keras-torch", 2), "vs_torch"] == pytest.approx(88 / 21)
    assert summary.loc[("torch", 1), "vs_torch"] == 1.0
    assert summary.loc[("keras-torch", 1), "vs_torch_low"] > 3.0  # clearly slower: interval far above 1
    low, high = summary.loc[("tensorflow", 1), ["vs_torch_low", "vs_torch_high"]]
    assert low <= 1.0 <= high  # identical samples: the interval must include a tie
    assert summary.loc[("torch", 2), "peak_above_mb"] == 200.0


def test_ratio_interval_brackets_the_ratio():
    rng = np.random.default_rng(0)
    a, b = rng.normal(30, 1, 200), rng.normal(10, 1, 200)
    ratio, low, high = tables.ratio_interval(a, b)
    assert low < ratio < high and 2.8 < low and high < 3.2


def test_overhead_and_depth_scaling(results):
    runs, samples, _, _ = load(results)
    overhead = tables.overhead(runs, samples)
    assert list(overhead["backend"]) == ["torch", "torch"]
    assert overhead.set_index("layers").loc[1, "overhead"] == pytest.approx(4.0)
    depth = tables.depth_scaling(tables.summary(runs, samples)).set_index("implementation")
    assert depth.loc["torch", "2x_vs_1"] == pytest.approx(21 / 11)


def test_accuracy_parity_and_baseline(results):
    runs, samples, baseline, _ = load(results)
    parity = tables.accuracy_parity(tables.summary(runs, samples), baseline).set_index("layers")
    assert parity.loc[1, "spread_points"] == pytest.approx(2.0)
    assert parity.loc[1, "beats_baseline"] == "1 of 3"


def test_report_states_only_supported_differences(results):
    path = report.generate(results)
    text = path.read_text()
    assert "Quick profile" in text
    # torch and tensorflow have identical 1-layer samples: the report must call it a tie, not a win.
    assert "LSTM, 1 layer: " in text and "are not distinguishable" in text.split("LSTM, 1 layer: ")[1].split("\n")[0]
    assert "Keras on torch: median overhead" in text
    assert "tfidf-logreg (reference)" in text and "timeout" in text
    for name in ("step_time_vs_depth", "accuracy_vs_training_time", "peak_memory", "step_time_distributions"):
        assert (results / f"{name}.png").stat().st_size > 1000
    for name in ("summary", "keras_overhead", "depth_scaling", "accuracy_parity", "runs"):
        assert (results / "tables" / f"{name}.csv").exists() and (results / "tables" / f"{name}.md").exists()
    assert pd.read_csv(results / "tables" / "summary.csv").shape[0] == 6


def test_records_from_different_machines_are_not_pooled(results):
    record = json.loads((results / "runs" / "torch-lstm1-s0" / "record.json").read_text())
    record["environment"]["cpu"]["model"] = "Other CPU"
    write_json_atomic(results / "runs" / "torch-lstm1-s0" / "record.json", record)
    with pytest.raises(AnalysisError, match="different machines"):
        load(results)


def test_empty_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(AnalysisError, match="holds no runs"):
        load(tmp_path)


def version_1_record(record: dict) -> dict:
    """The same run as schema 1 wrote it: settings at the top level, the warm-up inside train_spec and timing."""
    old = {key: value for key, value in record.items() if key not in ("plan", "created")}
    plan = record["plan"]
    old.update(schema_version=1, implementation=plan["implementation"], framework=plan["implementation"],
               keras_backend=None, model_spec=plan["model"], train_spec=dict(plan["train"], warmup_steps=2),
               variant={})
    old["timing"] = dict(record["timing"], warmup_steps_excluded=2)
    return old


def test_version_1_records_are_upgraded_and_unknown_versions_refused(results):
    run_dir = results / "runs" / "torch-lstm1-s0"
    current = records.read_record(run_dir)
    write_json_atomic(run_dir / "record.json", version_1_record(current))
    upgraded = records.read_record(run_dir)
    assert upgraded["schema_version"] == 2 and upgraded["upgraded_from"] == 1
    assert records.row(upgraded) == records.row(current)
    assert records.steady_samples_ms(upgraded) == records.steady_samples_ms(current)
    runs, _, _, _ = load(results)  # a folder mixing both versions still loads
    assert len(runs) == 7
    write_json_atomic(run_dir / "record.json", dict(current, schema_version=7))
    with pytest.raises(RecordError, match="schema version 7") as refused:
        load(results)
    assert len(str(refused.value).splitlines()) == 1
