"""Shared fixtures: the real archive, a tiny archive in the official layout, and subprocess helpers."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from model.implementations import NAMES, get
from tests.suite_timing import (  # noqa: F401  (the suite times itself)
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_sessionstart,
)

REPO = Path(__file__).resolve().parent.parent
SHARED_ARCHIVE = REPO.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under pytest-xdist's workers (make test), a test marked ``alone`` holds the machine exclusively, from its
    fixtures' setup to their teardown, and every other test holds it shared: the test that times something waits
    for the other worker's current test, which then waits for it."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        yield
        return
    with open(Path(tempfile.gettempdir()) / f"rnnbench-tests-{run}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if item.get_closest_marker("alone") else fcntl.LOCK_SH)
        yield


def real_archive() -> Path:
    path = Path(os.environ.get("IMDB_DATA", SHARED_ARCHIVE))
    if not path.exists():
        pytest.fail(f"the IMDB archive is needed for this test; set IMDB_DATA (looked at {path})")
    return path


@pytest.fixture(scope="session")
def imdb_archive() -> Path:
    return real_archive()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One preprocessing cache for the whole session (CI points RNNBENCH_CACHE at its own folder)."""
    return Path(os.environ.get("RNNBENCH_CACHE") or tmp_path_factory.mktemp("cache"))


REVIEWS = {
    "pos": ["A wonderful, moving film.<br /><br />Loved it", "Great acting and a great story",
            "Brilliant! I'd watch it again", "Superb direction, superb cast"],
    "neg": ["Dull and far too long.<br />Awful", "The worst film I have seen", "Boring plot, bad acting",
            "A waste of two hours"],
}


def make_archive(path: Path, per_class: int = 4, unsup: bool = False, extra_neg: int = 0) -> Path:
    """A small tar.gz in the official aclImdb layout (with README, vocab and url files like the real one)."""
    def add(archive, name, text):
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as archive:
        add(archive, "aclImdb/README", "Large Movie Review Dataset v1.0 (test copy)")
        add(archive, "aclImdb/imdb.vocab", "the\nfilm\n")
        for split in ("train", "test"):
            for label, texts in REVIEWS.items():
                count = per_class + (extra_neg if label == "neg" else 0)
                for i in range(count):
                    rating = 9 if label == "pos" else 2
                    add(archive, f"aclImdb/{split}/{label}/{i}_{rating}.txt", f"{texts[i % len(texts)]} #{split}{i}")
                add(archive, f"aclImdb/{split}/urls_{label}.txt", "http://example.invalid\n" * count)
            if unsup and split == "train":
                add(archive, "aclImdb/train/unsup/0_0.txt", "unlabelled review")
    return path


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    return make_archive(tmp_path / "aclImdb_v1.tar.gz")


def run_module(module: str, *args: str, env: dict | None = None, timeout: float = 600, stdin: str | None = None):
    """Run ``python -m module args`` in a fresh process, as a user would."""
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)


def invoke(module: str, *args: str, input: str | None = None):
    """A CLI in this process, through typer's test runner: for what is refused or answered before any framework
    loads (a subprocess stays where isolation is the point). The result reads like a finished subprocess."""
    import importlib
    import types

    from typer.testing import CliRunner

    result = CliRunner().invoke(importlib.import_module(module).app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return types.SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def run_module_code(code: str, env: dict | None = None, timeout: float = 300, check: bool = True):
    """Run ``python -c code`` in a fresh process from the repository; fails the test on a non-zero exit if
    ``check``."""
    full_env = {**os.environ, **QUIET_ENV, **(env or {})}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0 or not check, done.stderr[-2000:]
    return done


SMALL_RUN = ("--train-size", "320", "--test-size", "200", "--epochs", "2", "--batch-size", "32", "--units", "16",
             "--embedding-dim", "16", "--maxlen", "64", "--quiet")


def impl_args(name):
    """The command-line options a user types for an implementation (keras + backend for the Keras ones)."""
    entry = get(name)
    if entry.uses_keras and entry.patch is None:
        return ("--impl", "keras", "--backend", entry.keras_backend)
    return ("--impl", name)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, imdb_archive, cache_dir):
    """One small run per implementation, with one thread: the thread policy must show in each record. Under
    pytest-xdist each worker is a session of its own: the first to ask trains the runs in the folder the workers
    share (the parent of their base temps), the others wait on its lock and read them."""
    from concurrent.futures import ThreadPoolExecutor

    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    folder, finished = shared / "trained-runs", shared / "trained-runs.done"

    def train(name):  # two at a time: one thread each on a 2-core machine (these runs time nothing)
        out = folder / name
        done = run_module("runners.train", *impl_args(name), *SMALL_RUN, "--threads", "1", "--out", str(out),
                          env={"IMDB_DATA": str(imdb_archive), "RNNBENCH_CACHE": str(cache_dir)})
        assert done.returncode == 0, done.stderr[-3000:]
        return name, out

    with open(shared / "trained-runs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not finished.exists():
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(train, NAMES))
            finished.touch()
    return {name: folder / name for name in NAMES}
