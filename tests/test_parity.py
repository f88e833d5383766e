"""The four implementations compute the same network: same parameters, logits, loss and Adam step."""

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from model.spec import ModelSpec
from model.weights import parameter_count
from model.implementations import NAMES
from tests.conftest import run_module

SMALL = dict(units=8, embedding_dim=6, vocab_size=50, maxlen=12, dropout=0.0)
PARITY = {f"{cell}-1": dict(cell=cell, layers=1, **SMALL) for cell in ("rnn", "gru", "lstm")}
PARITY |= {f"{cell}-2-bi": dict(cell=cell, layers=2, bidirectional=True, **SMALL) for cell in ("rnn", "gru", "lstm")}
# Several steps where the settings matter: Adam moves each weight by about lr on the first step whatever
# the gradient, so one step cannot see clipping or where epsilon goes; three steps with a clip norm that
# binds (gradient norms here are about 0.1-1) or an epsilon as large as sqrt(v) can.
PARITY |= {"lstm-1-clip": dict(cell="lstm", layers=1, steps=3, train=dict(clip_global_norm=1e-3), **SMALL),
           "lstm-1-noclip": dict(cell="lstm", layers=1, steps=3, train=dict(clip_global_norm=1e6), **SMALL),
           "gru-1-eps": dict(cell="gru", layers=1, steps=3, train=dict(epsilon=1e-2), **SMALL),
           "gru-1-steps": dict(cell="gru", layers=1, steps=3, **SMALL)}
COUNTS = {f"count-{cell}-{layers}-{bi}": dict(cell=cell, layers=layers, bidirectional=bi, count_only=True, **SMALL)
          for cell, layers, bi in itertools.product(("rnn", "gru", "lstm"), (1, 2, 3), (False, True))}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    specs = json.dumps(PARITY | COUNTS)

    def one(name):
        out = folder / f"{name}.npz"
        done = run_module("tests.parity_worker", name, specs, str(out))
        assert done.returncode == 0, done.stderr[-3000:]
        return name, dict(np.load(out))

    with ThreadPoolExecutor(2) as pool:  # two processes at a time on a 2-core machine
        return dict(pool.map(one, NAMES))


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_parameter_counts_are_equal(results, key):
    settings = {k: v for k, v in COUNTS[key].items() if k != "count_only"}
    expected = parameter_count(ModelSpec(**settings))
    assert {name: int(result[f"{key}/count"]) for name, result in results.items()} == dict.fromkeys(NAMES, expected)


@pytest.mark.parametrize("key", sorted(PARITY))
def test_same_logits_loss_and_updated_weights(results, key):
    reference = results["keras-tensorflow"]
    for name, result in results.items():
        np.testing.assert_allclose(result[f"{key}/logits"], reference[f"{key}/logits"], rtol=0, atol=1e-4,
                                   err_msg=f"{name} logits")
        assert abs(result[f"{key}/loss"] / reference[f"{key}/loss"] - 1) < 1e-5, name
        weights = sorted(k for k in result if k.startswith(f"{key}/w"))
        assert len(weights) == len([k for k in reference if k.startswith(f"{key}/w")])
        for weight in weights:
            np.testing.assert_allclose(result[weight], reference[weight], rtol=0, atol=1e-4, err_msg=f"{name} {weight}")


@pytest.mark.parametrize("case, other", [("lstm-1-clip", "lstm-1-noclip"), ("gru-1-eps", "gru-1-steps")])
def test_the_multi_step_cases_can_see_clipping_and_epsilon(results, case, other):
    """Parity within 1e-4 means something only if dropping the clip (or moving epsilon) moves weights further."""
    result = results["torch"]
    gap = max(float(np.abs(result[f"{case}/w{i}"] - result[f"{other}/w{i}"]).max()) for i in range(1, 4))
    assert gap > 10 * 1e-4


@pytest.mark.parametrize("key", sorted(PARITY))
def test_fused_keras_torch_matches_the_generic_loop(results, key):
    """The keras-torch-fused patch changes the kernel, not the numbers: logits, loss and trained weights."""
    fused, generic = results["keras-torch-fused"], results["keras-torch"]
    for name in sorted(k for k in generic if k.startswith(f"{key}/")):
        np.testing.assert_allclose(fused[name], generic[name], rtol=0, atol=2e-5, err_msg=name)


def test_one_step_changes_the_weights(results):
    """Agreement after the step would prove nothing if the step did not move the weights."""
    from model.weights import initial_weights

    spec = ModelSpec(**PARITY["lstm-1"])
    start = initial_weights(spec, seed=7)
    after = [results["torch"][f"lstm-1/w{i}"] for i in range(len(start))]
    assert all(not np.allclose(a, b) for a, b in zip(start[1:], after[1:]))
