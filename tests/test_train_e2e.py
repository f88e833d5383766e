"""End-to-end training of each implementation on a few hundred real reviews, in its own process."""

import json

import numpy as np
import pytest
from sklearn import metrics

from model import records
from model.implementations import NAMES
from tests.conftest import SMALL_RUN, run_module

@pytest.mark.parametrize("name", NAMES)
def test_record_is_complete(trained_runs, name):
    record = records.read_record(trained_runs[name])
    assert records.missing_fields(record) == []
    assert record["status"] == "ok" and record["plan"]["implementation"] == name
    assert record["data"]["n_train"] == 320 and record["data"]["n_test"] == 200
    timing = record["timing"]
    assert len(timing["step_samples_ms"]) == record["early_stopping"]["epochs_run"]
    assert all(len(epoch) == 10 for epoch in timing["step_samples_ms"])  # 320 // 32 steps
    assert timing["steady_step_ms"]["n"] == 10 * record["early_stopping"]["epochs_run"] - 3
    assert 0 < timing["steady_step_ms"]["median"] and timing["first_step_s"] > 0
    assert 0.5 < timing["step_time_coverage"] <= 1.0
    assert timing["inference"]["throughput_per_s"] > 0
    memory = record["memory"]
    assert memory["peak_rss_mb"] >= memory["baseline_ready_mb"] > memory["rss_after_imports_mb"] > 0
    assert record["cpu"]["train_cpu_s"] > 0
    assert record["runtime"]["kernel_path"] and "unknown" not in record["runtime"]["kernel_path"]
    assert record["runtime"]["jit_compile"] is False
    packages = record["environment"]["packages"]
    assert packages["torch"] == "2.13.0+cpu" or packages["torch"].startswith("2.13.0")
    assert packages["keras"] == "3.15.1" and packages["tensorflow-cpu"] == "2.21.0"
    assert [c["epoch"] for c in record["curves"]] == list(range(1, record["early_stopping"]["epochs_run"] + 1))
    assert (trained_runs[name] / "vocabulary.json").exists() and (trained_runs[name] / "weights.npz").exists()


@pytest.mark.parametrize("name", NAMES)
def test_thread_and_denormal_policy_took_effect(trained_runs, name):
    policy = records.read_record(trained_runs[name])["runtime"]["policy"]
    assert policy["intra_op_threads"] == 1 and policy["inter_op_threads"] == 1
    assert policy["flush_denormal"] is True
    assert policy["environment"]["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("name", NAMES)
def test_metrics_match_scikit_learn_on_saved_predictions(trained_runs, name):
    record = records.read_record(trained_runs[name])
    with np.load(trained_runs[name] / "predictions.npz") as saved:
        labels, probabilities = saved["labels"].astype(int), saved["probabilities"]
    predicted = (probabilities >= 0.5).astype(int)
    quality = record["metrics"]
    assert quality["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    assert quality["f1"] == pytest.approx(metrics.f1_score(labels, predicted))
    assert quality["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, probabilities))
    assert quality["confusion_matrix"] == metrics.confusion_matrix(labels, predicted).tolist()
    assert sum(map(sum, quality["confusion_matrix"])) == 200


def test_keras_runs_name_their_kernel_path(trained_runs):
    torch_path = records.read_record(trained_runs["keras-torch"])["runtime"]["kernel_path"]
    tf_path = records.read_record(trained_runs["keras-tensorflow"])["runtime"]["kernel_path"]
    assert "Python loop" in torch_path and "tf.while_loop" in tf_path
    assert "oneDNN" in records.read_record(trained_runs["torch"])["runtime"]["kernel_path"]


def test_native_torch_can_turn_flush_to_zero_off(tmp_path, imdb_archive, cache_dir):
    done = run_module("runners.train", "--impl", "torch", *SMALL_RUN, "--epochs", "1", "--no-flush-denormal",
                      "--out", str(tmp_path / "run"),
                      env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-2000:]
    policy = json.loads((tmp_path / "run" / "record.json").read_text())["runtime"]["policy"]
    assert policy["flush_denormal"] is False
