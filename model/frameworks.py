"""The numerical frameworks under test, one entry each: what the project needs to know about one.

The implementation table (``model/implementations.py``) names each implementation's framework; this table says
what a framework is: the module to import, the package whose version enters a record's identity, and whether it
can run without flushing denormals to zero. Its thread setup and the probes that check the policy took effect
are ``runners/policy.py``'s ``CONFIGURE`` and ``PROBE``, keyed by these names (a test holds them to this table).
Adding a framework: an entry here, its configure and probe functions, its implementation class and entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    name: str  # as the implementation table's ``framework`` says it
    module: str  # what ``import`` loads
    package: str  # the distribution whose version identifies a record (tensorflow-cpu: the pinned wheel)
    display: str  # in messages
    always_flushes_denormals: bool  # no switch to keep denormals on the CPU


FRAMEWORKS = {framework.name: framework for framework in (
    Framework("torch", "torch", "torch", "PyTorch", always_flushes_denormals=False),
    Framework("tensorflow", "tensorflow", "tensorflow-cpu", "TensorFlow", always_flushes_denormals=True),
    Framework("jax", "jax", "jax", "XLA (jax)", always_flushes_denormals=True),
)}
# Keras runs on top of them; its version is part of every record's identity too.
IDENTITY_PACKAGES = (*(framework.package for framework in FRAMEWORKS.values()), "keras")
# Modules whose thread pools read the thread variables once, when first imported.
THREADED_MODULES = (*(framework.module for framework in FRAMEWORKS.values()), "keras", "numpy")
