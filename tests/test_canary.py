"""The canary sees a process slowed from outside (a diagnostic: it judges no run); the noise rules; busy runs are run
again."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from analysis import noise
from runners.harness.sweep import reruns_needed
from tests.conftest import QUIET_ENV, REPO

# Takes the machine's reference, says so, then canaries for a second of wall time (a fixed count could finish
# before the parent's first pause); prints the slowdown of their median.
CANARIES = """
import json, statistics, sys, time
from runners.harness.canary import Workload, reference
base = reference(2)["total_ms"]
workload = Workload(2)
print("ready", flush=True)
taken, end = [], time.perf_counter() + 1.0
while time.perf_counter() < end or len(taken) < 30:
    taken.append(workload.once()["total_ms"])
print(json.dumps(statistics.median(taken) / base))
"""


def canary_slowdown(paused: bool) -> float:
    child = subprocess.Popen([sys.executable, "-c", CANARIES], cwd=REPO, env={**os.environ, **QUIET_ENV},
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    # A neighbour taking the cores 3/4 of the time, in spells of random length: a fixed rhythm can lock in phase with
    # the canary's repeats, which then fit between the pauses (measured: a slowdown of 1.2 in 2 of 5 tries, 4.2 else).
    rng = random.Random(0)
    while paused and child.poll() is None:
        child.send_signal(signal.SIGSTOP)
        time.sleep(rng.uniform(0.005, 0.025))
        child.send_signal(signal.SIGCONT)
        time.sleep(rng.uniform(0.002, 0.008))
    out, _ = child.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.alone  # a neighbour would slow the quiet one
def test_the_canary_sees_a_process_slowed_from_outside_and_not_a_quiet_one():
    assert canary_slowdown(paused=True) > 1.25  # paused a quarter of the time: at least 4/3 in theory
    assert canary_slowdown(paused=False) < 1.25


def test_busy_sequential_runs_are_not_timed_interleaved_runs_are_and_the_canary_judges_none():
    runs = pd.DataFrame(dict(other_cpu_fraction=[0.0, 0.05, 0.051, None, 0.0, 0.3],
                             steal_fraction=[0.0] * 4 + [0.03, 0.0],
                             canary_slowdown=[2.0, None, 1.0, None, 1.0, 1.0],
                             schedule=["sequential"] * 5 + ["interleaved"]))
    assert noise.quiet(runs).tolist() == [True, True, False, True, False, True]  # unknown counts as quiet


def cell_runs(rows):
    return pd.DataFrame([dict(run_id=run_id, implementation="torch", cell="gru", layers=1, bidirectional=False,
                              status=status, other_cpu_fraction=other, steal_fraction=0.0)
                         for run_id, status, other in rows])


def test_reruns_fill_a_cell_up_to_three_quiet_runs_within_the_allowance():
    runs = cell_runs([("torch-gru1-s0", "ok", 0.0), ("torch-gru1-s1", "ok", 0.5), ("torch-gru1-s2", "ok", 0.6)])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == [("torch-gru1-s1", "torch-gru1-s1-rerun1"),
                                                            ("torch-gru1-s2", "torch-gru1-s2-rerun2")]
    assert reruns_needed(runs, quiet_needed=3, extra=1) == [("torch-gru1-s1", "torch-gru1-s1-rerun1")]
    # After one re-run that was quiet and one that was noisy again (the failed ones count too): one left.
    runs = pd.concat([runs, cell_runs([("torch-gru1-s1-rerun1", "ok", 0.0), ("torch-gru1-s2-rerun2", "ok", 0.7)])])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == [("torch-gru1-s1", "torch-gru1-s1-rerun3")]
    runs = pd.concat([runs, cell_runs([("torch-gru1-s1-rerun3", "failed", None)])])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == []  # the allowance is spent
    quiet = cell_runs([(f"torch-gru1-s{seed}", "ok", 0.0) for seed in range(3)])
    assert reruns_needed(quiet, quiet_needed=3, extra=3) == []
