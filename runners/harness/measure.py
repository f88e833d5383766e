"""Clocks and memory: per-step wall times, CPU time, resident memory and its high-water mark.

The clock only reads time; ``runners.harness.loop`` decides where it starts and stops
(after pulling each step's result to the host, so that it reads a finished step).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

from memory_profiler import memory_usage

from model import records


class StepClock:
    """Wall time of each timed span, in seconds; nothing else."""

    def __init__(self):
        self.samples: list[float] = []
        self._start = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        self.samples.append(time.perf_counter() - self._start)


def summarize_ms(samples_s: list[float]) -> dict:
    """Median and interquartile range of samples in seconds, in milliseconds (the record's summary; the
    analysis recomputes it from the raw samples with the same function)."""
    return records.summarize([s * 1e3 for s in samples_s])


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """This process and its finished children (memory-profiler's sampler): the CPU time the run itself used."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_cpu_seconds() -> dict | None:
    """Busy and stolen CPU seconds of the whole machine since boot, from /proc/stat; None where unavailable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return dict(busy_s=(user + nice + system + irq + softirq) / tick, steal_s=steal / tick)


def quietness(before: dict | None, after: dict | None, own_cpu_s: float, wall_s: float) -> dict:
    """How much of the machine others used while we measured: CPU of other processes and time stolen by the
    hypervisor, in seconds and as fractions of the machine's capacity (wall time x logical CPUs)."""
    if before is None or after is None:
        return dict(other_cpu_s=None, steal_s=None, other_fraction=None, steal_fraction=None)
    capacity = wall_s * (os.cpu_count() or 1)
    other = max(0.0, after["busy_s"] - before["busy_s"] - own_cpu_s)
    steal = after["steal_s"] - before["steal_s"]
    return dict(other_cpu_s=other, steal_s=steal, other_fraction=other / capacity, steal_fraction=steal / capacity,
                wall_s=wall_s, logical_cpus=os.cpu_count())


def rss_mb() -> float:
    """Resident memory now, as memory-profiler reads it."""
    return float(memory_usage(-1, interval=0.01, max_iterations=1)[0])


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def high_water_mark_mb() -> float | None:
    """The kernel's exact peak RSS since start or since the last reset (VmHWM)."""
    return _status_mb("VmHWM")


def reset_high_water_mark() -> bool:
    """Start a fresh peak from the current RSS (Linux ``clear_refs`` 5); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def anonymous_mb() -> float | None:
    """Anonymous resident memory now (RssAnon): what the process allocated, without mapped code and files."""
    return _status_mb("RssAnon")


class _AnonymousPeak:
    """The largest RssAnon seen by a thread reading /proc/self/status every ``interval_s`` (a few microseconds
    a read): the kernel keeps no high-water mark for it, so this one is sampled and can miss a short spike."""

    def __init__(self, interval_s: float):
        self.interval_s, self.peak, self._stop = interval_s, anonymous_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = anonymous_mb()
            if now is not None and (self.peak is None or now > self.peak):
                self.peak = now

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        now = anonymous_mb()
        if now is not None and self.peak is not None:
            self.peak = max(self.peak, now)


def measure_peak(function, interval_s: float = 0.05):
    """Run ``function()``; return (its result, memory figures in MB).

    memory-profiler samples RSS every ``interval_s`` from a helper process and
    can miss short spikes; the kernel's high-water mark, reset just before,
    cannot, so both are reported. Beside them, the peak of anonymous memory
    (RssAnon, sampled): the working set the run created, free of the code pages
    and compile caches that move the RSS of TensorFlow and XLA.
    """
    baseline, anonymous_ready = rss_mb(), anonymous_mb()
    reset = reset_high_water_mark()
    # max_iterations=1: without it memory-profiler calls a function that returns within one interval
    # again, and the result and figures would describe the second call.
    with _AnonymousPeak(interval_s * 4) as anonymous:
        sampled, result = memory_usage((function, (), {}), interval=interval_s, max_usage=True, retval=True,
                                       include_children=False, max_iterations=1)
    peak = high_water_mark_mb() if reset else None
    memory = dict(baseline_ready_mb=baseline, peak_rss_mb=peak,
                  peak_above_baseline_mb=None if peak is None else peak - baseline,
                  peak_sampled_mb=float(sampled), peak_sampled_above_baseline_mb=float(sampled) - baseline,
                  anonymous_ready_mb=anonymous_ready, peak_anonymous_mb=anonymous.peak,
                  peak_anonymous_above_ready_mb=None if anonymous.peak is None or anonymous_ready is None
                  else anonymous.peak - anonymous_ready,
                  sample_interval_s=interval_s, high_water_mark_reset=reset)
    return result, memory
