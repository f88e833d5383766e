"""A framework the project has never heard of, for the test that adds one: NumPy "trains" a bag of embeddings.

Registered at run time by ``tests/test_units.py`` (one ``Framework`` entry, one ``Implementation`` entry), it
shows that a new framework touches no module of the project. The model is deliberately small: the mean of the
canonical embedding rows of a review's tokens, times the canonical output layer; a step of plain gradient
descent moves the output layer only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STATE = {"threads": None, "flush": None, "seed": None}


def configure(threads: int, flush_denormal: bool) -> None:
    STATE.update(threads=threads, flush=flush_denormal)


def probe() -> dict:
    return dict(intra_op_threads=STATE["threads"], inter_op_threads=STATE["threads"],
                flush_denormal=STATE["flush"], seeded=STATE["seed"])


def seed(value: int) -> None:
    STATE["seed"] = value


class BagOfEmbeddings:
    def __init__(self, spec, train, weights, total_steps=1):
        self.weights, self.learning_rate = [w.copy() for w in weights], train.learning_rate * 100

    def _features(self, tokens):
        mask = (tokens > 0)[..., None]
        return (self.weights[0][tokens] * mask).sum(1) / np.maximum(mask.sum(1), 1)

    def train_step(self, tokens, labels):
        features = self._features(tokens)
        logits = (features @ self.weights[-2])[:, 0] + self.weights[-1][0]
        probabilities = 1 / (1 + np.exp(-logits))
        error = (probabilities - labels) / len(labels)
        self.weights[-2] -= self.learning_rate * (features.T @ error)[:, None]
        self.weights[-1] -= self.learning_rate * error.sum()
        return float(np.mean(np.logaddexp(0, logits) - labels * logits))

    def predict_batch(self, tokens):
        return ((self._features(tokens) @ self.weights[-2])[:, 0] + self.weights[-1][0]).astype(np.float32)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]

    def save(self, run_dir: Path) -> list[str]:
        return []

    def info(self) -> dict:
        return dict(kernel_path="NumPy mean of embeddings, logistic output", training_api="plain gradient descent")
