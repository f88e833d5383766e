"""The canonical weights: Keras' layout, Keras' initialiser distributions, drawn once in NumPy.

All four implementations start from the same arrays for a given seed. They are
drawn here, with NumPy, from the distributions of the Keras initialisers the
layers use by default (``Embedding``: uniform(-0.05, 0.05); RNN kernels: Glorot
uniform; recurrent kernels: orthogonal; biases: zeros, with LSTM's unit forget
bias; ``Dense``: Glorot uniform, zero bias), so that the native implementations
never need Keras to be built.

Layout, in the order of Keras' ``model.get_weights()``::

    embedding                          (vocab, embedding)
    per layer, forward then backward:  kernel (in, G*units), recurrent (units, G*units), bias
    logit                              kernel (features, 1), bias (1,)

with G = 1 (SimpleRNN), 3 (GRU, gates z|r|h, bias (2, 3*units): input row, recurrent
row) or 4 (LSTM, gates i|f|c|o, bias (4*units,)).
"""

from __future__ import annotations

import numpy as np

from model.spec import ModelSpec

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def layer_input_sizes(spec: ModelSpec) -> list[int]:
    return ([spec.embedding_dim] + [spec.units * spec.directions] * (spec.layers - 1))[:spec.layers]


def shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    gates = GATES[spec.cell] * spec.units
    bias = (2, gates) if spec.cell == "gru" else (gates,)
    out = [(spec.vocab_size, spec.embedding_dim)] + [(spec.ngram_buckets, spec.embedding_dim)] * (spec.embeddings - 1)
    for size in layer_input_sizes(spec):
        out += [(size, gates), (spec.units, gates), bias] * spec.directions
    return out + [(spec.pooled_features, 1), (1,)]


def parameter_count(spec: ModelSpec) -> int:
    return int(sum(np.prod(shape) for shape in shapes(spec)))


def _glorot_uniform(rng, shape):
    fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _orthogonal(rng, shape):
    rows, cols = shape
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, as Keras does
    return q.T if rows < cols else q


def initial_weights(spec: ModelSpec, seed: int, x_train: np.ndarray | None = None) -> list[np.ndarray]:
    """float32 arrays in the canonical layout, the same for every implementation.

    With ``embedding_init="ppmi-svd"`` the embedding comes from ``x_train`` (the token rows the run trains on,
    ``model/pretrain.py``); the uniform draw is still made, so every other array is the one the default gives.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-0.05, 0.05, size=(spec.vocab_size, spec.embedding_dim))]
    if spec.embedding_init == "ppmi-svd":
        if x_train is None:
            raise ValueError("embedding_init='ppmi-svd' needs the training rows (x_train)")
        from model.pretrain import ppmi_svd

        weights[0] = ppmi_svd(x_train, spec.vocab_size, spec.embedding_dim, seed)
    if spec.ngram_buckets:  # zeros: the network starts as the words-only one and learns what n-grams add
        weights.append(np.zeros((spec.ngram_buckets, spec.embedding_dim), np.float32))
    for size in layer_input_sizes(spec):
        for _ in range(spec.directions):
            gates = GATES[spec.cell] * spec.units
            bias = np.zeros((2, gates) if spec.cell == "gru" else (gates,))
            if spec.cell == "lstm":
                bias[spec.units: 2 * spec.units] = 1.0  # unit forget bias (Jozefowicz et al., 2015)
            weights += [_glorot_uniform(rng, (size, gates)), _orthogonal(rng, (spec.units, gates)), bias]
    weights += [_glorot_uniform(rng, (spec.pooled_features, 1)), np.zeros((1,))]
    return [w.astype(np.float32) for w in weights]


def gemm_flops_per_training_step(spec: ModelSpec, batch_size: int) -> int:
    """Analytic GEMM work of one training step (multiply-adds counted as 2 FLOPs); everything else is ignored.

    Per recurrent layer and direction, every timestep multiplies the input by the kernel and the state by the
    recurrent kernel::

        x_t @ W: (batch, inputs) x (inputs, G*units)    2 * batch * inputs * G*units
        h_t @ U: (batch, units) x (units, G*units)      2 * batch * units  * G*units

    so the forward pass costs 2 * batch * maxlen * G*units * (inputs + units). The backward pass needs two
    GEMMs of the same size for each forward one (the gradient with respect to the operand and to the
    weights), twice the forward work: a training step is three forward passes' worth. The output layer adds
    2 * batch * features * 3; embedding lookups, gate activations and Adam are not GEMMs.
    """
    forward = 0
    for size in layer_input_sizes(spec):
        forward += 2 * batch_size * spec.maxlen * GATES[spec.cell] * spec.units * (size + spec.units) * spec.directions
    forward += 2 * batch_size * spec.pooled_features
    return 3 * forward
