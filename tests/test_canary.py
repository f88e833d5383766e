"""The canary sees a process slowed from outside (a diagnostic: it judges no run); the noise rules; busy runs are run
again."""

import json
import os
import subprocess
import sys

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
sys.stdin.readline()  # the parent's go, once its neighbours are at work
taken, end = [], time.perf_counter() + 1.0
while time.perf_counter() < end or len(taken) < 30:
    taken.append(workload.once()["total_ms"])
print(json.dumps(statistics.median(taken) / base))
"""


# A neighbour as the canary's own work: a product on both cores, again and again.
SPIN = "import numpy as np\na = np.ones((512, 512))\na @ a\nprint('busy', flush=True)\nwhile True: a @ a"


def canary_slowdown(neighbours: int) -> float:
    """The canary's median slowdown while ``neighbours`` processes multiply matrices on the cores, started once its
    reference is taken and at work before its canaries start: a neighbour that competes for the cores, as a VM's
    does. A SIGSTOP rhythm did not model it on a fast CPU, whose canary repeats fit between the pauses (a Zen 5
    read 1.0-1.7 where a Zen 3 read 2.8-3.7)."""
    child = subprocess.Popen([sys.executable, "-c", CANARIES], cwd=REPO, env={**os.environ, **QUIET_ENV},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    spinning = []
    try:
        assert child.stdout.readline().strip() == "ready"
        spinning = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
                    for _ in range(neighbours)]
        for neighbour in spinning:  # at work before the canaries start: numpy's import would eat their second
            assert neighbour.stdout.readline().strip() == "busy"
        out, _ = child.communicate("go\n", timeout=120)
    finally:
        child.kill()
        for neighbour in spinning:
            neighbour.kill()
            neighbour.wait()
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.alone  # a neighbour of the test's own would slow the quiet one
def test_the_canary_sees_a_process_slowed_from_outside_and_not_a_quiet_one():
    # Two neighbours multiplying matrices on both cores: 3.8-16 in 9 tries on a Zen 5; the best of three must see
    # it (a scheduler may favour the canary now and then); a canary that measured nothing reads about 1 in all.
    assert max(canary_slowdown(neighbours=2) for _ in range(3)) > 1.25
    assert canary_slowdown(neighbours=0) < 1.25


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
