"""How one run executes, whichever executor starts it: a fresh ``python -m runners.train --plan`` process with a
timeout, its folder started afresh, a failure recorded in ``failed.json``; the machine's roofline measured once
per results folder; and the local executor. ``runners.harness.sweep`` plans and ``runners.harness.cluster`` (Ray)
distributes; both execute runs through this module.

An executor has ``describe() -> dict`` (for the manifest), ``measure_roofline(results, threads)``,
``run(runs_folder, pending, timeout_s, report)`` (``report(run_id, state, seconds=None, where=None)`` hears of
every start and end) and ``close()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

from model import records
from model.errors import UserError
from model.plan import DEFAULT_SCHEDULE, RUN_SCHEDULES, RunPlan
from runners.harness import gate, policy


class ExecutorError(UserError):
    """An executor that cannot start as asked (reported to users in one line)."""


def data_settings(plans) -> list[tuple]:
    """(source, ``preprocess.prepare`` keyword arguments) of every data cache entry the runs read, once each."""
    from model import imdb, preprocess

    settings = {(plan.data, tuple(sorted(preprocess.settings(plan.model, plan.train).items()))) for plan in plans}
    return [(imdb.locate(data), dict(rest)) for data, rest in sorted(settings, key=str)]


def train_command(plan_file: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "runners.train", "--plan", str(plan_file), "--out", str(out), "--quiet"]


def execute(plan: RunPlan, run_dir: Path, timeout_s: float, cores: list[int] | None = None,
            env: dict | None = None, tied: bool = False) -> str:
    """One run in a fresh process; returns its final state. Ctrl-C stops the child too and propagates.

    ``tied`` has the kernel kill it with its parent (a killed sweep or Ray worker must not leave a training process
    running beside the next measured run). For the Ray executor: ``cores`` pins the child to those cores, ``env``
    adds to its environment."""
    start_afresh(run_dir, plan)
    command = train_command(run_dir / records.PLAN_FILE, run_dir)
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True,  # its own group: killed whole on timeout
                             env={**os.environ, **(env or {}), **policy.preload_environment(plan.allocator)},
                             preexec_fn=_pinned_and_tied(cores, tied) if cores or tied else None)
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
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
    record_failure(run_dir, plan, outcome, time.perf_counter() - start, timeout_s, command=command,
                   returncode=child.returncode, stderr=stderr, stdout=stdout)
    return "failed"


def start_afresh(run_dir: Path, plan: RunPlan) -> None:
    """The run folder holds the plan and nothing left from an interrupted earlier attempt."""
    for leftover in run_dir.glob("*") if run_dir.exists() else []:
        if leftover.is_file():
            leftover.unlink()
    plan.save(run_dir / records.PLAN_FILE)


def record_failure(run_dir: Path, plan: RunPlan, reason: str, wall_s: float, timeout_s: float,
                   command: list[str] | None = None, returncode: int | None = None, stderr: str = "",
                   stdout: str = "") -> None:
    """``failed.json``: why a run has no record. Reasons: error, timeout, lost (its worker or node died)."""
    records.write_json_atomic(run_dir / records.FAILED_FILE, dict(
        status="failed", reason=reason, returncode=returncode, plan=plan.to_dict(), wall_s=wall_s,
        timeout_s=timeout_s, command=command, stderr_tail=_tail(stderr), stdout_tail=_tail(stdout),
        created=datetime.now(timezone.utc).isoformat()))


def _pinned_and_tied(cores: list[int] | None, tied: bool):
    def setup():  # runs in the child between fork and exec
        if tied:
            gate.die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)
    return setup


def _tail(text: str, lines: int = 15) -> str:
    # TensorFlow's start-up banner is noise; keep the lines that explain the failure.
    kept = [line for line in (text or "").splitlines() if "oneDNN" not in line and "absl::" not in line]
    return "\n".join(kept[-lines:])


def measure_roofline(results: Path, threads: int | tuple[int, ...]) -> None:
    """The machine's GEMM rates and canary reference, once per results folder, each in a fresh process with the
    runs' threads; with several thread counts, one entry per count (``machines``, as a Ray sweep writes)."""
    path = results / records.ROOFLINE_FILE
    if path.exists():
        return
    counts = (threads,) if isinstance(threads, int) else tuple(threads)
    measured = []
    for count in counts:
        single = path.with_name(f".roofline-{count}.json")
        subprocess.run([sys.executable, "-m", "runners.roofline", "--threads", str(count), "--out", str(single)],
                       capture_output=True, text=True, timeout=300)  # a roofline that failed is simply absent
        if single.exists():
            measured.append(records.read_json(single))
            single.unlink()
    if measured:
        records.write_json_atomic(path, measured[0] if len(measured) == 1 else dict(machines=measured))


def check_schedule(schedule: str, slice_steps: int) -> None:
    if schedule not in RUN_SCHEDULES:
        raise ExecutorError(f"unknown schedule {schedule!r}; choose {' or '.join(RUN_SCHEDULES)}")
    if slice_steps < 1:
        raise ExecutorError(f"--slice-steps must be at least 1, got {slice_steps}")


def describe_schedule(schedule: str, slice_steps: int) -> dict:
    """The manifest's account of how a sweep's runs took the CPU."""
    if schedule == "sequential":
        return dict(schedule="sequential")
    return dict(schedule="interleaved", slice_steps=slice_steps,
                rule="each block (one configuration and seed) alive at once on one machine; each round a random "
                "order of its live columns from numpy default_rng([run_order.seed, crc32(block)]), each column "
                "training slice_steps steps per turn while the others are stopped")


# The plan fields that make a column: the runs of a block differ in these and nothing else.
COLUMN_FIELDS = ("implementation", "variant", "label", "allocator", "flush_denormal")


def block_key(plan: RunPlan) -> str:
    """What the runs of one block share: the plan less its column (``COLUMN_FIELDS``)."""
    shared = {k: v for k, v in plan.to_dict().items() if k not in COLUMN_FIELDS}
    return json.dumps(shared, sort_keys=True, default=str)


def blocks(pending: list[tuple[str, RunPlan]]) -> list[list[tuple[str, RunPlan]]]:
    """The pending runs as blocks (configuration and seed), in the order their first run is planned."""
    grouped: dict[str, list] = {}
    for name, plan in pending:
        grouped.setdefault(block_key(plan), []).append((name, plan))
    return list(grouped.values())


def interleave(folder: Path, block: list[tuple[str, RunPlan]], timeout_s: float, report,
               slice_steps: int = gate.SLICE_STEPS, stop: bool = True, env: dict | None = None,
               cores: list[int] | None = None, *, seed: int) -> None:
    """The runs of one block as live processes taking turns (``runners.harness.gate``); each ends as ``execute``
    ends a run: a record, or ``failed.json``. Its output goes to files, not pipes: no live process may block on a
    full pipe while another holds the CPU. ``env`` adds to this process's environment; ``cores``: the one core set
    every process of the block is pinned to (Ray's placement ``cores``)."""
    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(block_key(block[0][1]).encode())])
    turns, outputs = gate.Turns(slice_steps, timeout_s, stop), {}
    at_once = len(cores) if cores else len(os.sched_getaffinity(0))  # preparing: one busy thread each, mostly
    try:
        for group in (block[i:i + at_once] for i in range(0, len(block), at_once)):
            for name, plan in group:
                run_dir = folder / name
                start_afresh(run_dir, plan)
                report(name, "queued")
                outputs[name] = (run_dir / ".stdout", run_dir / ".stderr")
                with open(outputs[name][0], "w") as stdout, open(outputs[name][1], "w") as stderr:
                    turns.start(name, train_command(run_dir / records.PLAN_FILE, run_dir),
                                {**os.environ, **(env or {}), **policy.preload_environment(plan.allocator)},
                                stdout, stderr,
                                preexec_fn=_pinned_and_tied(cores, True), wait=False)
            for name, _ in group:
                turns.until_ready(turns.children[name])
        turns.run(lambda round_, live: [live[i] for i in rng.permutation(len(live))])
    except BaseException:
        turns.kill_all()
        raise
    for name, plan in block:
        child, run_dir = turns.children[name], folder / name
        stdout, stderr = (gate.tail(path) for path in outputs[name])
        for path in outputs[name]:
            path.unlink(missing_ok=True)
        state = "done" if child.state == "ok" and (run_dir / records.RECORD_FILE).exists() else "failed"
        if state == "failed":
            record_failure(run_dir, plan, child.state or "error", child.active_s, timeout_s,
                           command=child.process.args, returncode=child.process.returncode, stderr=stderr,
                           stdout=stdout)
        report(name, state, child.active_s)


class LocalExecutor:
    """Runs on this machine, each in a fresh process, with nothing else running: one after another
    (``sequential``), or each block's runs alive together taking turns (``interleaved``, ``interleave``)."""

    def __init__(self, schedule: str = DEFAULT_SCHEDULE, slice_steps: int = gate.SLICE_STEPS):
        check_schedule(schedule, slice_steps)
        self.schedule, self.slice_steps = schedule, slice_steps

    def describe(self) -> dict:
        return dict(name="local", **describe_schedule(self.schedule, self.slice_steps))

    def close(self) -> None:
        pass

    def measure_roofline(self, results: Path, threads: int) -> None:
        measure_roofline(results, threads)

    def run(self, folder: Path, pending: list[tuple[str, RunPlan]], timeout_s: float, report, seed: int) -> None:
        if self.schedule == "interleaved":
            for block in blocks(pending):
                interleave(folder, block, timeout_s, report, self.slice_steps, seed=seed)
            return
        for name, plan in pending:
            report(name, "running")
            start = time.perf_counter()
            state = execute(plan, folder / name, timeout_s, tied=True)
            report(name, state, time.perf_counter() - start)
