"""Clocks and memory: per-step wall times, CPU time, resident memory and its high-water mark.

The clock only reads time; ``runners.loop`` decides where it starts and stops
(after pulling each step's result to the host, so that it reads a finished step).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
from memory_profiler import memory_usage


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
    """Median and interquartile range, in milliseconds."""
    if not samples_s:
        return dict(n=0, median=None, q1=None, q3=None, iqr=None, mean=None)
    ms = np.asarray(samples_s) * 1e3
    q1, median, q3 = np.percentile(ms, [25, 50, 75])
    return dict(n=int(ms.size), median=float(median), q1=float(q1), q3=float(q3), iqr=float(q3 - q1),
                mean=float(ms.mean()))


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def measure_peak(function, interval_s: float = 0.05):
    """Run ``function()``; return (its result, memory figures in MB).

    memory-profiler samples RSS every ``interval_s`` from a helper process and
    can miss short spikes; the kernel's high-water mark, reset just before,
    cannot, so both are reported.
    """
    baseline = rss_mb()
    reset = reset_high_water_mark()
    # max_iterations=1: without it memory-profiler calls a function that returns within one interval
    # again, and the result and figures would describe the second call.
    sampled, result = memory_usage((function, (), {}), interval=interval_s, max_usage=True, retval=True,
                                   include_children=False, max_iterations=1)
    peak = high_water_mark_mb() if reset else None
    memory = dict(baseline_ready_mb=baseline, peak_rss_mb=peak,
                  peak_above_baseline_mb=None if peak is None else peak - baseline,
                  peak_sampled_mb=float(sampled), peak_sampled_above_baseline_mb=float(sampled) - baseline,
                  sample_interval_s=interval_s, high_water_mark_reset=reset)
    return result, memory
