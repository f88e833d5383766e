"""The canary: it sees a run slowed from outside, stays quiet otherwise, and noisy runs are run again."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from analysis import tables
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
    while paused and child.poll() is None:  # a neighbour taking the cores 3/4 of the time
        child.send_signal(signal.SIGSTOP)
        time.sleep(0.015)
        child.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    out, _ = child.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def test_the_canary_flags_a_process_slowed_from_outside_and_not_a_quiet_one():
    assert canary_slowdown(paused=True) > tables.CANARY_SLOWDOWN
    assert canary_slowdown(paused=False) < tables.CANARY_SLOWDOWN


def test_a_slowed_canary_makes_a_run_noisy():
    runs = pd.DataFrame(dict(other_cpu_fraction=[0.0, 0.0, 0.0, None], steal_fraction=0.0,
                             canary_slowdown=[1.0, 1.25, 1.26, None]))
    assert tables.quiet(runs).tolist() == [True, True, False, True]  # unknown counts as quiet


def cell_runs(rows):
    return pd.DataFrame([dict(run_id=run_id, implementation="torch", cell="gru", layers=1, bidirectional=False,
                              status=status, other_cpu_fraction=0.0, steal_fraction=0.0, canary_slowdown=slowdown)
                         for run_id, status, slowdown in rows])


def test_reruns_fill_a_cell_up_to_three_quiet_runs_within_the_allowance():
    runs = cell_runs([("torch-gru1-s0", "ok", 1.0), ("torch-gru1-s1", "ok", 1.5), ("torch-gru1-s2", "ok", 1.6)])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == [("torch-gru1-s1", "torch-gru1-s1-rerun1"),
                                                            ("torch-gru1-s2", "torch-gru1-s2-rerun2")]
    assert reruns_needed(runs, quiet_needed=3, extra=1) == [("torch-gru1-s1", "torch-gru1-s1-rerun1")]
    # After one re-run that was quiet and one that was noisy again (the failed ones count too): one left.
    runs = pd.concat([runs, cell_runs([("torch-gru1-s1-rerun1", "ok", 1.0), ("torch-gru1-s2-rerun2", "ok", 1.7)])])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == [("torch-gru1-s1", "torch-gru1-s1-rerun3")]
    runs = pd.concat([runs, cell_runs([("torch-gru1-s1-rerun3", "failed", None)])])
    assert reruns_needed(runs, quiet_needed=3, extra=3) == []  # the allowance is spent
    quiet = cell_runs([(f"torch-gru1-s{seed}", "ok", 1.0) for seed in range(3)])
    assert reruns_needed(quiet, quiet_needed=3, extra=3) == []
