"""Predictions from a saved run, and their portability across Keras backends."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_module


def predictions(run_dir, backend, *extra, stdin=None):
    done = run_module("runners.predict", "--model", str(run_dir), "--json", *extra, env={"KERAS_BACKEND": backend},
                      stdin=stdin)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def scored_reviews(trained_runs, cache_dir):
    """The raw test reviews the runs scored, as (their rows in predictions.npz, their texts): every run of the
    fixture has one plan but for the implementation, so one set of rows. A review that a one-per-line file would
    cut in two (a line separator inside it) is left out."""
    from model import preprocess, records
    from model.plan import RunPlan

    record = records.read_record(trained_runs["torch"])
    plan, source = RunPlan.from_dict(record["plan"]), Path(record["data"]["source"])
    prepared = preprocess.prepare(source, **preprocess.settings(plan.model, plan.train), cache_dir=cache_dir)
    texts = preprocess.split_texts(source, prepared, plan.train.train_size, plan.train.test_size,
                                   plan.train.data_seed)[2]
    rows = [row for row, text in enumerate(texts) if text.splitlines() == [text] and text.strip()]
    assert len(rows) > 0.9 * len(texts)
    return np.array(rows), [texts[row] for row in rows]


def assert_recorded(result, run_dir, rows, texts):
    """The run's own test probabilities (predictions.npz), review by review, and the labels they imply."""
    with np.load(run_dir / "predictions.npz") as saved:
        recorded = saved["probabilities"][rows]
    assert [p["text"] for p in result] == texts
    np.testing.assert_allclose([p["probability"] for p in result], recorded, atol=1e-5)
    decided = np.abs(recorded - 0.5) > 1e-5  # a review on the boundary may fall either way
    labels = np.array([p["label"] for p in result])
    assert (labels[decided] == np.where(recorded[decided] >= 0.5, "positive", "negative")).all()


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_a_torch_trained_model_predicts_its_recorded_probabilities_under_either_backend(trained_runs, scored_reviews,
                                                                                         backend):
    """The .keras file of a run trained under torch, in a new process under either backend, from the raw reviews
    given as arguments: the test probabilities the run recorded (.keras files are backend-portable)."""
    run_dir, (rows, texts) = trained_runs["keras-torch"], scored_reviews
    assert_recorded(predictions(run_dir, backend, "--", *texts), run_dir, rows, texts)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_reads_reviews_from_a_file_or_standard_input(trained_runs, scored_reviews, tmp_path, source):
    """Raw test reviews in, the probabilities the run recorded for them out: the whole path from text (tokenizer,
    vocabulary, padding) to the saved model."""
    run_dir, (rows, texts) = trained_runs["keras-tensorflow"], scored_reviews
    if source == "file":
        file = tmp_path / "reviews.txt"
        file.write_text("\n".join(texts), encoding="utf-8")
        result = predictions(run_dir, "tensorflow", "--file", str(file))
    else:
        result = predictions(run_dir, "tensorflow", stdin="\n".join(texts))
    assert_recorded(result, run_dir, rows, texts)


def test_native_runs_predict_through_the_keras_definition(trained_runs, scored_reviews, tmp_path):
    """Native torch's canonical weights in the Keras network give the probabilities native torch recorded."""
    run_dir, (rows, texts) = trained_runs["torch"], scored_reviews
    file = tmp_path / "reviews.txt"
    file.write_text("\n".join(texts), encoding="utf-8")
    assert_recorded(predictions(run_dir, "torch", "--file", str(file)), run_dir, rows, texts)


def test_prediction_loads_none_of_the_measurement_stack(trained_runs):
    """Predicting needs Keras and the run folder, not memory-profiler or the measured driver.

    (Keras 3.15 itself imports psutil and scikit-learn, so those cannot be checked here.)
    """
    code = ("import sys; from runners.predict import app;\n"
            "sys.argv = ['predict', '--model', sys.argv[1], 'Great film'];\n"
            "try:\n    app()\nexcept SystemExit as ended:\n    if ended.code:\n        raise\n"
            "print(sorted(m for m in ('memory_profiler', 'runners.harness.session', 'runners.harness.measure', "
            "'runners.harness.environment') if m in sys.modules))")
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-c", code, str(trained_runs["torch"])], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    *_, prediction, modules = done.stdout.strip().splitlines()
    assert modules == "[]"
    label, probability, text = prediction.split("\t")  # a prediction came out: predict ran, not failed early
    assert label in ("positive", "negative") and 0 <= float(probability) <= 1 and text == "Great film"
