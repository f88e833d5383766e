"""Interleaved execution: the runs of one block alive at once, taking turns a slice of steps at a time.

A block is the columns of one configuration and seed. Each column is the usual ``runners.train --plan`` process
writing the usual record; a ``Turns`` in the sweep's process starts them, as many preparing at once as the
sweep has cores (preparation, imports to model build, is nothing the analysis times, and mostly one thread), each
stopped once prepared, then hands the CPU to one process at a time for ``slice_steps`` training steps, in a fresh
random column order every round. A slow period of the VM then lands on every column of a round alike instead of
on whichever run happened to be running, and the analysis compares columns round by round
(``analysis.inference.paired_ratio``).

The handshake is a pipe each way (``GATE_VARIABLE`` names the child's ends). A child that finished its slice writes
``ready`` and blocks reading its next turn (``<round> <position> <steps>``); it keeps that wait off its training
clocks, as it does validation. The sweep then stops the child's whole process group (SIGSTOP): an OpenMP or Eigen
pool spinning after its last task, and memory-profiler's sampler, are frozen with it, so a waiting process uses no
CPU at all (the record's ``gate.wait_cpu_s`` shows it). A child that ends its training does not hand back: it holds
the CPU through inference and exits, and the next turn goes to the others.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from runners.harness.measure import cpu_seconds, machine_cpu_seconds

# "<fd to read turns from>,<fd to write ready to>,<block>", set by Turns for its children; the block names one
# Turns, so that the analysis pairs a run only with the runs it took turns with (not with a re-run of its seed)
GATE_VARIABLE = "RNNBENCH_GATE"
# Training steps per turn. One step: the finest pairing in time. A step right after a wait costs 2-6% more than the
# turn's later ones (Zen 3, four steps a turn), and with one step a turn every timed step is such a step; but held
# against each column trained alone (Zen 4, quick's LSTM: docs/methodology.md), one step a turn and four with the
# first left out (records.round_medians) read the same ratios, each inside the alone interval.
SLICE_STEPS = 1
READY = b"ready\n"


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the thread that forked it ends (a stopped process too): a run
    must not outlive its sweep, whether Ctrl-C, a closed terminal or an out-of-memory kill ended it."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def tie_forks() -> None:
    """In a run: every process it forks from now on dies with it. memory-profiler samples from a forked process,
    in the run's process group, so stopped with it between turns; a run killed with its sweep left that sampler
    behind, stopped for good, holding its memory."""
    global _forks_tied
    if not _forks_tied:
        os.register_at_fork(after_in_child=die_with_parent)
        _forks_tied = True


_forks_tied = False


class Gate:
    """The child's side: ``wait()`` at every step boundary; it returns at once until the slice is used up."""

    def __init__(self, read_fd: int, write_fd: int, block: str):
        self._read, self._write, self.block = os.fdopen(read_fd, "rb", buffering=0), write_fd, block
        self.round, self.position, self._left = -1, -1, 0
        self.slices: list[list[int]] = []  # [round, position, steps trained] per turn
        self.wait_wall_s = self.wait_cpu_s = 0.0
        self.waits = 0
        # The machine's busy and stolen seconds while this run waited: the other columns' turns, which are not
        # load on this run (``session.train`` takes them out of its quietness).
        self.machine_waiting = dict(busy_s=0.0, steal_s=0.0)

    @classmethod
    def from_environment(cls) -> Gate | None:
        value = os.environ.get(GATE_VARIABLE)
        if not value:
            return None
        read_fd, write_fd, block = value.split(",")
        return cls(int(read_fd), int(write_fd), block)

    def due(self) -> bool:
        return self._left <= 0

    def wait(self) -> None:
        """Hand the CPU back and block until the next turn (the caller keeps this off its clocks)."""
        wall, cpu, machine = time.perf_counter(), cpu_seconds(), machine_cpu_seconds()
        os.write(self._write, READY)
        line = self._read.readline()
        if not line:
            raise RuntimeError("the sweep that interleaves this run is gone")
        self.round, self.position, self._left = (int(v) for v in line.split())
        self.slices.append([self.round, self.position, 0])
        self.waits += 1
        self.wait_wall_s += time.perf_counter() - wall
        self.wait_cpu_s += cpu_seconds() - cpu
        after = machine_cpu_seconds()
        if machine and after:
            for key in self.machine_waiting:
                self.machine_waiting[key] += after[key] - machine[key]

    def stepped(self) -> int:
        """Count one training step of this turn; returns the round it belongs to."""
        self._left -= 1
        self.slices[-1][2] += 1
        return self.round

    def to_record(self) -> dict:
        return dict(schedule="interleaved", block=self.block, slices=self.slices, waits=self.waits,
                    wait_wall_s=self.wait_wall_s, wait_cpu_s=self.wait_cpu_s, machine_waiting=self.machine_waiting,
                    wait_cpu_per_wall=self.wait_cpu_s / self.wait_wall_s if self.wait_wall_s else None)


@dataclass
class _Child:
    name: str
    process: subprocess.Popen
    turns: int  # the fd the sweep writes turns to
    ready: int  # the fd the sweep reads ready from
    active_s: float = 0.0  # wall time this child held the CPU
    state: str | None = None  # set once it has ended: ok, error, timeout
    started: float = 0.0  # perf_counter at its start


@dataclass
class Turns:
    """The sweep's side for one block: ``start(name, command, env, stdout, stderr)`` each column (one after
    another, each up to its first step), then ``run(order)`` hands out turns until every child has ended."""

    slice_steps: int = SLICE_STEPS
    timeout_s: float = 600.0  # per child, of its own active time
    stop: bool = True  # SIGSTOP a waiting child's process group (False: leave it blocked on the pipe, to measure)
    block: str = ""
    children: dict[str, _Child] = field(default_factory=dict)

    def __post_init__(self):
        self.block = self.block or f"{os.getpid()}-{time.time_ns()}"

    def start(self, name: str, command: list[str], env: dict, stdout, stderr, preexec_fn=None,
              wait: bool = True) -> _Child:
        """Start a column; with ``wait``, return once it is prepared (else ``until_ready`` waits for it)."""
        turn_read, turn_write = os.pipe()
        ready_read, ready_write = os.pipe()
        env = {**env, GATE_VARIABLE: f"{turn_read},{ready_write},{self.block}"}
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, start_new_session=True,
                                   pass_fds=(turn_read, ready_write), preexec_fn=preexec_fn)
        os.close(turn_read)
        os.close(ready_write)
        child = self.children[name] = _Child(name, process, turn_write, ready_read, started=time.perf_counter())
        if wait:
            self.until_ready(child)
        return child

    def until_ready(self, child: _Child) -> None:
        """Its preparation (imports, data, model) done, it is stopped until its first turn."""
        self._until_ready(child, child.started)

    def run(self, order) -> None:
        """Rounds until every child ended; ``order(round, names)`` gives the round's order of the live names."""
        round_ = 0
        while live := [name for name, child in self.children.items() if child.state is None]:
            for position, name in enumerate(order(round_, live)):
                self._turn(self.children[name], round_, position)
            round_ += 1

    def _turn(self, child: _Child, round_: int, position: int) -> None:
        self._signal(child, signal.SIGCONT)
        start = time.perf_counter()
        try:
            os.write(child.turns, f"{round_} {position} {self.slice_steps}\n".encode())
        except BrokenPipeError:
            pass  # it died while waiting: _until_ready sees the end
        self._until_ready(child, start)

    def _until_ready(self, child: _Child, start: float) -> None:
        """Wait for the child's ready (then stop it) or its end; kill it past its timeout."""
        buffer = b""
        while True:
            left = self.timeout_s - child.active_s - (time.perf_counter() - start)
            if left <= 0:
                self._kill(child)
                child.state = "timeout"
                break
            readable, _, _ = select.select([child.ready], [], [], min(left, 1.0))
            if not readable:
                continue
            chunk = os.read(child.ready, len(READY))
            if not chunk:  # it closed its end: it ended (or is ending) without handing back
                self._finish(child, start)
                break
            buffer += chunk
            if buffer.endswith(READY):
                if self.stop:
                    self._signal(child, signal.SIGSTOP)
                break
        child.active_s += time.perf_counter() - start

    def _finish(self, child: _Child, start: float) -> None:
        left = max(1.0, self.timeout_s - child.active_s - (time.perf_counter() - start))
        try:
            child.process.wait(timeout=left)
            child.state = "ok" if child.process.returncode == 0 else "error"
        except subprocess.TimeoutExpired:
            self._kill(child)
            child.state = "timeout"
        self._close(child)

    def _signal(self, child: _Child, sig: int) -> None:
        try:
            os.killpg(child.process.pid, sig)
        except ProcessLookupError:
            pass

    def _kill(self, child: _Child) -> None:
        self._signal(child, signal.SIGKILL)
        self._signal(child, signal.SIGCONT)
        child.process.wait()
        self._close(child)

    def _close(self, child: _Child) -> None:
        for fd in (child.turns, child.ready):
            try:
                os.close(fd)
            except OSError:
                pass

    def kill_all(self) -> None:
        for child in self.children.values():
            if child.process.poll() is None:
                self._kill(child)


def tail(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
