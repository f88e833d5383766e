"""Run in a subprocess: one implementation's logits, loss and weights after one step on a fixed batch."""

import json
import sys

import numpy as np

from model.spec import ModelSpec, TrainSpec
from model.weights import initial_weights
from runners import implementations


class _Clock:
    def __init__(self):
        self.losses = []

    def begin(self):
        pass

    def end(self, loss=None):
        self.losses.append(loss)


def main(name: str, spec_json: str, out: str) -> None:
    spec = ModelSpec(**json.loads(spec_json))
    train = TrainSpec(batch_size=16, eval_batch_size=16)
    rng = np.random.default_rng(123)
    tokens = rng.integers(0, spec.vocab_size, size=(16, spec.maxlen), dtype=np.int32)
    tokens[:4, :spec.maxlen // 2] = 0  # some front padding, as in the real data
    labels = (rng.random(16) < 0.5).astype(np.float32)
    impl = implementations.create(name, spec, train, initial_weights(spec, seed=7))
    logits = impl.predict_logits(tokens)
    clock = _Clock()
    impl.train_epoch(tokens, labels, clock)
    np.savez(out, logits=logits, loss=np.float64(clock.losses[0]), count=impl.info()["parameter_count"],
             **{f"w{i}": w for i, w in enumerate(impl.get_weights())})


if __name__ == "__main__":
    main(*sys.argv[1:])
