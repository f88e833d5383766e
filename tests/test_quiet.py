"""First contact is quiet: train and predict show their own output, the frameworks' start-up lines only with
--verbose."""

import os
import subprocess
import sys

import pytest

from model.frameworks import QUIET_ENVIRONMENT, VERBOSE_VARIABLE
from tests.conftest import QUIET_ENV, REPO, SMALL_RUN

# What TensorFlow 2.21 (tensorflow-cpu) prints on stderr when it loads, whatever the command.
CHATTER = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard")
REVIEWS = ("What a wonderful film.", "Dreadful, the worst two hours of my life.")


def as_a_user(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command in a fresh process with the environment a user has: without the suite's own quieting
    (``QUIET_ENV``), which would hide what this file tests."""
    theirs = {name: value for name, value in os.environ.items()
              if name not in {*QUIET_ENV, *QUIET_ENVIRONMENT, VERBOSE_VARIABLE}}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          env={**theirs, "KERAS_BACKEND": "tensorflow", **(env or {})}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def trained(tmp_path_factory, imdb_archive, cache_dir):
    """One tiny native TensorFlow run (it loads TensorFlow, the noisiest framework), trained as a user would:
    the data settings of ``SMALL_RUN``, whose preprocessed data the suite's cache already holds."""
    out = tmp_path_factory.mktemp("quiet") / "run"
    done = as_a_user("runners.train", "--impl", "tensorflow", *SMALL_RUN, "--epochs", "1", "--out", str(out),
                     env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
    return done, out


def test_train_shows_its_summary_and_nothing_else(trained):
    done, out = trained
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == f"run folder: {out}" and len(done.stdout.splitlines()) == 2


def test_predict_shows_its_answers_and_nothing_else(trained):
    done = as_a_user("runners.predict", "--model", str(trained[1]), *REVIEWS)
    assert done.stderr == ""
    assert [line.split("\t")[-1] for line in done.stdout.splitlines()] == list(REVIEWS)


def test_verbose_shows_the_frameworks_own_lines(trained):
    done = as_a_user("runners.predict", "--model", str(trained[1]), "--verbose", *REVIEWS)
    assert any(line in done.stderr for line in CHATTER), done.stderr[-2000:]
    assert [line.split("\t")[-1] for line in done.stdout.splitlines()] == list(REVIEWS)
