"""The fused patch as a diff against Keras' own source (docs/keras-3.15.1-torch-rnn-cpu-fused.diff), the form an
upstream pull request would take: it applies cleanly to a copy of the installed Keras, and the patched copy runs
the LSTM through torch's fused kernel on the CPU with the outputs and gradients of the unpatched Keras."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import QUIET_ENV, REPO

DIFF = REPO / "docs" / "keras-3.15.1-torch-rnn-cpu-fused.diff"

# One LSTM layer on fixed weights and inputs: its outputs, the input gradient, and the kernel behind them.
LAYER = """
import os, sys
import numpy as np
import keras, torch
assert os.path.realpath(keras.__file__).startswith(os.path.realpath(sys.argv[1])), keras.__file__
rng = np.random.default_rng(0)
x = torch.tensor(rng.normal(size=(3, 7, 5)).astype("float32"), requires_grad=True)
layer = keras.layers.LSTM(4, return_sequences=True)
layer.build((3, 7, 5))
layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in layer.get_weights()])
y = layer(x)
from model.torch_model import autograd_kernel  # the probe the records use
kernel = autograd_kernel(y)
y.sum().backward()
np.savez(sys.argv[2], y=y.detach().numpy(), dx=x.grad.numpy(), fused=kernel.startswith("oneDNN"))
"""


def _run_layer(keras_root: Path, out: Path) -> dict:
    env = {**QUIET_ENV, "KERAS_BACKEND": "torch", "PYTHONPATH": str(keras_root), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", LAYER, str(keras_root), str(out)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as result:
        return dict(result)


@pytest.mark.slow
def test_the_diff_applies_to_keras_and_its_fused_path_computes_the_same_layer(tmp_path):
    import keras

    installed = Path(keras.__file__).resolve().parent
    for root in (tmp_path / "patched", tmp_path / "released"):
        shutil.copytree(installed, root / "keras", ignore=shutil.ignore_patterns("__pycache__"))
    applied = subprocess.run(["patch", "-p1", "--forward", "-d", str(tmp_path / "patched"), "-i", str(DIFF)],
                             capture_output=True, text=True)
    assert applied.returncode == 0 and "FAILED" not in applied.stdout, applied.stdout + applied.stderr
    patched = _run_layer(tmp_path / "patched", tmp_path / "patched.npz")
    released = _run_layer(tmp_path / "released", tmp_path / "released.npz")
    assert bool(patched["fused"]) and not bool(released["fused"])  # the fused kernel ran only where patched
    np.testing.assert_allclose(patched["y"], released["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(patched["dx"], released["dx"], rtol=1e-4, atol=1e-6)
