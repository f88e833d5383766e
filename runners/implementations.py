"""The four implementations by name: which framework each needs and how to build it."""

from __future__ import annotations

import importlib.util
import os
import sys

from model.spec import ModelSpec, TrainSpec

KERAS_BACKENDS = ("torch", "tensorflow")
# The names used in records, tables and the sweep grid.
NAMES = ("keras-torch", "keras-tensorflow", "torch", "tensorflow")


class ImplementationError(RuntimeError):
    """An implementation or backend that cannot run here (reported to users in one line)."""


def resolve(impl: str, backend: str | None = None) -> str:
    """The record name of an implementation: 'keras' + backend becomes keras-<backend>."""
    if impl in NAMES:
        return impl
    if impl != "keras":
        raise ImplementationError(f"unknown implementation {impl!r}; choose keras, torch or tensorflow")
    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in KERAS_BACKENDS:
        raise ImplementationError(f"unknown or unsupported Keras backend {backend!r}; "
                                  f"choose one of {', '.join(KERAS_BACKENDS)}")
    return f"keras-{backend}"


def framework_of(name: str) -> str:
    return name.removeprefix("keras-")


def check_installed(name: str) -> None:
    needed = [framework_of(name)] + (["keras"] if name.startswith("keras-") else [])
    missing = [module for module in needed if importlib.util.find_spec(module) is None]
    if missing:
        raise ImplementationError(f"{name} needs {', '.join(missing)}, which is not installed; run `make install`")


def import_framework(name: str) -> None:
    """Load everything the implementation needs (Keras with its backend chosen), so memory baselines include it.

    Native implementations run with Keras kept out of the process: TensorFlow
    2.21 imports ``keras.src.optimizers`` on its own whenever Keras is installed,
    which would put Keras' code and memory into "native" TensorFlow. A ``None``
    entry in ``sys.modules`` makes any import of it fail, which TensorFlow
    tolerates, and proves that nothing in the native path needs Keras.
    """
    if name.startswith("keras-"):
        os.environ["KERAS_BACKEND"] = framework_of(name)
        import keras  # noqa: F401
        return
    for blocked in ("keras", "tf_keras"):
        if blocked in sys.modules and sys.modules[blocked] is not None:
            raise ImplementationError(f"{blocked} was imported before the native {name} implementation")
        sys.modules[blocked] = None
    importlib.import_module(framework_of(name))


def create(name: str, spec: ModelSpec, train: TrainSpec, weights: list, variant: dict | None = None):
    """Build one implementation; KERAS_BACKEND is set here, before Keras is first imported."""
    variant = variant or {}
    if name.startswith("keras-"):
        os.environ["KERAS_BACKEND"] = framework_of(name)
        from model.keras_model import KerasImplementation

        return KerasImplementation(spec, train, weights, **variant)
    if name == "torch":
        from model.torch_model import TorchImplementation

        return TorchImplementation(spec, train, weights, **variant)
    from model.tf_model import TensorFlowImplementation

    return TensorFlowImplementation(spec, train, weights, **variant)
