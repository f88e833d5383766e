"""A canary beside every run: a small fixed workload timed before, during and after training.

/proc/stat shows other processes of this VM and the time the hypervisor stole,
not a neighbour on the same physical cores, memory-bandwidth pressure or a
lower clock: those slow the run and the canary alike. The canary is a fixed
float32 matrix product at the run's thread count and a copy far larger than
the caches, each the median of three, about 20 ms in all, timed at the start,
every ``EVERY_S`` seconds of training (off the training clocks, like
validation) and at the end, into the record's ``canary`` section. The
machine's reference is measured beside the roofline (once per sweep, or per
Ray node). It is a diagnostic: measured, it did not track the runs' slowdowns,
and it judges no run (``analysis/noise.py`` gives the figures).
"""

from __future__ import annotations

import time

import numpy as np

GEMM_SIZE, COPY_MB, REPEATS = 256, 32, 3
EVERY_S = 15.0


class Workload:
    """The arrays, made once per process so that each canary times only the work."""

    def __init__(self, threads: int):
        rng = np.random.default_rng(0)
        self.threads = threads
        self.a = rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
        self.b = rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
        self.out = np.empty((GEMM_SIZE, GEMM_SIZE), np.float32)
        self.source = np.ones(COPY_MB * 2**20 // 4, np.float32)
        self.target = np.empty_like(self.source)
        self.once()  # page in the arrays and wake the BLAS threads

    def once(self) -> dict:
        """One canary: milliseconds of the product and of the copy, each the median of ``REPEATS``."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="blas"):
            gemm_ms = _median_ms(lambda: np.matmul(self.a, self.b, out=self.out))
        # a median for the copy too: one 32 MB copy alone varied by a third on a quiet machine
        copy_ms = _median_ms(lambda: np.copyto(self.target, self.source))
        return dict(gemm_ms=gemm_ms, copy_ms=copy_ms, total_ms=gemm_ms + copy_ms)


def _median_ms(work) -> float:
    """Milliseconds of ``work()``, the median of ``REPEATS`` timings."""
    taken = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        work()
        taken.append(time.perf_counter() - start)
    return float(np.median(taken)) * 1e3


def reference(threads: int, samples: int = 7) -> dict:
    """The machine's canary when nothing else runs: the median of ``samples`` canaries, each field."""
    workload = Workload(threads)
    taken = [workload.once() for _ in range(samples)]
    return {key: float(np.median([sample[key] for sample in taken])) for key in taken[0]}


class Canary:
    """The canaries of one run: ``start()`` before training, ``during(train_wall_s)`` after a step where
    ``due(train_wall_s)`` (``every_s`` of training since the last; the caller leaves the time it takes out of
    its clocks), ``end()`` after training."""

    def __init__(self, threads: int, every_s: float = EVERY_S):
        self.workload, self.every_s = Workload(threads), every_s
        self.samples: list[dict] = []
        self.spent_s, self._last = 0.0, 0.0

    def _take(self, phase: str, train_wall_s: float) -> None:
        start = time.perf_counter()
        self.samples.append(dict(self.workload.once(), phase=phase, train_wall_s=train_wall_s, at=time.time()))
        self.spent_s += time.perf_counter() - start

    def start(self) -> None:
        self._take("start", 0.0)

    def due(self, train_wall_s: float) -> bool:
        return train_wall_s - self._last >= self.every_s

    def during(self, train_wall_s: float) -> None:
        self._last = train_wall_s
        self._take("training", train_wall_s)

    def end(self, train_wall_s: float) -> None:
        self._take("end", train_wall_s)

    def to_record(self, train_wall_s: float) -> dict:
        return dict(workload=f"numpy float32 matmul {GEMM_SIZE}^3 (median of {REPEATS}) + {COPY_MB} MB copy",
                    every_s=self.every_s, samples=self.samples, spent_s=self.spent_s,
                    share_of_training=self.spent_s / train_wall_s if train_wall_s else None)
