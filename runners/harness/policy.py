"""One thread and denormal policy for every implementation, applied through the framework table
(``model/frameworks.py``), and probes that it took effect.

Threads: intra-op and inter-op pools both get ``threads``; the OpenMP/MKL/BLAS
variables are set before any numerical library is imported (they are read
once, at load time), then each framework's own calls run after its import.

Denormals: TensorFlow flushes denormal floats to zero on the CPU and offers no
switch to stop it; PyTorch does not flush by default, and an LSTM's vanishing
gradients then run through the slow denormal path (docs/findings.md).
Flush-to-zero is therefore on for everyone by default, and
turning it off is only possible where the framework allows it.

Allocator: glibc's malloc serves a large block by mmap and returns it to the
operating system when it is freed (and trims its heap's top likewise), so a
framework that frees its per-step buffers faults their pages in again at the
next step: native torch's 64-unit LSTM step, about 7,400 minor faults, 29 MB
zeroed by the kernel (docs/findings.md). ``retain`` keeps freed memory in the
process, the same for every implementation (``mallopt``, before any framework
loads), and is the default; ``glibc`` leaves the defaults. ``jemalloc`` and ``tcmalloc`` replace glibc's malloc
by ``LD_PRELOAD``, as PyTorch's CPU performance guide recommends (``preload``: the process starts again with the
library preloaded, since malloc cannot be replaced in a running process). The record keeps the minor faults per
training step (``cpu.minor_faults_per_step``).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import resource
import sys
import time

from model import implementations
from model.errors import UserError
from model.frameworks import FRAMEWORKS, quiet_start_up, threaded_modules

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


class PolicyError(UserError):
    """The requested policy cannot be applied (reported to users in one line)."""


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_threads(threads: int | None) -> None:
    """A thread count the user asked for: at least 1 and at most the usable cores (more oversubscribes the
    cores, and torch's OpenMP pools then run many times slower: it would change every figure)."""
    if threads is None:
        return
    if threads < 1:
        raise PolicyError(f"--threads must be at least 1, got {threads}")
    if threads > default_threads():
        raise PolicyError(f"--threads {threads} is more than the {default_threads()} usable cores here; "
                          "oversubscribed cores change every measurement")


# CPU flags (/proc/cpuinfo) of an x86 CPU that computes in bf16 natively: AVX512_BF16 (Zen 4, Cooper Lake
# and later Xeons) or AMX (Sapphire Rapids and later). Without them the frameworks convert in software.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    from runners.harness.environment import cpu_info

    return any(cpu_info()["flags"].get(flag) for flag in BF16_FLAGS)


def check_precision(variant: dict, emulate: bool = False) -> None:
    """bf16 only where the CPU has bf16 instructions, unless asked to emulate (its timings then measure the
    software conversion, and the record says so)."""
    if variant.get("precision") == "bf16" and not emulate:
        if not cpu_has_bf16():
            raise PolicyError(f"precision bf16 needs a CPU with bf16 instructions ({' or '.join(BF16_FLAGS)}), "
                              "which this one lacks; --emulate-bf16 runs it in software anyway")


def set_thread_environment(threads: int, framework: str | None = None) -> None:
    """Must run before torch, tensorflow, jax or numpy is imported."""
    if threads < 1:
        raise PolicyError(f"--threads must be at least 1, got {threads}")
    loaded = [name for name in threaded_modules() if name in sys.modules]
    if loaded:
        raise PolicyError(f"thread variables must be set before importing {', '.join(loaded)}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # oneDNN is TensorFlow's default CPU path on x86; state it so the record is explicit.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    # A framework without a thread-pool setting gets its threads as cores: the process is pinned to that many
    # before the framework starts its threads, which inherit the pinning.
    if framework is not None and FRAMEWORKS[framework].threads_by_affinity and threads < default_threads():
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
NEVER_TRIM = 2**31 - 1  # mallopt takes an int: 2 GiB of free heap top before any is returned


# The allocators that replace glibc's malloc: the library LD_PRELOAD names (found where the dynamic loader looks), and
# the Debian package that installs it.
PRELOADED = {"jemalloc": ("libjemalloc.so.2", "libjemalloc2"), "tcmalloc": ("libtcmalloc_minimal.so.4",
                                                                               "libtcmalloc-minimal4")}
# Set beside the library, as torch's own CPU launcher does (torch/backends/xeon/run_cpu.py, torch 2.13), unless the
# environment sets its own. Measured here (jemalloc 5.3): under it, as under jemalloc's defaults, a freed block of
# 8 MB or more is returned and faulted in again at its next use, as glibc's defaults do; only with the decay off
# (dirty_decay_ms:-1) are its pages reused.
MALLOC_CONF = {"jemalloc": "oversize_threshold:1,background_thread:true,metadata_thp:auto"}


def preload_environment(allocator: str) -> dict:
    """The variables a process starts with to run under a preloaded allocator (none for glibc's own): a sweep
    starts its runs with them, so that only a run started by hand restarts itself (``preload``)."""
    if allocator not in PRELOADED:
        return {}
    variables = {"LD_PRELOAD": " ".join([PRELOADED[allocator][0], *os.environ.get("LD_PRELOAD", "").split()])}
    if allocator in MALLOC_CONF:
        variables["MALLOC_CONF"] = os.environ.get("MALLOC_CONF", MALLOC_CONF[allocator])
    return variables


# Set across the restart that preloads an allocator: "<wall time>,<CPU seconds>" at the exec, so that the run's
# start-up is measured from there (the first interpreter's is the preload's cost, not the framework's).
RESTARTED_VARIABLE = "RNNBENCH_RESTARTED_AT"


def _mapped(library: str) -> bool:
    """Whether this process has ``library`` loaded: /proc/self/maps names the file the soname resolved to
    (libtcmalloc_minimal.so.4 -> libtcmalloc_minimal.so.4.5.9)."""
    with open("/proc/self/maps") as maps:
        return any(os.path.basename(line.split()[-1]).startswith(library) for line in maps if "/" in line)


def process_start() -> tuple[float, float]:
    """When this run's process started (wall time) and the CPU seconds it had spent by then: the restart that
    preloaded its allocator where there was one, else the process's creation."""
    restarted = os.environ.get(RESTARTED_VARIABLE)
    if restarted:
        wall, cpu = map(float, restarted.split(","))
        return wall, cpu
    import psutil

    return psutil.Process().create_time(), 0.0


def check_allocator(allocator: str) -> None:
    """Refuse, in one line, an allocator whose library is not installed."""
    if allocator not in PRELOADED:
        return
    import ctypes.util

    library, package = PRELOADED[allocator]
    if ctypes.util.find_library(library.removeprefix("lib").split(".so")[0]) is None:  # the name -l takes
        raise PolicyError(f"--allocator {allocator} needs {library}, which is not installed "
                          f"(Debian, Ubuntu: apt-get install {package})")


def preload(allocator: str) -> None:
    """Start this run's process again, same command, with the allocator's library preloaded, unless it is loaded
    already (a no-op for glibc's own allocators). Call before any framework or thread starts."""
    if allocator not in PRELOADED or _mapped(PRELOADED[allocator][0]):
        return
    check_allocator(allocator)
    library = PRELOADED[allocator][0]
    main = getattr(sys.modules["__main__"], "__spec__", None)
    if library in os.environ.get("LD_PRELOAD", "").split() or main is None or main.name != "runners.train":
        raise PolicyError(f"--allocator {allocator}: {library} is not loaded; start the process with "
                          f"LD_PRELOAD={library}")
    sys.stdout.flush()
    sys.stderr.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]],
              dict(os.environ, **preload_environment(allocator),
                   **{RESTARTED_VARIABLE: f"{time.time()},{usage.ru_utime + usage.ru_stime}"}))


def set_allocator(allocator: str) -> dict:
    """``retain``: no block gets a mapping of its own (glibc 2.36 maps blocks of 32 MiB and more even with its mmap
    threshold at the maximum: raising the threshold alone left native torch's 7,400 faults a step) and the heap is
    not trimmed, so freed memory is reused instead of faulted in again. Returns what the record keeps."""
    if allocator == "glibc":
        return dict(allocator="glibc")
    if allocator in PRELOADED:
        library = PRELOADED[allocator][0]
        if not _mapped(library):
            raise PolicyError(f"--allocator {allocator}: {library} is not loaded (runners.harness.policy.preload "
                              "starts the run with it)")
        return dict(allocator=allocator, library=library, **({"malloc_conf": os.environ.get("MALLOC_CONF")}
                                                             if allocator in MALLOC_CONF else {}))
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        raise PolicyError("--allocator retain needs glibc's mallopt, which this C library lacks") from None
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)):
        raise PolicyError("glibc refused the retain allocator settings (mallopt)")
    return dict(allocator="retain", mmap_max=0, trim_threshold=NEVER_TRIM)


def minor_faults() -> int:
    """Page faults served without I/O so far in this process (the allocator's cost shows here)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def check(framework: str, flush_denormal: bool) -> None:
    """Refuse, before any framework loads, a policy the framework cannot follow."""
    if FRAMEWORKS[framework].always_flushes_denormals and not flush_denormal:
        keeps = ", ".join(f.name for f in FRAMEWORKS.values() if not f.always_flushes_denormals)
        raise PolicyError(f"{FRAMEWORKS[framework].display} always flushes denormals to zero on the CPU; "
                          f"--no-flush-denormal is only possible with implementations on {keeps}")


def import_framework(name: str) -> None:
    """Load everything the implementation needs (Keras with its backend chosen), so memory baselines include it.

    This is the one place ``KERAS_BACKEND`` is set: Keras reads it once, at its
    first import. Native implementations run with Keras kept out of the
    process: TensorFlow 2.21 imports ``keras.src.optimizers`` on its own
    whenever Keras is installed, which would put Keras' code and memory into
    "native" TensorFlow. A ``None`` entry in ``sys.modules`` makes any import
    of it fail, which TensorFlow tolerates, and proves that nothing in the
    native path needs Keras.
    """
    entry = implementations.get(name)
    if entry.framework != "jax" and "jax" not in sys.modules:
        # TensorFlow's TFLite helpers import jax whenever it is installed (tensorflow/lite/python/util.py,
        # ``from jax import jit``, for nothing this project calls): 1.2 s and jax's memory in every process that
        # imports TensorFlow, Keras on torch included (its array adapter imports TensorFlow). They tolerate its
        # absence.
        sys.modules["jax"] = None
    if entry.uses_keras:
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != entry.keras_backend:
            raise implementations.ImplementationError(
                f"keras was already imported with the {loaded.backend.backend()} backend")
        os.environ["KERAS_BACKEND"] = entry.keras_backend
        quiet_start_up()
        import keras  # noqa: F401
        return
    for blocked in ("keras", "tf_keras"):
        if sys.modules.get(blocked) is not None:
            raise implementations.ImplementationError(f"{blocked} was imported before the native {name} implementation")
        sys.modules[blocked] = None
    quiet_start_up()
    importlib.import_module(FRAMEWORKS[entry.framework].module)


def configure(framework: str, threads: int, flush_denormal: bool) -> None:
    """After the import: the framework's own thread calls and flush-to-zero switch (model/frameworks.py)."""
    check(framework, flush_denormal)
    FRAMEWORKS[framework].configure(threads, flush_denormal)


def probe(framework: str) -> dict:
    result = FRAMEWORKS[framework].probe()
    result["environment"] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    return result
