"""Predictions from a saved run, and their portability across Keras backends."""

import json

import numpy as np
import pytest

from tests.conftest import run_module

REVIEWS = ["What a wonderful film, a joy from start to finish.", "Dreadful. The worst two hours of my life.",
           "It was fine, I guess."]


def predictions(run_dir, backend, *extra, stdin=None):
    done = run_module("runners.predict", "--model", str(run_dir), "--json", *extra, env={"KERAS_BACKEND": backend},
                      stdin=stdin)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_torch_trained_model_predicts_the_same_under_tensorflow(trained_runs):
    run_dir = trained_runs["keras-torch"]
    under_torch = predictions(run_dir, "torch", *REVIEWS)
    under_tensorflow = predictions(run_dir, "tensorflow", *REVIEWS)
    assert [p["text"] for p in under_torch] == REVIEWS
    np.testing.assert_allclose([p["probability"] for p in under_torch],
                               [p["probability"] for p in under_tensorflow], atol=1e-5)
    assert [p["label"] for p in under_torch] == [p["label"] for p in under_tensorflow]


SCRIPT = """
import json, sys
import numpy as np
from pathlib import Path
from model import preprocess
run = Path(sys.argv[1]); record = json.loads((run / "record.json").read_text())
spec, train = record["plan"]["model"], record["plan"]["train"]
prepared = preprocess.prepare(Path(record["data"]["source"]), spec["vocab_size"], spec["maxlen"],
                              train["val_fraction"], train["seed"])
data = prepared.subset(train["train_size"], train["test_size"], train["seed"])
import keras
from runners.harness.metrics import sigmoid
loaded = keras.saving.load_model(run / "model.keras", compile=False)
print(json.dumps(sigmoid(loaded.predict(data.x_test, verbose=0).reshape(-1)).tolist()))
"""


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_saved_model_reproduces_the_recorded_test_predictions(trained_runs, cache_dir, backend):
    """The .keras file, loaded in a new process under either backend, gives the recorded test probabilities."""
    import os
    import subprocess
    import sys

    from tests.conftest import QUIET_ENV, REPO

    run_dir = trained_runs["keras-torch"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(run_dir)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **QUIET_ENV, "KERAS_BACKEND": backend, "RNNBENCH_CACHE": str(cache_dir)},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(run_dir / "predictions.npz") as saved:
        recorded = saved["probabilities"]
    np.testing.assert_allclose(json.loads(done.stdout.splitlines()[-1]), recorded, atol=1e-5)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_reads_reviews_from_a_file_or_standard_input(trained_runs, tmp_path, source):
    run_dir = trained_runs["keras-tensorflow"]
    if source == "file":
        file = tmp_path / "reviews.txt"
        file.write_text("\n".join(REVIEWS))
        result = predictions(run_dir, "tensorflow", "--file", str(file))
    else:
        result = predictions(run_dir, "tensorflow", stdin="\n".join(REVIEWS))
    assert [p["text"] for p in result] == REVIEWS
    assert all(0.0 <= p["probability"] <= 1.0 for p in result)


def test_native_runs_predict_through_the_keras_definition(trained_runs):
    result = predictions(trained_runs["torch"], "torch", *REVIEWS)
    assert len(result) == 3 and all(p["label"] in ("positive", "negative") for p in result)


def test_prediction_loads_none_of_the_measurement_stack(trained_runs):
    """Predicting needs Keras and the run folder, not memory-profiler or the measured driver.

    (Keras 3.15 itself imports psutil and scikit-learn, so those cannot be checked here.)
    """
    code = ("import sys; from runners.predict import app;\n"
            "sys.argv = ['predict', '--model', sys.argv[1], 'Great film'];\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('memory_profiler', 'runners.harness.session', 'runners.harness.measure', "
            "'runners.harness.environment') if m in sys.modules))")
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-c", code, str(trained_runs["torch"])], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
