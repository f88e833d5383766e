"""Run in a subprocess, one per implementation: what it computes for fixed specs, weights and batch.

For each spec: parameter count, logits (inference mode), the loss of the
first training step and the weights after ``steps`` steps on the same batch
(the first on the fixed batch, later ones on other batches, with the spec's
own training settings, e.g. a clip norm small enough to bind), all saved to
one .npz.
"""

import json
import sys

import numpy as np

from model import implementations
from model.spec import ModelSpec, TrainSpec
from model.weights import initial_weights
from runners import loop


def fixed_batch(spec: ModelSpec, size: int = 16, seed: int = 123):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, spec.vocab_size, size=(size, spec.maxlen), dtype=np.int32)
    tokens[: size // 4, : spec.maxlen // 2] = 0  # front padding, as in the real data
    labels = (np.arange(size) % 2).astype(np.float32)
    return tokens, labels


def main(name: str, specs_json: str, out: str) -> None:
    results = {}
    for key, settings in json.loads(specs_json).items():
        count_only = settings.pop("count_only", False)
        steps = settings.pop("steps", 1)
        train = TrainSpec(batch_size=16, eval_batch_size=16, **settings.pop("train", {}))
        spec = ModelSpec(**settings)
        variant = implementations.resolve_variant(name, {}, spec)
        impl = implementations.create(name, spec, train, initial_weights(spec, seed=7), variant)
        results[f"{key}/count"] = np.int64(impl.info()["parameter_count"])
        if count_only:
            continue
        tokens, labels = fixed_batch(spec)
        results[f"{key}/logits"] = loop.predict(impl, tokens, train.eval_batch_size)
        results[f"{key}/loss"] = np.float64(loop.train_epoch(impl, tokens, labels, train.batch_size).losses[0])
        # Later steps see other batches: gradient norms then differ between steps, so a clip that binds changes
        # the ratio m / sqrt(v) that Adam's update depends on (a constant rescaling would cancel out).
        for step in range(1, steps):
            loop.train_epoch(impl, *fixed_batch(spec, seed=123 + step), train.batch_size)
        for i, weight in enumerate(impl.get_weights()):
            results[f"{key}/w{i}"] = weight
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
