"""One thread and denormal policy for all four implementations, and probes that it took effect.

Threads: intra-op and inter-op pools both get ``threads``; the OpenMP/MKL/BLAS
variables are set before any numerical library is imported (they are read
once, at load time). TensorFlow's Eigen pools ignore ``OMP_NUM_THREADS``, so
they get their own variables and API calls.

Denormals: TensorFlow flushes denormal floats to zero on the CPU and offers no
switch to stop it; PyTorch does not flush by default, and an LSTM's vanishing
gradients then run through the slow denormal path (13-16x slower training
measured here). Flush-to-zero is therefore on for everyone by default, and
turning it off is only possible where the framework allows it.
"""

from __future__ import annotations

import importlib
import os
import sys

from model import implementations
from model.errors import UserError
from model.frameworks import FRAMEWORKS, THREADED_MODULES

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
FRAMEWORK_MODULES = THREADED_MODULES


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


def set_thread_environment(threads: int, framework: str | None = None) -> None:
    """Must run before torch, tensorflow, jax or numpy is imported."""
    if threads < 1:
        raise PolicyError(f"--threads must be at least 1, got {threads}")
    loaded = [name for name in FRAMEWORK_MODULES if name in sys.modules]
    if loaded:
        raise PolicyError(f"thread variables must be set before importing {', '.join(loaded)}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # oneDNN is TensorFlow's default CPU path on x86; state it so the record is explicit.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # XLA's CPU runtime has no thread-pool size setting (jax-ml/jax issues 743 and 1539): with fewer threads
    # than cores, the process is pinned to that many cores before XLA starts its threads, which inherit it.
    if framework == "jax" and threads < default_threads():
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


def configure_torch(threads: int, flush_denormal: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        torch.set_num_interop_threads(threads)  # allowed once, before any inter-op work
    if not torch.set_flush_denormal(flush_denormal) and flush_denormal:
        raise PolicyError("this CPU does not support flush-to-zero (no SSE3)")


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
    if entry.uses_keras:
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != entry.keras_backend:
            raise implementations.ImplementationError(
                f"keras was already imported with the {loaded.backend.backend()} backend")
        os.environ["KERAS_BACKEND"] = entry.keras_backend
        import keras  # noqa: F401
        return
    for blocked in ("keras", "tf_keras"):
        if sys.modules.get(blocked) is not None:
            raise implementations.ImplementationError(f"{blocked} was imported before the native {name} implementation")
        sys.modules[blocked] = None
    importlib.import_module(entry.framework)


def configure_tensorflow(threads: int, flush_denormal: bool) -> None:
    import tensorflow as tf

    check("tensorflow", flush_denormal)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def configure_jax(threads: int, flush_denormal: bool) -> None:
    """Threads were set by the core pinning in set_thread_environment; XLA flushes denormals on the CPU."""
    check("jax", flush_denormal)


def configure(framework: str, threads: int, flush_denormal: bool) -> None:
    CONFIGURE[framework](threads, flush_denormal)


_TINY, _SCALE = 1e-30, 1e-10  # their product, 1e-40, is a float32 denormal
# Large enough that the framework splits the multiply across its intra-op worker threads (torch's grain
# size is 32,768 elements): flush-to-zero is a per-thread CPU flag, so the main thread alone proves little.
_PARALLEL_ELEMENTS = 1 << 20


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


def probe_jax() -> dict:
    import jax
    import jax.numpy as jnp

    multiply = jax.jit(lambda a, b: a * b)
    main = float(multiply(jnp.float32(_TINY), jnp.float32(_SCALE)))
    parallel = multiply(jnp.full((_PARALLEL_ELEMENTS,), _TINY, jnp.float32), jnp.float32(_SCALE))
    workers = bool((parallel == 0).all())
    cores = len(os.sched_getaffinity(0))
    return dict(intra_op_threads=cores, inter_op_threads=cores, cores_pinned=cores < (os.cpu_count() or 1),
                flush_denormal=main == 0.0 and workers, flush_denormal_main_thread=main == 0.0,
                flush_denormal_worker_threads=workers, devices=[str(d) for d in jax.devices()],
                xla_flags=os.environ.get("XLA_FLAGS"))


def probe(framework: str) -> dict:
    result = PROBE[framework]()
    result["environment"] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    return result


# Per framework of model/frameworks.py: how its threads are set after import, and how the policy is checked.
CONFIGURE = {"torch": configure_torch, "tensorflow": configure_tensorflow, "jax": configure_jax}
PROBE = {"torch": probe_torch, "tensorflow": probe_tensorflow, "jax": probe_jax}
