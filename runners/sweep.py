"""The four-way sweep: every (implementation, cell, depth, direction, seed) in its own fresh process.

Runs are interleaved across implementations, each has a timeout, a failure is
recorded (``failed.json``) and the sweep goes on; a run counts as finished
once its ``record.json`` exists (written atomically by the run itself), so
re-running the same command resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from model.spec import CELLS
from runners import records
from runners.implementations import NAMES

# The named sweeps. "quick" runs the whole grid on a stratified subset of the
# real data with the same network shape, batch and maxlen as "full", so that
# its per-step times predict the full sweep's duration.
SWEEP_PROFILES: dict[str, dict] = {
    "quick": dict(implementations=NAMES, cells=CELLS, layers=(1, 2, 3), bidirectional=(False,), seeds=(0,),
                  train_size=2560, test_size=1000, epochs=1, timeout_s=600),
    "full": dict(implementations=NAMES, cells=CELLS, layers=(1, 2, 3), bidirectional=(False, True), seeds=(0, 1, 2),
                 train_size=None, test_size=None, epochs=3, timeout_s=4 * 3600),
}
FAILED_FILE = "failed.json"
MANIFEST_FILE = "manifest.json"
BASELINE_FILE = "baseline.json"


@dataclass(frozen=True)
class Run:
    implementation: str
    cell: str
    layers: int
    bidirectional: bool
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.implementation}-{self.cell}{self.layers}{'-bi' if self.bidirectional else ''}-s{self.seed}"


def grid(settings: dict) -> list[Run]:
    """Configurations in order, implementations interleaved and rotated so none always follows another."""
    runs = []
    configurations = itertools.product(settings["seeds"], settings["bidirectional"], settings["layers"],
                                       settings["cells"])
    for index, (seed, bidirectional, layers, cell) in enumerate(configurations):
        implementations = list(settings["implementations"])
        shift = index % len(implementations)
        for name in implementations[shift:] + implementations[:shift]:
            runs.append(Run(name, cell, layers, bidirectional, seed))
    return runs


def train_command(run: Run, settings: dict, out: Path) -> list[str]:
    impl = ["--impl", "keras", "--backend", run.implementation.removeprefix("keras-")] \
        if run.implementation.startswith("keras-") else ["--impl", run.implementation]
    command = [sys.executable, "-m", "runners.train", *impl, "--cell", run.cell, "--layers", str(run.layers),
               "--bidirectional" if run.bidirectional else "--unidirectional", "--seed", str(run.seed),
               "--epochs", str(settings["epochs"]), "--out", str(out), "--quiet"]
    for option in ("train_size", "test_size", "threads", "maxlen", "units", "batch_size"):
        if settings.get(option) is not None:
            command += [f"--{option.replace('_', '-')}", str(settings[option])]
    if settings.get("data"):
        command += ["--data", str(settings["data"])]
    return command


def state(run_dir: Path) -> str:
    if (run_dir / records.RECORD_FILE).exists():
        return "done"
    if (run_dir / FAILED_FILE).exists():
        return "failed"
    return "pending"


def execute(run: Run, settings: dict, run_dir: Path) -> str:
    """One run in a fresh process; returns its final state. Ctrl-C stops the child too and propagates."""
    for leftover in run_dir.glob("*") if run_dir.exists() else []:  # an interrupted earlier attempt
        if leftover.is_file():
            leftover.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    child = subprocess.Popen(train_command(run, settings, run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)  # its own group: killed whole on timeout
    try:
        stdout, stderr = child.communicate(timeout=settings["timeout_s"])
        outcome = "ok" if child.returncode == 0 else "error"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
        outcome = "timeout"
    except BaseException:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    if outcome == "ok" and (run_dir / records.RECORD_FILE).exists():
        return "done"
    records.write_json_atomic(run_dir / FAILED_FILE, dict(
        status="failed", reason=outcome, returncode=child.returncode, run=asdict(run), wall_s=time.perf_counter() - start,
        timeout_s=settings["timeout_s"], command=train_command(run, settings, run_dir),
        stderr_tail=_tail(stderr), stdout_tail=_tail(stdout), created=datetime.now(timezone.utc).isoformat()))
    return "failed"


def _tail(text: str, lines: int = 15) -> str:
    # TensorFlow's start-up banner is noise; keep the lines that explain the failure.
    kept = [line for line in (text or "").splitlines() if "oneDNN" not in line and "absl::" not in line]
    return "\n".join(kept[-lines:])


def write_manifest(results: Path, profile: str, settings: dict, runs: list[Run]) -> None:
    from runners.environment import environment

    path = results / MANIFEST_FILE
    previous = json.loads(path.read_text()) if path.exists() else {}
    sessions = previous.get("sessions", []) + [dict(started=datetime.now(timezone.utc).isoformat(),
                                                    command=[sys.executable, *sys.argv])]
    records.write_json_atomic(path, dict(profile=profile, settings=settings, runs=len(runs),
                                         environment=environment(), sessions=sessions))


def run_baseline(results: Path, settings: dict) -> None:
    path = results / BASELINE_FILE
    if path.exists():
        return
    from model import imdb, preprocess
    from model.spec import ModelSpec, TrainSpec
    from runners.baseline import tfidf_logistic_regression

    model, train = ModelSpec(), TrainSpec()
    source = imdb.locate(settings.get("data"))
    # The runs' own cache entry: only its validation rows matter to the baseline.
    prepared = preprocess.prepare(source, model.vocab_size, settings.get("maxlen") or model.maxlen,
                                  train.val_fraction, train.seed)
    result = tfidf_logistic_regression(source, prepared, settings["train_size"], settings["test_size"], train.seed)
    records.write_json_atomic(path, result)


def sweep(results: Path, profile: str, settings: dict, retry_failed: bool = False, on_progress=None) -> dict:
    """Run every pending configuration; returns counts of done / failed runs."""
    runs = grid(settings)
    results.mkdir(parents=True, exist_ok=True)
    write_manifest(results, profile, settings, runs)
    run_baseline(results, settings)
    executed = 0
    for index, run in enumerate(runs, 1):
        run_dir = results / "runs" / run.run_id
        current = state(run_dir)
        if current == "done" or (current == "failed" and not retry_failed):
            if on_progress:
                on_progress(index, len(runs), run, current, executed)
            continue
        if on_progress:
            on_progress(index, len(runs), run, "running", executed)
        finished = execute(run, settings, run_dir)
        executed += 1
        if on_progress:
            on_progress(index, len(runs), run, finished, executed)
    states = [state(results / "runs" / run.run_id) for run in runs]
    return dict(total=len(runs), executed=executed, done=states.count("done"), failed=states.count("failed"))
