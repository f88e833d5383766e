"""The numerical frameworks under test, one entry each: everything the project needs to know about one.

The implementation table (``model/implementations.py``) names each implementation's framework; this table says
what a framework is: the module to import, the package whose version enters a record's identity, whether it can
run without flushing denormals to zero, how its threads are set once it is imported, how the policy is probed
(on the main thread and on its worker threads), and how it is seeded. ``runners/harness/policy.py`` applies the policy
through these entries. Adding a framework: one entry here with its three functions, then its implementation
class and entry (``tests/test_units.py`` registers a fake framework that way and trains it end to end).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from model.errors import UserError


class FrameworkError(UserError):
    """The policy cannot be applied by this framework here (reported to users in one line)."""


_TINY, _SCALE = 1e-30, 1e-10  # their product, 1e-40, is a float32 denormal
# Large enough that the framework splits the multiply across its intra-op worker threads (torch's grain
# size is 32,768 elements): flush-to-zero is a per-thread CPU flag, so the main thread alone proves little.
_PARALLEL_ELEMENTS = 1 << 20


def configure_torch(threads: int, flush_denormal: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        torch.set_num_interop_threads(threads)  # allowed once, before any inter-op work
    if not torch.set_flush_denormal(flush_denormal) and flush_denormal:
        raise FrameworkError("this CPU does not support flush-to-zero (no SSE3)")


def probe_torch() -> dict:
    """What torch really does now: thread pools and whether denormal results are flushed, on every thread."""
    import torch

    product = (torch.tensor([_TINY]) * torch.tensor([_SCALE])).item()
    parallel = torch.full((_PARALLEL_ELEMENTS,), _TINY) * _SCALE
    backend = next((line.split(":", 1)[1].strip() for line in torch.__config__.parallel_info().splitlines()
                    if line.startswith("ATen parallel backend")), None)
    return dict(intra_op_threads=torch.get_num_threads(), inter_op_threads=torch.get_num_interop_threads(),
                flush_denormal=product == 0.0 and bool((parallel == 0).all()),
                flush_denormal_main_thread=product == 0.0,
                flush_denormal_worker_threads=bool((parallel == 0).all()), parallel_backend=backend)


def seed_torch(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def configure_tensorflow(threads: int, flush_denormal: bool) -> None:
    """TensorFlow's Eigen pools ignore ``OMP_NUM_THREADS``: they get their own variables and these calls."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def probe_tensorflow() -> dict:
    import tensorflow as tf

    eager = float((tf.constant([_TINY]) * tf.constant([_SCALE]))[0])
    multiply = tf.function(lambda a, b: a * b)
    graph = float(multiply(tf.constant([_TINY]), tf.constant([_SCALE]))[0])
    parallel = multiply(tf.fill([_PARALLEL_ELEMENTS], _TINY), tf.constant(_SCALE))
    workers = bool(tf.reduce_all(parallel == 0.0))
    return dict(intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
                flush_denormal=eager == 0.0 and graph == 0.0 and workers,
                flush_denormal_main_thread=eager == 0.0, flush_denormal_worker_threads=workers and graph == 0.0,
                onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS"))


def seed_tensorflow(seed: int) -> None:
    import tensorflow as tf

    tf.random.set_seed(seed)


def configure_jax(threads: int, flush_denormal: bool) -> None:
    """Threads were set by pinning the process to cores before import (``threads_by_affinity``)."""


def probe_jax() -> dict:
    import jax
    import jax.numpy as jnp

    multiply = jax.jit(lambda a, b: a * b)
    main = float(multiply(jnp.float32(_TINY), jnp.float32(_SCALE)))
    parallel = multiply(jnp.full((_PARALLEL_ELEMENTS,), _TINY, jnp.float32), jnp.float32(_SCALE))
    workers = bool((parallel == 0).all())
    cores = len(os.sched_getaffinity(0))
    # XLA reports no pool size: the figures are the cores the process may run on (its affinity).
    return dict(intra_op_threads=cores, inter_op_threads=cores, threads_from="affinity",
                cores_pinned=cores < (os.cpu_count() or 1), flush_denormal=main == 0.0 and workers,
                flush_denormal_main_thread=main == 0.0, flush_denormal_worker_threads=workers,
                devices=[str(d) for d in jax.devices()], xla_flags=os.environ.get("XLA_FLAGS"))


def seed_jax(seed: int) -> None:
    """jax has no global generator: Keras' jax backend seeds its generators from Python's random."""


@dataclass(frozen=True)
class Framework:
    name: str  # as the implementation table's ``framework`` says it
    module: str  # what ``import`` loads
    package: str  # the distribution whose version identifies a record (tensorflow-cpu: the pinned wheel)
    display: str  # in messages
    always_flushes_denormals: bool  # no switch to keep denormals on the CPU
    configure: Callable[[int, bool], None]  # (threads, flush_denormal), after import
    probe: Callable[[], dict]  # thread pools and flush-to-zero as they are now
    seed: Callable[[int], None]  # its global generator, beside Python's and NumPy's
    # No thread-pool setting (XLA's CPU runtime: jax-ml/jax issues 743 and 1539): fewer threads than cores
    # are had by pinning the process to that many cores before the framework starts its threads.
    threads_by_affinity: bool = False


FRAMEWORKS = {framework.name: framework for framework in (
    Framework("torch", "torch", "torch", "PyTorch", always_flushes_denormals=False,
              configure=configure_torch, probe=probe_torch, seed=seed_torch),
    Framework("tensorflow", "tensorflow", "tensorflow-cpu", "TensorFlow", always_flushes_denormals=True,
              configure=configure_tensorflow, probe=probe_tensorflow, seed=seed_tensorflow),
    Framework("jax", "jax", "jax", "XLA (jax)", always_flushes_denormals=True,
              configure=configure_jax, probe=probe_jax, seed=seed_jax, threads_by_affinity=True),
)}


# The frameworks' start-up chatter, unless --verbose: a command shows its own output, and a run's record keeps the
# versions and settings these lines announce. TF_CPP_MIN_LOG_LEVEL 2 drops TensorFlow's C++ INFO and WARNING
# lines (cpu_feature_guard's among them) and keeps its errors; a value the user set stays as set.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# What TensorFlow 2.21 writes through absl as it loads, past TF_CPP_MIN_LOG_LEVEL: absl's notice that nobody
# initialised it, and oneDNN's notice (the thread policy turns oneDNN on). Filtered from standard error by line.
START_UP_LINES = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")
# --verbose, passed on through the environment to the runs a sweep starts.
VERBOSE_VARIABLE = "RNNBENCH_VERBOSE"
# Ctrl-C is the command's to report (model/errors.py): the filter outlives it to pass the message on.
_LINE_FILTER = """import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
marks = [mark.encode() for mark in sys.argv[1:]]
for line in sys.stdin.buffer:
    if not any(mark in line for mark in marks):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def set_start_up_output(verbose: bool) -> None:
    """A command's choice, before any framework loads: quiet unless ``verbose`` (passed on to the processes it
    starts) or started verbose. Only commands choose: a Python user of the harness keeps the process as it is."""
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    _start_up["quiet"] = os.environ.get(VERBOSE_VARIABLE) != "1"


def quiet_start_up() -> None:
    """Before a framework's first import, where a command chose quiet: the quiet environment, and from then on
    standard error through a filter that drops ``START_UP_LINES``. For the whole process, not the import alone:
    Keras on torch or jax imports TensorFlow in the middle of training (its array adapter). The filter is a process
    of its own, so every other line reaches the user at once, even when this one crashes; a thread could not drain
    a full pipe while a library's initialiser holds the GIL. Once per process."""
    if not _start_up["quiet"] or _start_up["filter"]:
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    sys.stderr.flush()
    stderr = os.dup(2)
    line_filter = subprocess.Popen([sys.executable, "-c", _LINE_FILTER, *START_UP_LINES], stdin=subprocess.PIPE,
                                   stdout=stderr)
    os.dup2(line_filter.stdin.fileno(), 2)
    _start_up["filter"] = line_filter

    @atexit.register
    def drain():  # the last lines (an error message) before the shell's prompt, not after it
        sys.stderr.flush()
        os.dup2(stderr, 2)
        line_filter.stdin.close()
        try:
            line_filter.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a process this one started still holds the pipe: it ends with it
            pass


_start_up = dict(quiet=False, filter=None)


def identity_packages() -> tuple[str, ...]:
    """The distributions whose versions identify a record: the frameworks under test and Keras on top of them."""
    return (*(framework.package for framework in FRAMEWORKS.values()), "keras")


def threaded_modules() -> tuple[str, ...]:
    """Modules whose thread pools read the thread variables once, when first imported."""
    return (*(framework.module for framework in FRAMEWORKS.values()), "keras", "numpy")
