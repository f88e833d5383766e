"""The table of implementations: every name the project knows, what runs it, and the variants it accepts.

The CLI's ``--impl``/``--backend`` resolution, the sweep grid, the order of
table columns and the tests all read ``TABLE``. Adding an implementation on a
framework the project has is one entry here plus its class (and its tests);
adding a framework is also one entry in ``model/frameworks.py`` (a test
registers a fake one that way and trains it end to end).
Adding a variant is one entry in ``variants`` plus the keyword its class
accepts. The first allowed value of a variant is its default.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from model.errors import UserError
from model.frameworks import FRAMEWORKS
from model.spec import TF_FASTEST, TF_FORMULATIONS, ModelSpec, TrainSpec


class ImplementationError(UserError):
    """An implementation, backend or variant that cannot run here (reported to users in one line)."""


@dataclass(frozen=True)
class Implementation:
    name: str  # as in records, tables and the sweep grid
    framework: str  # the numerical library that executes it, and whose thread/denormal policy applies
    keras_backend: str | None  # None: native, and Keras is kept out of the process
    builder: str  # "module:Class", imported only when the implementation is created
    variants: dict[str, tuple] = field(default_factory=dict)  # option -> allowed values, default first
    description: str = ""
    settle: Callable[[dict, ModelSpec], dict] | None = None  # cell-dependent defaults and refusals
    patch: str | None = None  # where the framework itself is patched; None: the framework as released
    four_way: bool = True  # one of the four the project compares; the others are extra columns


    @property
    def uses_keras(self) -> bool:
        return self.keras_backend is not None


def _settle_tf(variant: dict, spec: ModelSpec) -> dict:
    if variant["formulation"] == "fastest":
        variant = {**variant, "formulation": TF_FASTEST[spec.cell]}
    if variant["formulation"] == "block" and spec.cell != "lstm":
        raise ImplementationError("the tensorflow formulation block (fused BlockLSTM) exists only for the lstm cell")
    if variant["formulation"] == "block" and variant["precision"] == "bf16":
        raise ImplementationError("the tensorflow formulation block (BlockLSTM) has no bf16 kernel; choose loop or "
                                  "precomputed")
    if variant["jit_compile"] and not variant["graph"]:
        raise ImplementationError("tensorflow: XLA (jit_compile) needs the graph (graph=True)")
    return variant


# Keras' own RNN paths: "generic" (use_cudnn=False, the fastest unpatched path on the CPU) or "auto" (Keras'
# default). "fused" exists only with the keras-torch-fused patch.
# jit_compile: False (measured faster for these RNNs on torch and TensorFlow) or Keras' "auto" (XLA on jax).
# precision: fp32, or bf16 compute with fp32 weights and optimizer state (each class says how its framework
# does it); every implementation takes it, so bf16 is a variant column beside each default.
PRECISIONS = ("fp32", "bf16")
_KERAS_VARIANTS = {"rnn_path": ("generic", "auto"), "jit_compile": (False, "auto", True), "precision": PRECISIONS}
TABLE = {impl.name: impl for impl in (
    Implementation("keras-torch", "torch", "torch", "model.keras_model:KerasImplementation", _KERAS_VARIANTS,
                   "the one Keras 3 model definition on KERAS_BACKEND=torch"),
    Implementation("keras-tensorflow", "tensorflow", "tensorflow", "model.keras_model:KerasImplementation",
                   _KERAS_VARIANTS, "the same definition, unchanged, on KERAS_BACKEND=tensorflow"),
    Implementation("torch", "torch", None, "model.torch_model:TorchImplementation",
                   {"compile": (False, True), "precision": PRECISIONS},
                   "native PyTorch: torch.nn + a plain training loop"),
    Implementation("tensorflow", "tensorflow", None, "model.tf_model:TensorFlowImplementation",
                   {"formulation": ("fastest", *TF_FORMULATIONS), "jit_compile": (False, True), "graph": (True, False),
                    "precision": PRECISIONS},
                   "native TensorFlow: tf.Module + tf.function + GradientTape", _settle_tf),
    Implementation("keras-jax", "jax", "jax", "model.keras_model:KerasImplementation",
                   {"rnn_path": ("generic", "auto"), "jit_compile": ("auto", False, True), "precision": PRECISIONS},
                   "the same definition, unchanged, on KERAS_BACKEND=jax (Keras' auto jit: the step under XLA)",
                   four_way=False),
    Implementation("keras-torch-fused", "torch", "torch", "model.keras_model:KerasImplementation",
                   {"rnn_path": ("fused",), "jit_compile": (False,), "precision": PRECISIONS},
                   "keras-torch with Keras' CUDA-only fused "
                   "LSTM/GRU path opened to CPU tensors (SimpleRNN keeps the generic loop)",
                   patch="model/keras_fused.py", four_way=False),
)}
NAMES = tuple(TABLE)
FOUR_WAY = tuple(name for name, entry in TABLE.items() if entry.four_way)
KERAS_BACKENDS = tuple(impl.keras_backend for impl in TABLE.values() if impl.uses_keras)


def get(name: str) -> Implementation:
    if name not in TABLE:
        raise ImplementationError(f"unknown implementation {name!r}; choose one of {', '.join(NAMES)}")
    return TABLE[name]


def resolve(impl: str, backend: str | None = None) -> str:
    """The table name for the CLI's ``--impl`` (+ ``--backend`` or ``$KERAS_BACKEND`` for ``keras``)."""
    if impl in TABLE:
        return impl
    if impl != "keras":
        natives = [name for name, entry in TABLE.items() if not entry.uses_keras]
        raise ImplementationError(f"unknown implementation {impl!r}; choose keras, {', '.join(natives)} "
                                  f"or one of {', '.join(NAMES)}")
    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    for entry in TABLE.values():
        if entry.keras_backend == backend and entry.patch is None:
            return entry.name
    raise ImplementationError(f"unknown or unsupported Keras backend {backend!r}; "
                              f"choose one of {', '.join(KERAS_BACKENDS)}")


def resolve_variant(name: str, given: dict, spec: ModelSpec) -> dict:
    """The full, concrete variant of a run: defaults filled in, every value checked before any framework loads."""
    entry = get(name)
    unknown = set(given) - set(entry.variants)
    if unknown:
        accepted = ", ".join(entry.variants) or "no variants"
        raise ImplementationError(f"{name} does not take {', '.join(sorted(unknown))} (it takes {accepted})")
    if name == "keras-jax" and spec.ngram_buckets and spec.vocab_size ** spec.ngram_order >= 2 ** 31:
        # JAX computes in int32 unless its 64-bit mode is on: the n-gram ids would wrap to other rows, silently.
        raise ImplementationError(f"keras-jax computes n-gram ids in int32: vocab_size ** ngram_order must stay below "
                                  f"2**31 (got {spec.vocab_size} ** {spec.ngram_order})")
    variant = {}
    for option, allowed in entry.variants.items():
        value = given.get(option, allowed[0])
        if value not in allowed:
            raise ImplementationError(f"unknown {option} {value!r} for {name}; "
                                      f"choose one of {', '.join(map(str, allowed))}")
        variant[option] = value
    return entry.settle(variant, spec) if entry.settle else variant


class Column(NamedTuple):
    """A column of the tables: an implementation and the options that set it apart from its defaults, labelled
    ``tensorflow[graph=False]`` (a run's own allocator or label count as options: ``torch[label=b]``)."""

    implementation: str
    options: tuple[tuple[str, object], ...] = ()

    @property
    def label(self) -> str:
        return self.implementation + "".join(f"[{option}={value}]" for option, value in self.options)

    @classmethod
    def parse(cls, label: str) -> Column:
        """The column a label names; option values come back as the strings the label shows."""
        implementation = label.partition("[")[0]
        return cls(implementation, tuple(re.findall(r"\[([^=\]]+)=([^\]]*)\]", label[len(implementation):])))

    def with_option(self, option: str, value) -> Column:
        return self._replace(options=self.options + ((option, value),))

    def without(self, option: str) -> Column:
        return self._replace(options=tuple(pair for pair in self.options if pair[0] != option))


def column(name: str, variant: dict, spec: ModelSpec) -> Column:
    """A run's column: the implementation, plus every variant option it sets away from the default."""
    defaults = resolve_variant(name, {}, spec)
    return Column(name, tuple((option, value) for option, value in variant.items()
                              if defaults.get(option, value) != value))


def base_name(label: str) -> str:
    """The implementation of a column label (``tensorflow[graph=False]`` -> ``tensorflow``)."""
    return Column.parse(label).implementation


def native_of(name: str) -> str | None:
    """The native implementation on the same framework as a Keras one (keras-torch -> torch), else None."""
    entry = get(name)
    natives = [other.name for other in TABLE.values() if not other.uses_keras and other.framework == entry.framework]
    return natives[0] if entry.uses_keras and natives else None


def check_installed(name: str) -> None:
    entry = get(name)
    needed = [FRAMEWORKS[entry.framework].module] + (["keras"] if entry.uses_keras else [])
    missing = [module for module in needed if importlib.util.find_spec(module) is None]
    if missing:
        raise ImplementationError(f"{name} needs {', '.join(missing)}, which is not installed; run `make install`")


def create(name: str, spec: ModelSpec, train: TrainSpec, weights: list, variant: dict | None = None,
           total_steps: int = 1):
    """Build one implementation from canonical weights, in a process whose framework ``runners.harness.policy.
    import_framework`` loaded. ``total_steps`` (all epochs') is the horizon of the learning-rate schedule."""
    entry = get(name)
    if FRAMEWORKS[entry.framework].module not in sys.modules or (entry.uses_keras and "keras" not in sys.modules):
        raise ImplementationError(f"{name}: import its framework first (runners.harness.policy.import_framework)")
    module, _, cls = entry.builder.partition(":")
    return getattr(importlib.import_module(module), cls)(spec, train, weights, total_steps=total_steps,
                                                         **(variant or {}))
