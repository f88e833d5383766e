"""Run in a subprocess, one per implementation: what it computes for fixed specs, weights and batches.

For each case: parameter count, the kernel that ran, logits (inference mode),
the loss and the gradient of every canonical weight on the first batch (before
clipping), and the weights after ``steps`` optimizer steps (the first on that
batch, later ones on other batches of the case's widths), all saved to one
.npz.

The numbers are made to be sensitive: the embedding and the output kernel are
scaled so that the recurrent activations and the logits are O(1) (at the real initial scale the
logits are about 0.01 and a tolerance on them is loose), and three labels in
four are positive, so that the loss moves with any offset of the logits.

``NAME~outputs`` and ``NAME~gradient`` run a deliberately broken copy of native
torch (recurrent outputs 0.1% too large; the first recurrent kernel's gradient
1% too large): the tests show that the comparison catches both.
"""

import json
import sys
import time

import numpy as np

from model import implementations
from model.spec import ModelSpec, TrainSpec
from model.weights import initial_weights
from runners.harness import loop, policy

EMBEDDING_SCALE = 20.0  # uniform(-0.05, 0.05) -> uniform(-1, 1)
LOGIT_SCALE = 5.0


def fixed_batch(spec: ModelSpec, size: int = 16, seed: int = 123, width: int | None = None):
    width = width or spec.maxlen
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, spec.vocab_size, size=(size, width), dtype=np.int32)
    tokens[: size // 4, : width // 2] = 0  # front padding, as in the real data
    labels = (np.arange(size) % 4 != 0).astype(np.float32)
    return tokens, labels


def perturb(impl, how: str) -> None:
    """Break native torch on purpose, by a fraction of a percent."""
    import torch

    recurrent = impl.module.recurrent
    if how == "outputs":
        recurrent.register_forward_hook(lambda module, inputs, output: (output[0] * (1 + 1e-3), *output[1:]))
    elif how == "gradient":
        recurrent.weight_hh_l0.register_hook(lambda gradient: gradient * 1.01)
    else:
        raise ValueError(how)
    assert isinstance(recurrent, torch.nn.Module)


def main(name: str, specs_json: str, out: str, variant_json: str = "{}") -> None:
    name, _, broken = name.partition("~")
    results = {}
    for key, settings in json.loads(specs_json).items():
        started = time.perf_counter()
        count_only = settings.pop("count_only", False)
        steps = settings.pop("steps", 1)
        widths = settings.pop("widths", None)
        given = {**json.loads(variant_json), **settings.pop("variant", {})}  # the process's, then the case's
        train = TrainSpec(batch_size=16, eval_batch_size=16, **settings.pop("train", {}))
        spec = ModelSpec(**settings)
        variant = implementations.resolve_variant(name, given, spec)
        weights = initial_weights(spec, seed=7)
        weights[0], weights[-2] = weights[0] * EMBEDDING_SCALE, weights[-2] * LOGIT_SCALE
        policy.import_framework(name)
        impl = implementations.create(name, spec, train, weights, variant, total_steps=steps)
        if broken:
            perturb(impl, broken)
        if count_only:
            results[f"{key}/count"] = np.int64(impl.info()["parameter_count"])
            continue
        batches = [fixed_batch(spec, seed=123 + step, width=widths[step] if widths else None)
                   for step in range(steps)]
        tokens, labels = batches[0]
        results[f"{key}/logits"] = loop.predict(impl, tokens, train.eval_batch_size)
        for i, gradient in enumerate(impl.gradients(tokens, labels)):
            results[f"{key}/g{i}"] = gradient
        # Later steps see other batches: gradient norms then differ between steps, so a clip that binds changes
        # the ratio m / sqrt(v) that Adam's update depends on (a constant rescaling would cancel out).
        results[f"{key}/loss"] = np.float64(loop.train_epoch(impl, batches).losses[0])
        for i, (weight, start) in enumerate(zip(impl.get_weights(), weights)):
            results[f"{key}/w{i}"] = weight
            results[f"{key}/d{i}"] = weight - start  # the optimizer's total update
        # info() once, after the steps (Keras' names the path its calls took; under torch.compile it runs
        # TorchDynamo's explain)
        info = impl.info()
        results[f"{key}/count"] = np.int64(info["parameter_count"])
        results[f"{key}/kernel"] = np.array(info["kernel_path"])
        results[f"{key}/seconds"] = np.float64(time.perf_counter() - started)  # where the suite's time goes
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
