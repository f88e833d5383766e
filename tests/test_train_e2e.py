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
    assert 0.4 < timing["step_time_coverage"] <= 1.0  # Keras' loop spends time between steps; more when busy
    assert timing["inference"]["throughput_per_s"] > 0
    inference = timing["inference"]
    # One warm-up batch for every implementation, reported on its own; the timed pass covers the whole test set.
    assert inference["warmup_batches_excluded"] == 1 and inference["first_batch_ms"] > 0
    assert len(inference["batch_samples_ms"]) == -(-200 // record["plan"]["train"]["eval_batch_size"])
    assert [v["epoch"] for v in record["validations"]] == list(range(1, record["early_stopping"]["epochs_run"] + 1))
    assert all(v["train_wall_s"] > 0 and 0 <= v["val_accuracy"] <= 1 for v in record["validations"])
    assert record["curves"][-1]["val_loss"] == record["validations"][-1]["val_loss"]
    assert all(len(curve["step_losses"]) == 10 for curve in record["curves"])
    machine = record["cpu"]["machine_during_training"]
    assert machine["other_cpu_s"] >= 0 and machine["steal_s"] >= 0 and 0 <= machine["other_fraction"] <= 1
    memory = record["memory"]
    assert memory["peak_rss_mb"] >= memory["baseline_ready_mb"] > memory["rss_after_imports_mb"] > 0
    assert record["cpu"]["train_cpu_s"] > 0
    canary = record["canary"]  # a run this short has its start and end canaries, none during training
    assert [sample["phase"] for sample in canary["samples"]][::len(canary["samples"]) - 1] == ["start", "end"]
    assert all(sample["total_ms"] > 0 for sample in canary["samples"]) and canary["spent_s"] > 0
    assert record["runtime"]["kernel_path"] and "unknown" not in record["runtime"]["kernel_path"]
    assert record["runtime"]["jit_compile"] is (name == "keras-jax")  # Keras' "auto" resolves to XLA on jax only
    packages = record["environment"]["packages"]
    assert packages["torch"] == "2.13.0+cpu" or packages["torch"].startswith("2.13.0")
    assert packages["keras"] == "3.15.1" and packages["tensorflow-cpu"] == "2.21.0"
    assert [c["epoch"] for c in record["curves"]] == list(range(1, record["early_stopping"]["epochs_run"] + 1))
    assert (trained_runs[name] / "vocabulary.json").exists() and (trained_runs[name] / "weights.npz").exists()


@pytest.mark.parametrize("name", NAMES)
def test_thread_and_denormal_policy_took_effect(trained_runs, name):
    policy = records.read_record(trained_runs[name])["runtime"]["policy"]
    assert policy["intra_op_threads"] == 1 and policy["inter_op_threads"] == 1
    assert policy["flush_denormal"] is True and policy["flush_denormal_worker_threads"] is True
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
    fused = records.read_record(trained_runs["keras-torch-fused"])
    assert "keras-torch-fused patch" in fused["runtime"]["kernel_path"] and fused["plan"]["variant"] == {
        "rnn_path": "fused", "jit_compile": False, "precision": "fp32"}


def test_native_torch_can_turn_flush_to_zero_off(tmp_path, imdb_archive, cache_dir):
    done = run_module("runners.train", "--impl", "torch", *SMALL_RUN, "--epochs", "1", "--no-flush-denormal",
                      "--out", str(tmp_path / "run"),
                      env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-2000:]
    policy = json.loads((tmp_path / "run" / "record.json").read_text())["runtime"]["policy"]
    assert policy["flush_denormal"] is False


def test_validation_inside_epochs_is_off_the_training_clock(tmp_path, imdb_archive, cache_dir):
    done = run_module("runners.train", "--impl", "torch", *SMALL_RUN, "--validations-per-epoch", "4",
                      "--patience", "2", "--out", str(tmp_path / "run"),
                      env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-2000:]
    record = records.read_record(tmp_path / "run")
    validations = record["validations"]
    # 10 steps an epoch, 4 checks: after steps 2 (2.5 rounded to even), 5, 8 (7.5) and 10, then 12, 15, 18, 20.
    assert [v["step"] for v in validations] == [2, 5, 8, 10, 12, 15, 18, 20]
    clocks = [v["train_wall_s"] for v in validations]
    assert clocks == sorted(clocks) and clocks[-1] <= record["timing"]["train_wall_s"]
    assert sum(record["timing"]["validation_s"]) == pytest.approx(sum(v["validation_s"] for v in validations))
    assert record["cpu"]["validation_cpu_s"] > 0
    reached = records.time_to_target(record, 0.0)
    assert reached == dict(wall_s=clocks[0], cpu_s=validations[0]["train_cpu_s"], step=2,
                           wall_with_validation_s=clocks[0] + validations[0]["validation_s"])
    assert records.time_to_target(record, 1.01) is None


def test_a_run_with_no_steps_after_warm_up_still_finishes(tmp_path, imdb_archive, cache_dir):
    """Two steps, three warm-up steps: no steady-state figures, reported as n/a instead of a crash."""
    done = run_module("runners.train", "--impl", "torch", "--train-size", "64", "--batch-size", "32",
                      "--test-size", "100", "--epochs", "1", "--units", "8", "--maxlen", "32", "--quiet",
                      "--out", str(tmp_path / "run"),
                      env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "steady step n/a ms" in done.stdout
    assert records.read_record(tmp_path / "run")["timing"]["steady_step_ms"]["n"] == 0
